"""The service answers an ordinal model with the grade, the expected grade and probabilities."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def run_dir(ordinal_run: Path) -> Path:
    """The serve fixtures (make_settings, client) on the shared ordinal run."""
    return ordinal_run


@pytest.mark.slow
def test_predict_answers_with_a_grade(client, grade_folder: Path, grade_names) -> None:
    from medlens.inference import Predictor
    from medlens.io import read_image

    path = grade_folder / "severe" / "p300.png"
    response = client.post("/v1/predict", files={"file": ("a.png", path.read_bytes(), "image/png")})
    assert response.status_code == 200
    body = response.json()
    expected = Predictor.from_run(client.app.state.service.settings.run_dir).predict(
        [read_image(path)]
    )[0]
    assert body["label"] == grade_names[body["grade"]] == expected.label
    assert body["expected_grade"] == pytest.approx(expected.expected_grade, abs=1e-6)
    assert list(body["probabilities"]) == list(grade_names)
    batch = client.post(
        "/v1/predict/batch", files=[("files", ("b.png", path.read_bytes(), "image/png"))]
    ).json()
    assert batch["results"][0]["grade"] == body["grade"]


@pytest.mark.slow
def test_the_page_shows_the_grade_and_the_expected_grade(client) -> None:
    page = client.get("/").text
    assert 'id="grade-line"' in page and 'id="expected-grade"' in page
    script = client.get("/static/app.js").text
    assert "showGrade(result)" in script and "result.expected_grade" in script
