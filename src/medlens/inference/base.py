"""The one predictor entry point: :meth:`Predictor.from_run` for a run of any task.

>>> predictor = Predictor.from_run("runs/demo")                    # doctest: +SKIP
>>> predictor.predict([read_image("cxr.png")])[0].label             # doctest: +SKIP
'PNEUMONIA'

The card (``model.json``) says the task; the matching subclass is returned
(:class:`~medlens.inference.ClassificationPredictor`,
:class:`~medlens.inference.SegmentationPredictor`). Every predictor has ``card``, ``task``,
``classes``, ``engine``, ``preprocessing``, ``model`` and ``predict(images)``, which is what
the service, ``medlens predict``, explain and export use.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from medlens.errors import ModelError

if TYPE_CHECKING:
    import torch

    from medlens.card import ModelCard
    from medlens.io import Image

__all__ = ["Predictor"]


class Predictor:
    """A trained model with its preprocessing and output rule (see the module docstring)."""

    family: ClassVar[str] = ""

    def __init__(
        self,
        model: Callable,
        preprocessing: Callable[[Image], torch.Tensor],
        card: ModelCard,
        *,
        engine: str = "torch",
        batch_size: int = 32,
    ) -> None:
        self.model, self.preprocessing, self.card = model, preprocessing, card
        self.engine, self.batch_size = engine, batch_size
        self.classes: list[str] = list(card.classes)
        self.task: str = card.task
        self._configure()

    def _configure(self) -> None:
        """Per-task state read from the card."""

    @classmethod
    def from_run(cls, run_dir: str | Path, *, engine: str = "auto", **kwargs: Any) -> Predictor:
        """Load ``model.json`` + weights of a run directory (weights hash-checked).

        ``engine="auto"`` uses ONNX Runtime when ``export.json`` deploys a verified ONNX file
        of these weights (sha256 checked), else PyTorch. Called on a subclass, a run of
        another task is refused.
        """
        from medlens.card import read_card
        from medlens.inference.engines import load_engine, pick_engine
        from medlens.transforms.preprocess import preprocessing_from_dict

        run_dir = Path(run_dir)
        card = read_card(run_dir)
        implementation = cls._implementation(card, run_dir)
        if engine == "auto":
            engine = pick_engine(run_dir, card)
        model = load_engine(run_dir, card, engine)
        preprocessing = preprocessing_from_dict(card.preprocessing, source=str(run_dir))
        return implementation(model, preprocessing, card, engine=engine, **kwargs)

    @classmethod
    def _implementation(cls, card: ModelCard, run_dir: Path) -> type[Predictor]:
        from medlens.inference.classification import ClassificationPredictor
        from medlens.inference.segmentation import SegmentationPredictor

        if card.family == "generation":
            raise ModelError(
                f"{run_dir}: a generation run has no predictor; sample it with "
                "`medlens generate` (medlens.generation.generate)"
            )
        implementation = {
            "classification": ClassificationPredictor,
            "segmentation": SegmentationPredictor,
        }[card.family]
        if not issubclass(implementation, cls):
            raise ModelError(
                f"{run_dir}: a {card.task} run, which {cls.__name__} cannot load; "
                "use Predictor.from_run, which picks the run's predictor"
            )
        return implementation

    def predict(self, images: Sequence[Image]) -> list[Any]:
        """One prediction per image, in order."""
        raise NotImplementedError
