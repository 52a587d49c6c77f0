"""``POST /v1/similar``: the nearest training cases of an upload, with thumbnails and labels.

The run's index (``medlens similar`` builds it into ``RUN/similar/``) is loaded on the first
request. A response carries case numbers, labels, similarities and thumbnails drawn from
pixels only: no file names, patient IDs or DICOM tags.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from medlens.serve.middleware import ApiError
from medlens.serve.pipeline import b64
from medlens.serve.routes import UploadParam, _in_gate, _ready_model, _save_upload, _state
from medlens.serve.uploads import read_upload

router = APIRouter()
NOT_BUILT = "this run has no similar-case index yet: run `medlens similar RUN IMAGE` once"


class SimilarCaseOut(BaseModel):
    rank: int
    case: int = Field(description="Position in the training set (not a file name).")
    label: str
    similarity: float = Field(description="Cosine similarity of the embeddings.")
    thumbnail_png: str = Field(description="Base64 PNG drawn from the case's pixels only.")


class SimilarOut(BaseModel):
    request_id: str
    backend: str = Field(description="'numpy' (exact) or 'faiss' (exact flat index).")
    training_cases: int
    cases: list[SimilarCaseOut]


@router.post("/v1/similar", response_model=SimilarOut, tags=["predict"])
async def similar(
    request: Request, file: UploadParam, k: Annotated[int, Query(ge=1, le=20)] = 5
) -> SimilarOut:
    """The ``k`` training cases most similar to the image (by the model's embeddings)."""
    from medlens.similar import INDEX_DIR

    model = _ready_model(request)
    state = _state(request)
    if not (Path(model.run_dir) / INDEX_DIR / "identity.json").is_file():
        raise ApiError(404, "not_built", NOT_BUILT)
    with tempfile.TemporaryDirectory(prefix="medlens-upload-") as tmp:
        path, sha = await _save_upload(request, file, Path(tmp), None)
        request.state.audit_items = [{"item": None, "input_sha256": sha}]

        def job() -> tuple[Any, list[Any]]:
            index = _index(request, Path(model.run_dir))
            return index, index.search(read_upload(path, state.settings.max_upload_bytes), k)

        index, cases = await _in_gate(request, job, Path(tmp))
    return SimilarOut(
        request_id=request.state.request_id,
        backend=index.backend,
        training_cases=len(index.labels),
        cases=[
            SimilarCaseOut(**c.to_dict(), thumbnail_png=b64(index.thumbnail_png(c.case)) or "")
            for c in cases
        ],
    )


def _index(request: Request, run_dir: Path) -> Any:
    """The run's index (built by ``medlens similar``), loaded once per app."""
    from medlens.similar import SimilarIndex

    index = getattr(request.app.state, "similar_index", None)
    if index is None:
        index = SimilarIndex.build(run_dir)
        request.app.state.similar_index = index
    return index
