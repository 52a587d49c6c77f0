"""report.html: self-contained, valid, escaped, with the numbers and the pictures."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser

import numpy as np
import pytest

from medlens.evaluation import (
    ExampleCase,
    ReportImage,
    evaluate_predictions,
    select_examples,
    write_report,
)
from medlens.evaluation.plots import image_png

VOID = {"meta", "img", "br", "hr", "link", "input", "source", "col", "wbr"}


class _Checker(HTMLParser):
    """Balanced tags, and every resource reference in attributes (src, href, url())."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.refs: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        self.tags.append(tag)
        self.refs += [v or "" for k, v in attrs if k in ("src", "href", "srcset", "action")]
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag) -> None:
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(f"unbalanced </{tag}>")


def _check(page: str) -> _Checker:
    checker = _Checker()
    checker.feed(page)
    checker.close()
    assert checker.errors == [] and checker.stack == []
    assert page.startswith("<!DOCTYPE html>")
    assert all(ref.startswith("data:image/png;base64,") for ref in checker.refs)
    assert "script" not in checker.tags and "link" not in checker.tags
    assert "url(" not in page and "@import" not in page
    return checker


def _no_url_outside_text(page: str) -> None:
    """``http`` may only appear in visible text, never in a tag or the stylesheet."""
    for tag in re.findall(r"<[^>]*>", page):
        assert "http" not in tag.lower(), tag
    style = page[page.index("<style>") : page.index("</style>")]
    assert "http" not in style


@pytest.fixture(scope="module")
def binary_metrics():
    rng = np.random.default_rng(0)
    y = (rng.random(300) < 0.6).astype(int)
    p = 1 / (1 + np.exp(-(rng.normal(size=300) + 1.5 * (2 * y - 1))))
    return y, p, evaluate_predictions(y, p, class_names=["normal", "pneumonia"], n_bootstrap=100)


def test_report_is_self_contained_and_has_the_numbers(tmp_path, binary_metrics) -> None:
    y, p, metrics = binary_metrics
    history = [{"epoch": e, "train_loss": 1 / e, "val_auc": 0.9 + e / 100} for e in (1, 2, 3)]
    fingerprint = {"counts": {"train": {"normal": 10, "pneumonia": 20}}, "note": "see http://x"}
    examples = [
        ExampleCase.from_array(rng_image(i), true_label="normal", predicted_label=label,
                               probabilities={"pneumonia": 0.8})
        for i, label in enumerate(["pneumonia", "normal"])
    ]  # fmt: skip
    card = {"architecture": "resnet18", "operating_point": {"method": "youden"}}
    path = write_report(
        tmp_path / "report.html",
        title="Test split",
        metrics=metrics,
        history=history,
        fingerprint=fingerprint,
        examples=examples,
        model_card=card,
    )
    page = path.read_text(encoding="utf-8")
    checker = _check(page)
    _no_url_outside_text(page)
    assert "see http://x" in page  # a URL in the data shows as text
    auc = metrics["metrics"]["roc_auc"]
    assert f"{auc['value']:.3f}" in page and f"{auc['ci_low']:.3f}" in page
    assert f"{100 * metrics['metrics']['sensitivity']['value']:.1f}%" in page
    assert ">300<" in page  # number of cases
    assert "Youden" in page and "resnet18" in page
    # ROC, PR, confusion, calibration, training + 2 examples
    assert len(checker.refs) == 7
    for ref in checker.refs:
        assert base64.b64decode(ref.split(",", 1)[1]).startswith(b"\x89PNG")
    assert "Explanations" not in page  # no gallery given
    assert [f.name for f in tmp_path.iterdir()] == ["report.html"]


def test_every_string_is_escaped(tmp_path, binary_metrics) -> None:
    _, _, metrics = binary_metrics
    evil = '<script>alert("x")</script>'
    gallery = [ReportImage(image_png(rng_image(0)), caption=evil)]
    example = ExampleCase(image_png(rng_image(1)), evil, evil, {evil: 0.5}, caption=evil)
    page = write_report(
        tmp_path / "r.html",
        title=evil,
        metrics=metrics,
        examples=[example],
        heatmap_gallery=gallery,
        fingerprint={evil: evil},
        model_card={evil: {evil: evil}},
    ).read_text()
    _check(page)
    assert "<script" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "Explanations" in page


@pytest.mark.parametrize("task", ["multiclass", "multilabel"])
def test_other_tasks_render(tmp_path, task) -> None:
    rng = np.random.default_rng(1)
    if task == "multiclass":
        y, p = rng.integers(0, 3, 120), rng.dirichlet([1, 1, 1], 120)
    else:
        y = rng.integers(0, 2, (120, 3))
        p = np.clip(0.4 * y + 0.6 * rng.random((120, 3)), 0, 1)
    metrics = evaluate_predictions(y, p, task=task, class_names=["a", "b", "c"], n_bootstrap=20)
    page = write_report(tmp_path / "r.html", metrics=metrics).read_text()
    _check(page)
    assert "Per class" in page and "Macro ROC AUC" in page


def test_select_examples_picks_confident_right_and_wrong(binary_metrics) -> None:
    y, p, _ = binary_metrics
    chosen = select_examples(y, p, threshold=0.5, per_group=4)
    pred = (p >= 0.5).astype(int)
    assert len(chosen["correct"]) == 4 and len(chosen["wrong"]) == 4
    assert all(pred[i] == y[i] for i in chosen["correct"])
    assert all(pred[i] != y[i] for i in chosen["wrong"])
    assert {int(y[i]) for i in chosen["correct"]} == {0, 1}  # both classes shown
    wrong = np.flatnonzero(pred != y)
    surest = np.abs(p[chosen["wrong"]] - 0.5).max()
    assert surest == pytest.approx(np.abs(p[wrong] - 0.5).max())  # the worst error is shown


def test_select_examples_multiclass_and_multilabel() -> None:
    rng = np.random.default_rng(2)
    y, p = rng.integers(0, 3, 60), rng.dirichlet([1, 1, 1], 60)
    chosen = select_examples(y, p, task="multiclass", per_group=3)
    assert all(p[i].argmax() != y[i] for i in chosen["wrong"])
    yl = rng.integers(0, 2, (60, 2))
    chosen = select_examples(yl, rng.random((60, 2)), task="multilabel", per_group=2)
    assert len(chosen["wrong"]) == 2


def test_real_images_as_examples(tmp_path, shared_datasets, binary_metrics) -> None:
    data = np.load(shared_datasets / "pneumoniamnist" / "pneumoniamnist.npz")
    images, labels = data["test_images"][:6], data["test_labels"][:6, 0]
    names = ["normal", "pneumonia"]
    examples = [
        ExampleCase.from_array(img, true_label=names[t], predicted_label=names[1],
                               probabilities={"pneumonia": 0.7})
        for img, t in zip(images, labels, strict=True)
    ]  # fmt: skip
    page = write_report(tmp_path / "r.html", metrics=binary_metrics[2], examples=examples)
    checker = _check(page.read_text())
    assert len(checker.refs) == 4 + 6


def rng_image(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random((28, 28))


def test_report_without_curves_or_intervals(tmp_path) -> None:
    """Only one class present and no bootstrap: undefined values show as n/a, nothing breaks."""
    metrics = evaluate_predictions([1, 1, 1, 1], [0.2, 0.6, 0.7, 0.9], n_bootstrap=0)
    page = write_report(tmp_path / "r.html", metrics=metrics).read_text()
    _check(page)
    assert "Discrimination" not in page and "n/a" in page
    assert "No confidence intervals were computed." in page
