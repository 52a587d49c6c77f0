"""Sliding-window inference over whole images, and :class:`SegmentationPredictor`.

The predictor rebuilds a trained segmenter from its run directory (``model.json`` and
``model.safetensors``, hash checked), preprocesses an :class:`~medlens.io.Image` exactly as in
training (target spacing, intensity normalisation), runs MONAI's Gaussian-weighted
``sliding_window_inference`` with the plan's patch size, resamples the class probabilities back
to the input grid and returns a label map that carries the input's spacing and affine unchanged.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from medlens.errors import InvalidImageError, ModelError
from medlens.io.image import Image
from medlens.segmentation.plan import SegPlan

__all__ = ["SegmentationPredictor", "sliding_window_logits"]


@torch.no_grad()
def sliding_window_logits(
    model: nn.Module,
    tensor: torch.Tensor,
    patch_size: tuple[int, ...],
    *,
    batch_size: int = 4,
    overlap: float = 0.5,
) -> torch.Tensor:
    """Logits ``(K, *spatial)`` for one preprocessed ``(C, *spatial)`` tensor."""
    from monai.inferers import sliding_window_inference

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        logits = sliding_window_inference(
            tensor[None].to(device),
            roi_size=patch_size,
            sw_batch_size=batch_size,
            predictor=model,
            overlap=overlap,
            mode="gaussian",
            padding_mode="constant",
            cval=float(tensor.min()),
        )
    finally:
        model.train(was_training)
    return torch.as_tensor(logits)[0].float().cpu()


class SegmentationPredictor:
    """A trained segmenter with its preprocessing and plan.

    >>> predictor = SegmentationPredictor.from_run("runs/hippocampus")  # doctest: +SKIP
    >>> labels = predictor.predict(read_image("case.nii.gz"))           # doctest: +SKIP
    """

    def __init__(
        self,
        model: nn.Module,
        preprocessing: Any,
        plan: SegPlan,
        card: dict[str, Any],
        *,
        overlap: float = 0.5,
    ) -> None:
        self.model = model.eval()
        self.preprocessing = preprocessing
        self.plan = plan
        self.card = card
        self.overlap = overlap
        self.classes: list[str] = list(card["classes"])
        self.label_values: list[int] = list(card.get("label_values") or range(len(self.classes)))

    @classmethod
    def from_run(cls, run_dir: str | Path, *, device: str | None = None) -> SegmentationPredictor:
        from medlens.models.unet import create_segmentation_model
        from medlens.training.card import read_card
        from medlens.training.checkpoint import load_weights
        from medlens.transforms.preprocess import preprocessing_from_dict

        run_dir = Path(run_dir)
        card = read_card(run_dir)
        if card.get("task") != "segmentation":
            raise ModelError(f"{run_dir}: not a segmentation run (task {card.get('task')!r})")
        plan = SegPlan.model_validate(card["plan"])
        model = create_segmentation_model(**card["create_model"])
        load_weights(model, run_dir / "model.safetensors", sha256=card["sha256"])
        preprocessing = preprocessing_from_dict(card["preprocessing"], source=str(run_dir))
        chosen = device or ("cuda" if torch.cuda.is_available() else "cpu")
        overlap = float(card.get("inference", {}).get("overlap", 0.5))
        return cls(model.to(chosen), preprocessing, plan, card, overlap=overlap)

    def probabilities(self, image: Image) -> torch.Tensor:
        """Class probabilities ``(K, *image.spatial_shape)`` on the input's own grid."""
        from medlens.transforms.preprocess import resize

        if image.ndim != self.plan.spatial_dims:
            raise InvalidImageError(
                f"{image.source or 'image'}: a {image.ndim}D image given to a "
                f"{self.plan.spatial_dims}D segmentation model"
            )
        tensor = self.preprocessing(replace(image, kind="scalar"))
        logits = sliding_window_logits(
            self.model,
            tensor,
            self.plan.patch_size,
            batch_size=self.plan.batch_size,
            overlap=self.overlap,
        )
        logits = resize(logits, image.spatial_shape)
        return torch.softmax(logits, dim=0)

    def predict(self, image: Image) -> Image:
        """The label map of ``image``: same shape, spacing and affine, original label values."""
        indices = self.probabilities(image).argmax(dim=0).numpy()
        values = np.asarray(self.label_values)
        dtype = np.uint8 if values.max() < 256 else np.uint16
        return Image(
            array=values[indices].astype(dtype),
            spacing=image.spacing,
            affine=np.array(image.affine, copy=True),
            modality="SEG",
            kind="label",
            meta={"format": "medlens segmentation", "classes": self.classes},
            source=None,
        )
