"""HTTP routes: thin adapters from requests to :mod:`medlens.serve.pipeline`."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, BinaryIO, TypeVar

import anyio
from fastapi import APIRouter, File, Query, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response

from medlens.errors import (
    ImageTooLargeError,
    InvalidImageError,
    MedlensError,
    UnsupportedFormatError,
)
from medlens.serve.gate import InferenceTimeout
from medlens.serve.middleware import ApiError
from medlens.serve.pipeline import Analysis, analyse, b64, preview_image
from medlens.serve.schemas import (
    BatchItemOut,
    BatchOut,
    HealthOut,
    ImageInfo,
    ModelCardOut,
    PredictionOut,
    PredictParams,
    ReadyOut,
    SegmentationOut,
    SegmentationSummary,
)
from medlens.serve.segment import (
    FILE_NAMES,
    MEDIA_TYPES,
    SegAnalysis,
    check_download,
    is_segmentation,
    segment_upload,
    write_download,
)
from medlens.serve.uploads import open_upload

log = logging.getLogger("medlens.serve")
router = APIRouter()
T = TypeVar("T")

ACCEPTED_TYPES = frozenset(
    {
        "application/dicom",
        "application/octet-stream",
        "image/png",
        "image/jpeg",
        "application/gzip",
        "application/x-gzip",
        "application/x-nifti",
        "application/zip",  # a zip of one DICOM series
        "application/x-zip-compressed",
        "",
    }
)
KEPT_SUFFIXES = (".nii.gz", ".nii", ".dcm", ".dicom", ".png", ".jpg", ".jpeg", ".zip")
SEGMENTATION_ONLY = "format=nifti and format=dicom-seg are for segmentation models"
NO_SEG_HEATMAP = "Grad-CAM heatmaps are not available for segmentation models"
NO_SEG_BATCH = (
    "batch prediction is not available for segmentation models: send each image to POST /v1/predict"
)
CHUNK = 1 << 20


# --- operations ------------------------------------------------------------------------


@router.get("/healthz", response_model=HealthOut, tags=["operations"])
def healthz() -> HealthOut:
    """Liveness: the process answers."""
    return HealthOut()


@router.get(
    "/readyz", response_model=ReadyOut, tags=["operations"], responses={503: {"model": ReadyOut}}
)
def readyz(request: Request) -> Any:
    """Readiness: the model is loaded and its weights matched model.json."""
    model = _state(request).model
    if model.ready:
        return ReadyOut(ready=True, model_version=model.version)
    detail = "model failed to load" if model.failed else "model loading"
    return JSONResponse(ReadyOut(ready=False, detail=detail).model_dump(), status_code=503)


@router.get("/metrics", tags=["operations"], response_class=Response)
def metrics(request: Request) -> Response:
    """Prometheus metrics in the text exposition format."""
    from prometheus_client import CONTENT_TYPE_LATEST

    return Response(_state(request).metrics.render(), media_type=CONTENT_TYPE_LATEST)


@router.get("/", include_in_schema=False)
def index(request: Request) -> FileResponse:
    from medlens.serve.app import static_dir

    return FileResponse(static_dir() / "index.html", media_type="text/html")


# --- model -----------------------------------------------------------------------------


@router.get("/v1/model", response_model=ModelCardOut, tags=["model"])
def model_card(request: Request) -> ModelCardOut:
    """The model card (model.json) of the served model."""
    model = _ready_model(request)
    card = model.card
    return ModelCardOut(
        name=model.name,
        version=model.version,
        architecture=card.get("architecture"),
        engine=model.engine,
        weights_sha256=model.sha256 or "",
        task=card.get("task"),
        classes=[str(c) for c in card.get("classes", [])],
        threshold=card.get("threshold"),
        intended_use=card.get("intended_use"),
        segmentation=_segmentation_summary(card),
        similar_cases=(Path(model.run_dir) / "similar" / "identity.json").is_file(),
        card=card,
        registry=model.registry,
    )


def _segmentation_summary(card: dict[str, Any]) -> SegmentationSummary | None:
    section = card.get("segmentation")
    if not isinstance(section, dict) or not isinstance(section.get("plan"), dict):
        return None
    plan = section["plan"]
    return SegmentationSummary(
        spatial_dims=plan["spatial_dims"],
        label_values=section.get("label_values", []),
        patch_size=plan["patch_size"],
        target_spacing=plan["target_spacing"],
        normalization=plan.get("normalization", "zscore"),
        volume_unit="mm3" if plan["spatial_dims"] == 3 else "mm2",
    )


# --- prediction ------------------------------------------------------------------------

UploadParam = Annotated[
    UploadFile, File(description="DICOM, NIfTI, PNG or JPEG file, or a zip of one DICOM series.")
]
FILE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {media: {} for media in MEDIA_TYPES.values()}}
}


@router.post(
    "/v1/predict",
    response_model=PredictionOut | SegmentationOut,
    tags=["predict"],
    responses=FILE_RESPONSES,
)
async def predict(
    request: Request, file: UploadParam, params: Annotated[PredictParams, Query()]
) -> Any:
    """Classify one image (optionally with its preview and Grad-CAM heatmap), or, for a
    segmentation model, segment it: classes found, volumes, preview with the mask overlay;
    with ``format=nifti|dicom-seg`` the label map file instead of JSON."""
    model = _ready_model(request)
    if is_segmentation(model.predictor):
        return await _segment(request, file, params)
    if params.format != "json":
        raise ApiError(400, "not_available", SEGMENTATION_ONLY)
    (result,) = await _run_uploads(request, [file], params)
    return PredictionOut(
        **_result_fields(result),
        request_id=request.state.request_id,
        model_name=model.name,
        model_version=model.version,
        engine=result[1].engine,
        preview_png=b64(result[1].preview_png),
        heatmap_png=b64(result[1].heatmap_png),
    )


@router.post("/v1/predict/batch", response_model=BatchOut, tags=["predict"])
async def predict_batch(
    request: Request,
    files: Annotated[list[UploadFile], File(description="Up to max_batch_files images.")],
) -> BatchOut:
    """Classify several images in one request (all or nothing)."""
    model = _ready_model(request)
    if is_segmentation(model.predictor):
        raise ApiError(400, "not_available", NO_SEG_BATCH)
    limit = _state(request).settings.max_batch_files
    if len(files) > limit:
        raise ApiError(413, "too_many_files", f"at most {limit} files per batch")
    results = await _run_uploads(request, files, PredictParams())
    return BatchOut(
        request_id=request.state.request_id,
        model_name=model.name,
        model_version=model.version,
        engine=model.engine,
        results=[BatchItemOut(index=i, **_result_fields(r)) for i, r in enumerate(results)],
    )


@router.post(
    "/v1/preview",
    tags=["predict"],
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
)
async def preview(
    request: Request,
    file: UploadParam,
    window: Annotated[str, Query(max_length=32, pattern=r"^[A-Za-z0-9_.,:\-]+$")] = "auto",
    index: Annotated[
        int | None, Query(alias="slice", ge=0, description="Volumes: the slice to show.")
    ] = None,
) -> Response:
    """A PNG of the image through a display window (preset name, 'auto' or 'center,width');
    of a volume, the middle slice or ``slice``."""
    _ready_model(request)
    limit = _state(request).settings.max_upload_bytes
    with tempfile.TemporaryDirectory(prefix="medlens-upload-") as tmp:
        path, _sha = await _save_upload(request, file, Path(tmp), None)
        png = await _in_gate(request, lambda: preview_image(path, window, index, limit), Path(tmp))
    return Response(png, media_type="image/png")


# --- helpers ---------------------------------------------------------------------------


def _state(request: Request) -> Any:
    return request.app.state.service


def _ready_model(request: Request) -> Any:
    model = _state(request).model
    if not model.ready:
        retry = str(_state(request).settings.retry_after_s)
        raise ApiError(503, "not_ready", "the model is not loaded yet", {"Retry-After": retry})
    return model


def _result_fields(result: tuple[str, Analysis]) -> dict[str, Any]:
    sha, a = result
    return dict(
        label=a.label,
        probabilities=a.probabilities,
        threshold=a.threshold,
        grade=a.grade,
        expected_grade=a.expected_grade,
        input_sha256=sha,
        image=ImageInfo(modality=a.modality, shape=list(a.shape)),
    )


async def _run_uploads(
    request: Request, files: list[UploadFile], params: PredictParams
) -> list[tuple[str, Analysis]]:
    """Save, hash and analyse every upload under one inference slot; fill the audit items."""
    state = _state(request)
    single = len(files) == 1 and request.url.path == "/v1/predict"
    items: list[dict[str, Any]] = []
    request.state.audit_items = items
    with tempfile.TemporaryDirectory(prefix="medlens-upload-") as tmp:
        saved = []
        for i, upload in enumerate(files):
            path, sha = await _save_upload(request, upload, Path(tmp), None if single else i)
            saved.append((path, sha))
            items.append({"item": None if single else i, "input_sha256": sha})

        def job() -> list[Analysis]:
            out = []
            for path, _sha in saved:
                start = time.perf_counter()
                a = analyse(
                    state.model,
                    path,
                    heatmap=params.heatmap,
                    preview=params.preview,
                    window=params.window,
                    max_bytes=state.settings.max_upload_bytes,
                )
                state.metrics.inference_latency.labels(engine=a.engine).observe(
                    time.perf_counter() - start
                )
                out.append(a)
            return out

        analyses = await _in_gate(request, job, Path(tmp), scale=len(saved))
    for item, a in zip(items, analyses, strict=True):
        item.update(label=a.label, probability=a.probabilities.get(a.label), engine=a.engine)
    return [(sha, a) for (_p, sha), a in zip(saved, analyses, strict=True)]


async def _segment(request: Request, file: UploadFile, params: PredictParams) -> Any:
    """``POST /v1/predict`` on a segmentation model: JSON, or the label map as a file."""
    if params.heatmap:
        raise ApiError(400, "not_available", NO_SEG_HEATMAP)
    state, fmt = _state(request), params.format
    item: dict[str, Any] = {"item": None}
    request.state.audit_items = [item]
    with tempfile.TemporaryDirectory(prefix="medlens-upload-") as tmp:
        path, item["input_sha256"] = await _save_upload(request, file, Path(tmp), None)

        def job() -> tuple[SegAnalysis, bytes | None]:
            start = time.perf_counter()
            upload = open_upload(path, state.settings.max_upload_bytes)
            check_download(upload, fmt)
            predictor = state.model.predictor
            a = segment_upload(
                predictor, upload, preview=params.preview and fmt == "json", window=params.window
            )
            latency = time.perf_counter() - start
            state.metrics.inference_latency.labels(engine=a.engine).observe(latency)
            return a, None if fmt == "json" else write_download(predictor, upload, a.labels, fmt)

        a, data = await _in_gate(request, job, Path(tmp))
    item.update(label=a.label[:128], probability=None, engine=a.engine)
    if data is not None:
        disposition = f'attachment; filename="{FILE_NAMES[fmt]}"'
        return Response(
            data, media_type=MEDIA_TYPES[fmt], headers={"Content-Disposition": disposition}
        )
    return _segmentation_out(request, item["input_sha256"], a)


def _segmentation_out(request: Request, sha: str, a: SegAnalysis) -> SegmentationOut:
    model = _state(request).model
    return SegmentationOut(
        label=a.label,
        classes_found=a.found,
        volumes=a.volumes,
        volume_unit=a.volume_unit,  # type: ignore[arg-type]
        colours=a.colours,
        input_sha256=sha,
        image=ImageInfo(modality=a.modality, shape=list(a.shape)),
        spacing=list(a.spacing),
        slice_index=a.slice_index,
        request_id=request.state.request_id,
        model_name=model.name,
        model_version=model.version,
        engine=a.engine,
        preview_png=b64(a.preview_png),
        overlay_png=b64(a.overlay_png),
    )


async def _in_gate(request: Request, job: Callable[[], T], tmp: Path, scale: int = 1) -> T:
    """Run ``job`` under the inference gate, turning failures into short API errors.

    ``tmp`` is the uploads' temporary folder, cut out of error messages.
    """
    state = _state(request)
    deadline = time.monotonic() + state.settings.inference_timeout_s * scale
    try:
        return await state.gate.run(job, deadline)
    except InferenceTimeout:
        raise ApiError(504, "timeout", "inference took too long") from None
    except MedlensError as exc:
        raise _image_error(exc, tmp) from None
    except Exception as exc:  # the service boundary: log the type, tell the client little
        log.error("inference failed (request %s): %s", request.state.request_id, type(exc).__name__)
        raise ApiError(500, "internal_error", "the image could not be processed") from None


def _image_error(exc: MedlensError, tmp: Path) -> ApiError:
    """A 4xx for an image medlens refused, its message stripped of the temporary path."""
    message = str(exc).replace(f"{tmp}{os.sep}", "").replace(str(tmp), "upload")[:200]
    if isinstance(exc, ImageTooLargeError):
        return ApiError(413, "image_too_large", message)
    if isinstance(exc, UnsupportedFormatError):
        return ApiError(415, "unsupported_format", message)
    if isinstance(exc, InvalidImageError):
        return ApiError(422, "invalid_image", message)
    return ApiError(422, "cannot_process", message)


async def _save_upload(
    request: Request, upload: UploadFile, folder: Path, index: int | None
) -> tuple[Path, str]:
    """Copy an upload to a private temporary file, hashing it; refuse unknown types (415)."""
    content_type = (upload.content_type or "").split(";")[0].strip().lower()
    if content_type not in ACCEPTED_TYPES:
        where = "" if index is None else f" (file {index})"
        raise ApiError(415, "unsupported_media_type", f"content type not accepted{where}")
    name = (upload.filename or "").lower()
    suffix = next((s for s in KEPT_SUFFIXES if name.endswith(s)), "")
    path = folder / f"upload{'' if index is None else index}{suffix}"
    sha = await anyio.to_thread.run_sync(_copy_hashed, upload.file, path)
    if path.stat().st_size == 0:
        raise ApiError(422, "invalid_image", "the upload is empty")
    return path, sha


def _copy_hashed(source: BinaryIO, target: Path) -> str:
    digest = hashlib.sha256()
    source.seek(0)
    with open(target, "xb") as out:
        for block in iter(lambda: source.read(CHUNK), b""):
            digest.update(block)
            out.write(block)
    return digest.hexdigest()
