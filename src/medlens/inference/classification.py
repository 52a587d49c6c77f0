"""Classification predictions: probabilities per class and the decided label.

Logits are divided by the card's temperature and compared with its decision threshold(s).
An ordinal model's probabilities are per grade; its grade is decided by the card's
``ordinal`` section (argmax, median, or cut-points on the expected grade).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from medlens.inference.base import Predictor

if TYPE_CHECKING:
    import torch

    from medlens.io import Image

__all__ = ["ClassificationPredictor", "Prediction"]


@dataclass(frozen=True)
class Prediction:
    """One image's result.

    ``probabilities`` maps class name to probability (calibrated when the run fitted a
    temperature); ``label`` is the decided class (binary: positive when its probability is
    at least ``threshold``; multiclass: argmax), or the ``|``-joined labels of a multi-label
    model (empty when none). An ordinal model's ``label`` is the decided grade, with its
    index ``grade`` (0 = lowest) and the ``expected_grade`` ``sum_k k * p_k``.
    """

    probabilities: dict[str, float]
    label: str
    threshold: float | list[float] | None
    engine: str
    source: str = ""
    grade: int | None = None
    expected_grade: float | None = None

    def to_dict(self) -> dict[str, Any]:
        grades = {"grade": self.grade, "expected_grade": self.expected_grade}
        return {
            "source": self.source,
            "label": self.label,
            "threshold": self.threshold,
            "engine": self.engine,
            **(grades if self.grade is not None else {}),
            **{f"p_{name}": p for name, p in self.probabilities.items()},
        }


class ClassificationPredictor(Predictor):
    """A classifier, its preprocessing and its decision rule, ready to label images."""

    family = "classification"

    def _configure(self) -> None:
        self.temperature = float(self.card.temperature or 1.0)
        self.threshold = self.card.threshold
        self.ordinal = self.card.ordinal
        self.task = self.card.output_task  # ordinal: per-grade probabilities, as multiclass

    def predict(self, images: Sequence[Image]) -> list[Prediction]:
        """Probabilities and decided labels, in the order of ``images``."""
        results: list[Prediction] = []
        for start in range(0, len(images), self.batch_size):
            chunk = images[start : start + self.batch_size]
            probs = self.predict_proba([self.preprocessing(image) for image in chunk])
            results += [
                self._prediction(row, image) for row, image in zip(probs, chunk, strict=True)
            ]
        return results

    def predict_proba(self, tensors: Sequence[torch.Tensor]) -> list[list[float]]:
        """Per-class probabilities for preprocessed tensors (``C,H,W`` or ``C,D,H,W``).

        Studies that kept their own slice count (``preprocessing.slices: pad``) run in
        groups of one shape, so no study is padded and every engine gives its exact output.
        """
        import torch

        from medlens.training.outputs import probabilities

        tensors = list(tensors)
        groups: dict[tuple[int, ...], list[int]] = {}
        for index, tensor in enumerate(tensors):
            groups.setdefault(tuple(tensor.shape), []).append(index)
        rows: list[list[float]] = [[] for _ in tensors]
        with torch.inference_mode():
            for indices in groups.values():
                logits = self.model(torch.stack([tensors[i] for i in indices]))
                probs = probabilities(logits, self.task, self.temperature).tolist()  # type: ignore[arg-type]
                for i, row in zip(indices, probs, strict=True):
                    rows[i] = row
        return rows

    def decide(self, probs: Sequence[float]) -> str:
        """The label for one row of per-class probabilities (see :class:`Prediction`)."""
        if self.ordinal is not None:
            return self.classes[self.grade(probs)]
        if self.task == "multiclass":
            return self.classes[max(range(len(probs)), key=probs.__getitem__)]
        if self.task == "binary":
            threshold = 0.5 if self.threshold is None else float(self.threshold)
            return self.classes[int(probs[1] >= threshold)]
        thresholds = self.threshold or [0.5] * len(probs)
        chosen = [c for c, p, t in zip(self.classes, probs, thresholds, strict=True) if p >= t]
        return "|".join(chosen)

    def grade(self, probs: Sequence[float]) -> int:
        """An ordinal model's decided grade index for one row of grade probabilities."""
        from medlens.evaluation.ordinal import decide_grades

        ordinal = self.ordinal
        cut_points = ordinal.cut_points if ordinal is not None else None
        rule = ordinal.decision if ordinal is not None and cut_points is None else "argmax"
        return int(decide_grades([list(probs)], cut_points, rule=rule)[0])

    def _prediction(self, probs: list[float], image: Image) -> Prediction:
        by_class = dict(zip(self.classes, probs, strict=True))
        source = str(image.source) if image.source is not None else ""
        label = self.decide(probs)
        if self.ordinal is None:
            return Prediction(by_class, label, self.threshold, self.engine, source)
        expected = sum(k * p for k, p in enumerate(probs))
        grade = self.classes.index(label)
        return Prediction(by_class, label, None, self.engine, source, grade, expected)
