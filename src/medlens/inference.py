"""Predictions from a trained run directory, with the preprocessing stored beside the weights.

>>> predictor = Predictor.from_run("runs/demo")                    # doctest: +SKIP
>>> [p.label for p in predictor.predict([read_image("cxr.png")])]   # doctest: +SKIP
['PNEUMONIA']

The weights are checked against the sha256 in ``model.json`` before they are loaded; the
model is rebuilt with :func:`medlens.models.create_model` from the card; logits are divided
by the stored temperature and compared with the stored decision threshold.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from medlens.errors import ConfigError, ModelError

if TYPE_CHECKING:
    import torch

    from medlens.io import Image

__all__ = ["ENGINES", "Prediction", "Predictor", "load_engine", "to_channels_last"]

Engine = Literal["torch", "onnx"]
ENGINES: tuple[str, ...] = ("torch", "onnx")


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


def load_engine(run_dir: Path, card: dict[str, Any], engine: str) -> Callable:
    """The one place where an inference engine is chosen: a callable batch -> logits."""
    if engine == "torch":
        from medlens.models import create_model
        from medlens.training.checkpoint import load_weights

        model = create_model(**card["create_model"])
        load_weights(model, run_dir / "model.safetensors", sha256=card["sha256"])
        return to_channels_last(model.eval())
    if engine == "onnx":
        from medlens.export.run import deployed_onnx
        from medlens.export.runtime import OnnxModel

        path = deployed_onnx(run_dir, card)
        if path is None:
            raise ModelError(
                f"{run_dir}: no verified ONNX export of these weights; run `medlens export`"
            )
        return OnnxModel(path)
    raise ConfigError(f"unknown inference engine {engine!r}: use one of {ENGINES}")


def to_channels_last(model: torch.nn.Module) -> torch.nn.Module:
    """Channels-last weights for a 2D network (PyTorch's fast CPU convolution path).

    Eager EfficientNet-Lite0 at batch 1 was measured up to 100x slower in the default layout
    (docs/benchmarks/export.md). 3D networks (5-D weights) are left as they are.
    """
    import torch

    dims = {p.dim() for p in model.parameters()}
    if 4 in dims and 5 not in dims:
        model.to(memory_format=torch.channels_last)
    return model


class Predictor:
    """A model, its preprocessing and its decision rule, ready to label images."""

    def __init__(
        self,
        model: Callable,
        preprocessing: Callable[[Image], torch.Tensor],
        card: dict[str, Any],
        *,
        engine: str = "torch",
        batch_size: int = 32,
    ) -> None:
        self.model, self.preprocessing, self.card = model, preprocessing, card
        self.engine, self.batch_size = engine, batch_size
        self.classes: list[str] = list(card["classes"])
        self.task: str = card["task"]
        self.temperature = float(card.get("temperature") or 1.0)
        self.threshold = card.get("threshold")

    @classmethod
    def from_run(cls, run_dir: str | Path, *, engine: str = "auto", **kwargs: Any) -> Predictor:
        """Load ``model.json`` + weights of a run directory (weights hash-checked).

        ``engine="auto"`` uses ONNX Runtime when ``export.json`` deploys a verified ONNX file
        of these weights (sha256 checked), else PyTorch.
        """
        from medlens.training.card import read_card
        from medlens.transforms.preprocess import Preprocessing

        run_dir = Path(run_dir)
        card = read_card(run_dir)
        if engine == "auto":
            from medlens.export.run import pick_engine

            engine = pick_engine(run_dir, card)
        model = load_engine(run_dir, card, engine)
        preprocessing = Preprocessing.model_validate(card["preprocessing"])
        return cls(model, preprocessing, card, engine=engine, **kwargs)

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
