"""The model card, ``model.json``: everything needed to rebuild and use a trained model.

One typed :class:`ModelCard` for every task: common fields (architecture, the keyword
arguments of :func:`medlens.models.create_model`, preprocessing, classes, task, weights'
SHA-256, data fingerprint, training summary, versions) plus a per-task section:
``threshold`` / ``operating_point`` / ``temperature`` for classification, ``ordinal`` (head,
loss, grade decision chosen on validation) for ordinal tasks, ``segmentation`` (plan, label
values, sliding-window overlap) for segmentation. :func:`read_card` is the one
reader; cards written before the per-task section existed are read too.
"""

from __future__ import annotations

import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from medlens.errors import ModelError
from medlens.segmentation.plan import SegPlan
from medlens.training.checkpoint import atomic_write_text

__all__ = [
    "CARD_FORMAT",
    "GenerationCard",
    "ModelCard",
    "OrdinalCard",
    "SegmentationCard",
    "TrainingSummary",
    "read_card",
    "versions",
    "write_card",
]

CARD_FORMAT = "medlens-model/1"
CardTask = Literal["binary", "multiclass", "multilabel", "ordinal", "segmentation", "generation"]


class _Card(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TrainingSummary(_Card):
    """How the weights were chosen: the monitored validation figure and where it peaked."""

    model_config = ConfigDict(extra="allow", frozen=True)  # best_<monitor> is kept as well

    best_epoch: int
    epochs_run: int
    seed: int
    monitor: str = "val_auc"
    best: float | None = None
    precision: str = "fp32"


class SegmentationCard(_Card):
    """The segmentation section: plan (topology, patch, spacing), label values, overlap."""

    plan: SegPlan
    label_values: list[int]
    overlap: float = Field(0.5, ge=0.0, lt=1.0)


class OrdinalCard(_Card):
    """The ordinal section: classes are grades, lowest first (the card's ``classes``).

    ``decision`` is how a grade is decided (:func:`medlens.evaluation.ordinal.decide_grades`):
    ``argmax`` of the grade probabilities, ``median`` (the count of ``P(grade > k) > 0.5``)
    or ``cut_points`` (``K - 1`` increasing values) on the expected grade ``sum_k k * p_k``;
    the rule with the highest validation QWK (``qwk``; ``qwk_argmax`` and ``qwk_median``
    are those rules' kappas on the same cases).
    """

    head: Literal["linear", "ordinal"]
    loss: Literal["ce", "coral", "cumulative_link"]
    decision: Literal["argmax", "median", "cut_points"] = "argmax"
    cut_points: list[float] | None = None
    qwk: float | None = None
    qwk_argmax: float | None = None
    qwk_median: float | None = None

    @model_validator(mode="after")
    def _cut_points_fit(self) -> OrdinalCard:
        if (self.decision == "cut_points") != (self.cut_points is not None):
            raise ValueError("decision cut_points needs its cut_points, the other rules none")
        cuts = self.cut_points or []
        if any(b < a for a, b in zip(cuts, cuts[1:], strict=False)):
            raise ValueError(f"ordinal cut_points must increase, got {cuts}")
        return self


class GenerationCard(_Card):
    """The generation section: method, image size, and how samples are drawn."""

    method: Literal["dcgan", "wgan_gp", "ldm"]
    image_size: int
    in_chans: int
    #: ``{"name": "noise"}`` for GANs; ``{"name": "ddim"|"ddpm", "steps", "timesteps"}``
    sampler: dict[str, Any]
    options: dict[str, Any] = Field(default_factory=dict)  # n_critic, gp_weight, stage epochs


class ModelCard(_Card):
    """``model.json`` of a run directory (see the module docstring)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    format: str = CARD_FORMAT
    task: CardTask
    architecture: str
    create_model: dict[str, Any]
    preprocessing: dict[str, Any]
    classes: list[str]
    sha256: str
    threshold: float | list[float] | None = None
    operating_point: dict[str, Any] | list[dict[str, Any]] | None = None
    temperature: float = 1.0
    segmentation: SegmentationCard | None = None
    ordinal: OrdinalCard | None = None
    generation: GenerationCard | None = None
    #: synthetic images mixed into training (``data.augment_with``): source, fraction, counts
    synthetic_data: dict[str, Any] | None = None
    #: LoRA runs: the adapter file, its settings and the base weights' identity
    #: (:mod:`medlens.models.lora`); ``sha256`` is then the adapter file's
    adapter: dict[str, Any] | None = None
    data_fingerprint: dict[str, Any] | str | None = None
    training: TrainingSummary | None = None
    versions: dict[str, str] = Field(default_factory=dict)
    created: str | None = None

    @property
    def family(self) -> str:
        """``"segmentation"``, ``"generation"`` or ``"classification"`` (binary, multi-class,
        multi-label, ordinal)."""
        if self.task in ("segmentation", "generation"):
            return self.task
        return "classification"

    @property
    def weights_file(self) -> str:
        """The run's weights file: ``model.safetensors``, or a LoRA run's adapter file."""
        return str(self.adapter["file"]) if self.adapter else "model.safetensors"

    @property
    def output_task(self) -> str:
        """How the outputs are read: an ordinal model gives per-grade logits, as multiclass."""
        return "multiclass" if self.task == "ordinal" else self.task

    @model_validator(mode="before")
    @classmethod
    def _legacy_layout(cls, data: Any) -> Any:
        """Cards of medlens <= 0.1 kept the segmentation fields at the top level."""
        if isinstance(data, dict) and "plan" in data and "segmentation" not in data:
            overlap = (data.get("inference") or {}).get("overlap", 0.5)
            section = {"plan": data["plan"], "label_values": data.get("label_values")}
            data = {**data, "segmentation": {**section, "overlap": overlap}}
        return data

    @model_validator(mode="after")
    def _section_fits_task(self) -> ModelCard:
        if (self.task == "segmentation") != (self.segmentation is not None):
            raise ValueError("a segmentation card needs its segmentation section, others none")
        if (self.task == "ordinal") != (self.ordinal is not None):
            raise ValueError("an ordinal card needs its ordinal section, others none")
        if (self.task == "generation") != (self.generation is not None):
            raise ValueError("a generation card needs its generation section, others none")
        if (
            self.ordinal
            and self.ordinal.cut_points
            and len(self.ordinal.cut_points) != len(self.classes) - 1
        ):
            raise ValueError(f"{len(self.classes)} grades need {len(self.classes) - 1} cut_points")
        return self

    def to_json(self) -> str:
        return self.model_dump_json(indent=2) + "\n"


def versions() -> dict[str, str]:
    """Versions of medlens and the libraries that shape a model's numbers."""
    import torch

    from medlens import __version__

    return {"medlens": __version__, "torch": torch.__version__, "python": platform.python_version()}


def write_card(run_dir: str | Path, card: ModelCard | dict[str, Any]) -> Path:
    """Validate and write ``model.json`` atomically (adds format, versions, creation time)."""
    fields = card.model_dump() if isinstance(card, ModelCard) else dict(card)
    fields |= {
        "format": CARD_FORMAT,
        "versions": versions(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    try:
        full = ModelCard.model_validate(fields)
    except ValidationError as exc:
        raise ModelError(f"invalid model card: {_problems(exc)}") from None
    path = Path(run_dir) / "model.json"
    atomic_write_text(path, full.to_json())
    return path


def read_card(run_dir: str | Path) -> ModelCard:
    """Read and validate ``model.json`` of a run directory (:class:`ModelError` if unusable)."""
    path = Path(run_dir) / "model.json"
    if not path.is_file():
        raise ModelError(f"no model.json in {Path(run_dir)}: is it a finished medlens run?")
    try:
        return ModelCard.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        raise ModelError(f"{path}: not a valid model card ({_problems(exc)})") from None


def _problems(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
        for err in exc.errors()[:5]
    )
