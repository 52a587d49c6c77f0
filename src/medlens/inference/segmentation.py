"""Segmentation predictions: a label map on the input's own grid, and volumes per class.

The image is preprocessed exactly as in training (target spacing, intensity normalisation),
segmented with Gaussian-weighted sliding windows of the plan's patch size, and the class
probabilities are resampled back to the input grid, so the label map carries the input's
spacing and affine unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from medlens.errors import InvalidImageError
from medlens.inference.base import Predictor
from medlens.io.image import Image

__all__ = ["SegmentationPrediction", "SegmentationPredictor"]


@dataclass(frozen=True)
class SegmentationPrediction:
    """One image's label map (original label values) and each class's volume (mm³, or
    mm² for 2D images)."""

    label_map: Image
    volumes: dict[str, float]
    engine: str
    source: str = ""

    @property
    def label(self) -> str:
        """The foreground classes found, ``|``-joined (empty when none)."""
        return "|".join(name for name, volume in self.volumes.items() if volume > 0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "label": self.label,
            "engine": self.engine,
            **{f"volume_mm3_{name}": v for name, v in self.volumes.items()},
        }


class SegmentationPredictor(Predictor):
    """A trained segmenter with its preprocessing and plan.

    >>> predictor = Predictor.from_run("runs/hippocampus")              # doctest: +SKIP
    >>> predictor.predict([read_image("case.nii.gz")])[0].label_map      # doctest: +SKIP
    """

    family = "segmentation"

    def _configure(self) -> None:
        section = self.card.segmentation
        assert section is not None  # the card validator guarantees it
        self.plan = section.plan
        self.overlap = section.overlap
        self.label_values: list[int] = list(section.label_values)
        if isinstance(self.model, torch.nn.Module) and torch.cuda.is_available():
            self.model = self.model.cuda()

    def probabilities(self, image: Image) -> torch.Tensor:
        """Class probabilities ``(K, *image.spatial_shape)`` on the input's own grid."""
        from medlens.segmentation.sliding_window import sliding_window_logits
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
        return torch.softmax(resize(logits, image.spatial_shape), dim=0)

    def segment(self, image: Image) -> Image:
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

    def predict(self, images: Sequence[Image]) -> list[SegmentationPrediction]:
        """A label map and per-class volumes for each image."""
        results = []
        for image in images:
            labels = self.segment(image)
            voxel = float(np.prod(labels.spacing))
            volumes = {
                name: float((labels.array == value).sum()) * voxel
                for name, value in zip(self.classes[1:], self.label_values[1:], strict=True)
            }
            source = str(image.source) if image.source is not None else ""
            results.append(SegmentationPrediction(labels, volumes, self.engine, source))
        return results
