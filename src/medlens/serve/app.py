"""The application factory: settings in, a FastAPI app out; nothing at import time."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from medlens.serve.audit import AuditStore
from medlens.serve.gate import ClientUploads, InferenceGate
from medlens.serve.metrics import ServeMetrics
from medlens.serve.middleware import (
    REASON_BY_STATUS,
    GuardMiddleware,
    ObservabilityMiddleware,
    error_content,
)
from medlens.serve.model import ModelHandle, PredictorLike
from medlens.serve.settings import ServeSettings

__all__ = ["ServiceState", "create_app", "create_app_from_env"]

log = logging.getLogger("medlens.serve")

DOCS_ASSETS = "/docs/static"  # Swagger UI's JS, CSS and icon, served by the app itself


@dataclass
class ServiceState:
    """Everything one app instance owns; reached from routes as ``request.app.state.service``."""

    settings: ServeSettings
    token: str | None
    model: ModelHandle
    gate: InferenceGate
    uploads: ClientUploads
    audit: AuditStore
    metrics: ServeMetrics


def create_app(settings: ServeSettings, predictor: PredictorLike | None = None) -> FastAPI:
    """Build the service for ``settings.run_dir``.

    The model is verified (SHA-256 of model.safetensors against model.json) and loaded in
    the background at start-up; ``/readyz`` turns 200 when both are done. ``predictor``
    replaces :meth:`medlens.inference.Predictor.from_run` (tests, custom engines); the
    weights are verified all the same.

    Raises:
        ServiceError: unsafe settings (non-loopback host without a token, short token),
            not a run directory, an audit database that cannot be opened, or several
            workers without ``PROMETHEUS_MULTIPROC_DIR``.
    """
    settings.check_safe()
    loader = None if predictor is None else (lambda _run_dir: predictor)
    metrics = ServeMetrics(multiprocess=settings.workers > 1)
    state = ServiceState(
        settings=settings,
        token=settings.token(),
        model=ModelHandle(settings.run_dir, loader, on_ready=partial(_publish, metrics)),
        gate=InferenceGate(
            settings.max_concurrency,
            settings.queue_size,
            settings.inference_timeout_s,
            thread_init=partial(_torch_threads, settings.torch_threads),
            on_change=metrics.queued.set,
        ),
        uploads=ClientUploads(settings.max_uploads_per_client),
        audit=AuditStore(settings.audit_url),
        metrics=metrics,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        thread = state.model.start()
        try:
            yield
        finally:
            thread.join()
            state.gate.close()
            state.audit.close()
            state.metrics.close()

    from fastapi_offline import FastAPIOffline

    app = FastAPIOffline(  # Swagger UI from files in the package: /docs works offline
        redoc_url=None,
        static_url=DOCS_ASSETS,
        title="medlens",
        summary="Classify a medical image and explain the result.",
        version=_version(),
        lifespan=lifespan,
        responses={"4XX": {"model": _error_model()}, "5XX": {"model": _error_model()}},
        swagger_ui_parameters={"validatorUrl": None},  # never send the schema's URL out
    )
    app.state.service = state
    _add_handlers(app)
    from medlens.serve.routes import router
    from medlens.serve.similar import router as similar_router

    app.include_router(router)
    app.include_router(similar_router)
    app.mount("/static", StaticFiles(directory=static_dir()), name="static")
    app.add_middleware(GuardMiddleware, state=state)
    app.add_middleware(ObservabilityMiddleware, state=state)
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["*"])
    return app


def create_app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` (several workers): settings from ``MEDLENS_SERVE_*``.

    With ``MEDLENS_SERVE_WORKERS`` above 1, metrics are shared through
    ``PROMETHEUS_MULTIPROC_DIR`` (see :mod:`medlens.serve.metrics`).
    """
    return create_app(ServeSettings())  # type: ignore[call-arg]  # run_dir comes from env


def _publish(metrics: ServeMetrics, model: ModelHandle) -> None:
    metrics.model_loaded(model.name, model.version, model.engine)


def _torch_threads(count: int) -> None:
    """Intra-op threads of each inference thread: parallelism comes from concurrent
    requests (``max_concurrency``), not from splitting one small batch across cores."""
    import torch

    torch.set_num_threads(count)


def static_dir() -> Path:
    """The web page's files (inside the installed package)."""
    return Path(__file__).with_name("static")


def _version() -> str:
    from medlens import __version__

    return __version__


def _error_model() -> type:
    from medlens.serve.schemas import ErrorOut

    return ErrorOut


def _reply(
    request: Request, status: int, reason: str, detail: str, headers: dict | None = None
) -> JSONResponse:
    request.state.reason = reason
    content = error_content(reason, detail, getattr(request.state, "request_id", None))
    return JSONResponse(content, status_code=status, headers=headers)


def _add_handlers(app: FastAPI) -> None:
    """Every error answers ``{error, detail, request_id}``: no stack trace, path or input."""

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        reason = getattr(exc, "reason", None) or REASON_BY_STATUS.get(exc.status_code, "error")
        return _reply(request, exc.status_code, reason, str(exc.detail), exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_input(request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = sorted({".".join(str(p) for p in e.get("loc", ())[1:]) for e in exc.errors()})
        detail = "invalid or missing: " + (", ".join(f for f in fields if f) or "request")
        return _reply(request, 422, "invalid_input", detail)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled %s on %s", type(exc).__name__, request.url.path)
        return _reply(request, 500, "internal_error", "internal error")
