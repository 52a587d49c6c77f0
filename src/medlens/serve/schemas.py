"""Request and response schemas of the HTTP API (inputs and outputs kept apart)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "BatchItemOut",
    "BatchOut",
    "ErrorOut",
    "HealthOut",
    "ModelCardOut",
    "PredictionOut",
    "PredictParams",
    "ReadyOut",
    "SegmentationOut",
    "SegmentationSummary",
]

WindowName = str


class PredictParams(BaseModel):
    """Query parameters of ``POST /v1/predict`` (input)."""

    model_config = ConfigDict(extra="forbid")

    heatmap: bool = Field(False, description="Add the Grad-CAM heatmap of the predicted class.")
    preview: bool = Field(False, description="Add a windowed PNG preview of the image.")
    window: WindowName = Field(
        "auto",
        max_length=32,
        pattern=r"^[A-Za-z0-9_.,:\-]+$",
        description="Display window for the preview: a preset (lung, bone, soft, brain), "
        "'auto', or 'center,width'.",
    )
    format: Literal["json", "nifti", "dicom-seg"] = Field(
        "json",
        description="Segmentation models only: 'nifti' answers the label map as a .nii.gz "
        "file on the input's grid, 'dicom-seg' as DICOM SEG (DICOM uploads only) instead "
        "of JSON.",
    )


class ImageInfo(BaseModel):
    modality: str = Field(description="DICOM modality code, 'OT' for plain images.")
    shape: list[int] = Field(description="Array shape as read (rows, cols[, channels]).")


class _Result(BaseModel):
    label: str = Field(description="The predicted class.")
    probabilities: dict[str, float] = Field(description="Probability of each class.")
    threshold: float | list[float] | None = Field(
        description="Decision threshold: binary, of the positive class; multi-label, one per "
        "label; multiclass, none (argmax)."
    )
    grade: int | None = Field(
        None, description="Ordinal models: index of the decided grade (0 = lowest), else null."
    )
    expected_grade: float | None = Field(
        None, description="Ordinal models: sum of grade index x probability, else null."
    )
    input_sha256: str = Field(description="SHA-256 of the uploaded file.")
    image: ImageInfo


class PredictionOut(_Result):
    """Response of ``POST /v1/predict``."""

    request_id: str
    model_name: str
    model_version: str
    engine: str = Field(description="Inference engine: 'torch' or 'onnxruntime'.")
    preview_png: str | None = Field(None, description="Base64 PNG preview (on request).")
    heatmap_png: str | None = Field(
        None,
        description="Base64 RGBA PNG of the Grad-CAM map, the preview's size; alpha follows "
        "the activation, draw it over the preview (on request).",
    )


class SegmentationOut(BaseModel):
    """Response of ``POST /v1/predict`` for a segmentation model."""

    task: Literal["segmentation"] = "segmentation"
    label: str = Field(description="The foreground classes found, '|'-joined ('' if none).")
    classes_found: list[str] = Field(description="The foreground classes found.")
    volumes: dict[str, float] = Field(
        description="Volume of each foreground class (mm³; mm² for a 2D image)."
    )
    volume_unit: Literal["mm3", "mm2"]
    colours: dict[str, str] = Field(description="Overlay colour of each class (#rrggbb).")
    input_sha256: str = Field(description="SHA-256 of the uploaded file.")
    image: ImageInfo
    spacing: list[float] = Field(description="Pixel/voxel spacing in mm, array order.")
    slice_index: int | None = Field(
        None, description="Volumes: the slice (first array axis) shown, the most foreground."
    )
    request_id: str
    model_name: str
    model_version: str
    engine: str = Field(description="Inference engine: 'torch' or 'onnx'.")
    preview_png: str | None = Field(None, description="Base64 PNG preview (on request).")
    overlay_png: str | None = Field(
        None,
        description="Base64 RGBA PNG of the mask, the preview's size: class colours, "
        "transparent background; draw it over the preview (with the preview).",
    )


class BatchItemOut(_Result):
    index: int = Field(description="Position of the file in the request.")


class BatchOut(BaseModel):
    """Response of ``POST /v1/predict/batch``."""

    request_id: str
    model_name: str
    model_version: str
    engine: str
    results: list[BatchItemOut]


class SegmentationSummary(BaseModel):
    """What a segmentation model takes and gives (from its plan)."""

    spatial_dims: int
    label_values: list[int] = Field(description="Label value of each class, background first.")
    patch_size: list[int]
    target_spacing: list[float] = Field(description="Spacing the model sees (mm, array order).")
    normalization: str
    volume_unit: Literal["mm3", "mm2"]


class ModelCardOut(BaseModel):
    """Response of ``GET /v1/model``: who the model is and what it is for."""

    name: str
    version: str
    architecture: str | None = None
    engine: str
    weights_sha256: str
    task: str | None = None
    classes: list[str] = Field(default_factory=list)
    threshold: float | list[float] | None = None
    intended_use: str | None = Field(None, description="From model.json, when it says.")
    segmentation: SegmentationSummary | None = Field(
        None, description="Segmentation models: the plan the model was trained with."
    )
    similar_cases: bool = Field(
        False, description="Whether POST /v1/similar can answer (the run has its index)."
    )
    card: dict[str, Any] = Field(description="The full model.json.")
    registry: dict[str, Any] | None = Field(
        None,
        description="For a model served from models:/...: registered name, version, "
        "aliases and MLflow run id.",
    )


class HealthOut(BaseModel):
    status: Literal["ok"] = "ok"


class ReadyOut(BaseModel):
    ready: bool
    model_version: str | None = None
    detail: str | None = None


class ErrorOut(BaseModel):
    """Every error response: a short reason code and a message, nothing from the input."""

    error: str
    detail: str
    request_id: str | None = None
