"""Verification of an exported segmentation model: sliding windows over held-out volumes.

The U-Net is exported with a dynamic batch axis and the plan's patch size (the sliding
window always feeds patch-size tiles; DynUNet also exports with spatial axes that are
multiples of its strides' product, but only the patch size is verified, so only it is
exported). Each held-out volume is preprocessed as the predictor does, segmented by
Gaussian-weighted sliding windows with PyTorch and with every exported file, and compared
on the preprocessed grid:

* ``max_abs_diff``: the largest |logit difference| over all voxels and cases (fp32 must
  stay within :attr:`Tolerance.max_abs_diff`);
* ``dice_agreement``: per foreground class, the Dice overlap of the two argmax label maps,
  pooled over the cases (fp32 and int8 must reach :attr:`Tolerance.min_dice_agreement`);
  ``None`` when neither map holds the class (nothing to compare; not a failure).

int8 calibration data are training patches of the plan's size, a third of them centred on
foreground (the sampler training uses, without augmentation).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from medlens.errors import ExportError
from medlens.export._data import first_split, read_manifest, sample_records
from medlens.export.verify import Tolerance

__all__ = ["SegmentationCheck", "SegmentationVerification", "dice_agreement"]

#: Defaults when ``export_run`` is not told: volumes verified, training patches calibrated.
MAX_VERIFY_VOLUMES = 20
MAX_CALIBRATION_PATCHES = 64
#: At most this many training cases are read to draw calibration patches from.
CALIBRATION_CASES = 32


@dataclass(frozen=True)
class SegmentationVerification:
    """One exported file's verification, as written to ``export.json``."""

    precision: Literal["fp32", "int8"]
    passed: bool
    n_cases: int
    voxels: int
    max_abs_diff: float
    voxel_agreement: float
    dice_agreement: dict[str, float | None]
    min_dice_agreement: float | None
    cases: list[dict[str, Any]]
    failures: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["failures"] = list(self.failures)
        return data


def dice_agreement(a: np.ndarray, b: np.ndarray, num_classes: int) -> list[tuple[int, int]]:
    """Per class ``1..K-1``: (2 |A ∩ B|, |A| + |B|) of two label maps of class indices."""
    return [(2 * int(((a == k) & (b == k)).sum()), int((a == k).sum() + (b == k).sum()))
            for k in range(1, num_classes)]  # fmt: skip


class _Tally:
    """Accumulates one exported file's comparison over the verification cases."""

    def __init__(self, names: list[str]) -> None:
        self.names = names
        self.overlap = np.zeros((len(names), 2), dtype=np.int64)
        self.max_diff, self.same, self.voxels = 0.0, 0, 0
        self.cases: list[dict[str, Any]] = []

    def add(self, name: str, reference: torch.Tensor, exported: torch.Tensor) -> None:
        if reference.shape != exported.shape:
            raise ExportError(
                f"{name}: exported model gives logits {tuple(exported.shape)}, "
                f"PyTorch {tuple(reference.shape)}"
            )
        diff = float((reference - exported).abs().max())
        a, b = reference.argmax(0).numpy(), exported.argmax(0).numpy()
        counts = np.asarray(dice_agreement(a, b, len(self.names) + 1), dtype=np.int64)
        self.overlap += counts
        self.max_diff = max(self.max_diff, diff)
        self.same += int((a == b).sum())
        self.voxels += a.size
        pairs = zip(self.names, counts.tolist(), strict=True)
        dices = {n: (i / s if s else None) for n, (i, s) in pairs}
        case = {"case": name, "shape": list(a.shape), "max_abs_diff": diff}
        self.cases.append({**case, "dice_agreement": dices})

    def result(
        self, precision: Literal["fp32", "int8"], tolerance: Tolerance
    ) -> SegmentationVerification:
        dice = {
            name: (float(i / s) if s else None)
            for name, (i, s) in zip(self.names, self.overlap.tolist(), strict=True)
        }
        defined = [v for v in dice.values() if v is not None]
        lowest = min(defined) if defined else None
        failures = []
        if precision == "fp32" and not self.max_diff <= tolerance.max_abs_diff:
            failures.append(
                f"max |logit difference| {self.max_diff:.3g} > {tolerance.max_abs_diff:.3g}"
            )
        low = {n: v for n, v in dice.items() if v is not None and v < tolerance.min_dice_agreement}
        if low:
            shown = ", ".join(f"{n} {v:.4f}" for n, v in low.items())
            failures.append(f"Dice agreement {shown} < {tolerance.min_dice_agreement:.4f}")
        return SegmentationVerification(
            precision=precision,
            passed=not failures,
            n_cases=len(self.cases),
            voxels=self.voxels,
            max_abs_diff=self.max_diff,
            voxel_agreement=self.same / max(self.voxels, 1),
            dice_agreement=dice,
            min_dice_agreement=lowest,
            cases=self.cases,
            failures=tuple(failures),
        )


