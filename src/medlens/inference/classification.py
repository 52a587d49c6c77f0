"""Classification predictions: probabilities per class and the decided label.

Logits are divided by the card's temperature and compared with its decision threshold(s).
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
    model (empty when none).
    """

    probabilities: dict[str, float]
    label: str
    threshold: float | list[float] | None
    engine: str
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "label": self.label,
            "threshold": self.threshold,
            "engine": self.engine,
            **{f"p_{name}": p for name, p in self.probabilities.items()},
        }


class ClassificationPredictor(Predictor):
    """A classifier, its preprocessing and its decision rule, ready to label images."""

    family = "classification"

    def _configure(self) -> None:
        self.temperature = float(self.card.temperature or 1.0)
        self.threshold = self.card.threshold

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
        """Per-class probabilities for preprocessed tensors (``C,H,W`` or ``C,D,H,W``)."""
        import torch

        from medlens.training.outputs import probabilities

        with torch.inference_mode():
            logits = self.model(torch.stack(list(tensors)))
            return probabilities(logits, self.task, self.temperature).tolist()  # type: ignore[arg-type]

    def decide(self, probs: Sequence[float]) -> str:
        """The label for one row of per-class probabilities (see :class:`Prediction`)."""
        if self.task == "multiclass":
            return self.classes[max(range(len(probs)), key=probs.__getitem__)]
        if self.task == "binary":
            threshold = 0.5 if self.threshold is None else float(self.threshold)
            return self.classes[int(probs[1] >= threshold)]
        thresholds = self.threshold or [0.5] * len(probs)
        chosen = [c for c, p, t in zip(self.classes, probs, thresholds, strict=True) if p >= t]
        return "|".join(chosen)

    def _prediction(self, probs: list[float], image: Image) -> Prediction:
        by_class = dict(zip(self.classes, probs, strict=True))
        source = str(image.source) if image.source is not None else ""
        return Prediction(by_class, self.decide(probs), self.threshold, self.engine, source)