class SegmentationCheck:
    """What :func:`~medlens.export.export_run` needs to export and verify a segmenter.

    Reads the held-out volumes (``splits``, the first one with cases) and, for int8, the
    calibration patches; :meth:`verify` compares every exported file with PyTorch in one
    pass over the volumes (each volume's logits are held only while it is compared).
    """

    card_fields = ("segmentation",)  # the card's fields export.json repeats

    def __init__(
        self,
        predictor: Any,
        source: str | Path,
        *,
        splits: tuple[str, ...],
        max_verify: int | None,
        max_calibration: int | None,
        int8: bool,
        tolerance: Tolerance,
        seed: int,
    ) -> None:
        self.predictor, self.tolerance = predictor, tolerance
        self.model = predictor.model.cpu().eval()  # compared on the CPU, like ONNX Runtime
        self.plan = predictor.plan
        manifest = _manifest(source)
        self.source = source
        records, self.split = first_split(manifest, splits, source)
        self.records = sample_records(records, max_verify or MAX_VERIFY_VOLUMES, seed)
        self.calibration: torch.Tensor | None = None
        if int8:
            train, _ = first_split(manifest, ("train", ""), source)
            limit = max_calibration or MAX_CALIBRATION_PATCHES
            self.calibration = self._patches(
                sample_records(train, CALIBRATION_CASES, seed), limit, seed
            )
        channels = int(predictor.card.preprocessing.get("channels") or 1)
        self.input_shape = ["batch", channels, *self.plan.patch_size]
        self.example = torch.zeros(2, channels, *self.plan.patch_size)

    def calibration_batches(self) -> list[torch.Tensor]:
        if self.calibration is None:
            raise ExportError("no calibration patches were drawn (int8 not asked)")
        return list(self.calibration.split(self.plan.batch_size))

    def verify(self, exported: dict[str, Path]) -> dict[str, SegmentationVerification]:
        """Sliding-window logits of PyTorch and of each file, compared volume by volume."""
        from medlens.data import load_record_image
        from medlens.inference.onnx_runtime import OnnxModel

        models = {name: OnnxModel(path) for name, path in exported.items()}
        tallies = {name: _Tally(list(self.predictor.classes[1:])) for name in exported}
        for record in self.records:
            image = load_record_image(record.path)
            tensor = self.predictor.preprocessing(replace(image, kind="scalar")).float()
            name = record.patient_id or Path(record.path).name
            reference = self._logits(self.model, tensor)
            for key, model in models.items():
                tallies[key].add(name, reference, self._logits(model, tensor))
        return {
            key: tally.result("fp32" if key == "fp32" else "int8", self.tolerance)
            for key, tally in tallies.items()
        }

    def data_record(self) -> dict[str, Any]:
        return {
            "verification_split": self.split,
            "verification_cases": [r.patient_id or Path(r.path).name for r in self.records],
            "calibration_patches": 0 if self.calibration is None else len(self.calibration),
            "patch_size": list(self.plan.patch_size),
            "overlap": self.predictor.overlap,
        }

    def _logits(self, model: Any, tensor: torch.Tensor) -> torch.Tensor:
        from medlens.segmentation.sliding_window import sliding_window_logits

        return sliding_window_logits(
            model,
            tensor,
            self.plan.patch_size,
            batch_size=self.plan.batch_size,
            overlap=self.predictor.overlap,
        )

    def _patches(self, records: list[Any], limit: int, seed: int) -> torch.Tensor:
        from medlens.segmentation.data import PatchDataset, load_cases

        values = self.predictor.label_values
        cases = load_cases(records, self.predictor.preprocessing, values, self.plan.patch_size)
        patches = PatchDataset(cases, self.plan.patch_size, samples_per_epoch=limit, seed=seed)
        return torch.stack([patches[i][0] for i in range(len(patches))]).float()


def _manifest(source: str | Path) -> Any:
    manifest = read_manifest(source)
    if manifest.task != "segmentation":
        raise ExportError(f"{source}: no label maps (label_path) for a segmentation model")
    return manifest
