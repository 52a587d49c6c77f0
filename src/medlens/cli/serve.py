"""``medlens serve``: put a trained run behind the web service (uvicorn)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import typer

from medlens.cli._common import console, handle_errors


@handle_errors
def serve(
    run: str = typer.Argument(
        ...,
        help="Run directory (model.json + model.safetensors), or a registered model: "
        "models:/NAME/VERSION or models:/NAME@ALIAS.",
        show_default=False,
    ),
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Address to bind. Any non-loopback address needs a token."
    ),
    port: int = typer.Option(8000, "--port", help="TCP port (0: any free port)."),
    workers: int = typer.Option(
        1,
        "--workers",
        help="Worker processes (each loads the model and has its own limits; /metrics adds "
        "up all of them).",
    ),
    token_file: Path | None = typer.Option(
        None, "--token-file", help="File whose first line is the bearer token clients must send."
    ),
    db: str | None = typer.Option(
        None, "--db", help="Audit database: a SQLite file or a URL. Default: RUN/audit.sqlite."
    ),
    max_upload_mb: float = typer.Option(64.0, "--max-upload-mb", help="Largest request body."),
    max_concurrency: int = typer.Option(
        2, "--max-concurrency", help="Inferences running at once (per worker)."
    ),
    torch_threads: int = typer.Option(
        1, "--torch-threads", help="PyTorch threads per inference (cores ~ concurrency x this)."
    ),
    queue_size: int = typer.Option(
        8, "--queue-size", help="Requests allowed to wait; beyond that the answer is 503."
    ),
    timeout: float = typer.Option(30.0, "--timeout", help="Inference deadline in seconds."),
    body_timeout: float = typer.Option(
        60.0, "--body-timeout", help="Seconds allowed to receive a request body (else 408)."
    ),
    max_uploads_per_client: int = typer.Option(
        4,
        "--max-uploads-per-client",
        help="Uploads one client address may be sending at once (beyond: 429).",
    ),
    log_level: str = typer.Option("info", "--log-level", help="uvicorn log level."),
    track_uri: str | None = typer.Option(
        None, "--track-uri", help="MLflow registry for models:/ (default: sqlite:///./mlruns.db)."
    ),
    model_cache: Path | None = typer.Option(
        None, "--model-cache", help="Where models:/ are downloaded (~/.cache/medlens/models)."
    ),
) -> None:
    """Serve a trained model: web page at /, API at /v1, docs at /docs, metrics at /metrics.

    The weights are checked against model.json before the service starts. SIGTERM (or
    Ctrl-C) stops taking requests and finishes those in flight.

    Examples:

        medlens serve runs/pneumonia

        medlens serve runs/pneumonia --host 0.0.0.0 --token-file /run/secrets/medlens-token

        medlens serve models:/pneumonia@champion     # registered with medlens register
    """
    import uvicorn
    from pydantic import ValidationError

    from medlens.errors import ConfigError
    from medlens.serve import ServeSettings, create_app
    from medlens.serve.metrics import MULTIPROC_ENV
    from medlens.serve.model import read_card, verify_weights

    run_dir = Path(run)
    if run.startswith("models:/"):
        from medlens.tracking import resolve_model_uri

        run_dir = resolve_model_uri(run, cache_dir=model_cache, tracking_uri=track_uri)
        console.print(f"{run} resolved to {run_dir}", soft_wrap=True)
    try:
        settings = ServeSettings(
            run_dir=run_dir,
            host=host,
            port=port,
            workers=workers,
            token_file=token_file,
            database_url=db,
            max_upload_mb=max_upload_mb,
            max_concurrency=max_concurrency,
            torch_threads=torch_threads,
            queue_size=queue_size,
            inference_timeout_s=timeout,
            body_timeout_s=body_timeout,
            max_uploads_per_client=max_uploads_per_client,
        )
    except ValidationError as exc:
        fields = ", ".join(".".join(map(str, e["loc"])) for e in exc.errors())
        raise ConfigError(f"invalid serve option(s): {fields}") from None
    settings.check_safe()
    verify_weights(settings.run_dir, read_card(settings.run_dir))
    console.print(f"medlens serving {run} on http://{host}:{port} (workers: {workers})")
    options = uvicorn_options(settings, log_level)
    if workers == 1:
        serve_one(create_app(settings), options)
        return
    # the workers' metrics meet in a fresh folder, removed when the last worker is gone
    with tempfile.TemporaryDirectory(prefix="medlens-metrics-") as metrics_dir:
        os.environ.update(settings_environment(settings))
        os.environ[MULTIPROC_ENV] = metrics_dir
        uvicorn.run("medlens.serve:create_app_from_env", factory=True, workers=workers, **options)


#: Seconds an idle keep-alive connection stays open. Longer than clients keep idle pooled
#: connections (httpx: 5 s, the old uvicorn default): otherwise the server closes one just
#: as a client sends a request on it, and that request is lost without answer or log.
KEEP_ALIVE_S = 75


def uvicorn_options(settings: object, log_level: str) -> dict[str, object]:
    """uvicorn's settings for ``settings`` (a :class:`~medlens.serve.ServeSettings`)."""
    return dict(
        host=settings.host,  # type: ignore[attr-defined]
        port=settings.port,  # type: ignore[attr-defined]
        log_level=log_level,
        timeout_graceful_shutdown=int(settings.inference_timeout_s) + 5,  # type: ignore[attr-defined]
        timeout_keep_alive=KEEP_ALIVE_S,
        server_header=False,
    )


def serve_one(app: object, options: dict[str, object]) -> None:
    """Run one uvicorn server on ``app``; stop it (exit 1) if its model fails to load.

    A clean drain after SIGTERM or Ctrl-C returns normally (exit 0).
    """
    import threading

    import uvicorn

    from medlens.errors import ServiceError
    from medlens.serve.server import DrainingServer

    server = DrainingServer(uvicorn.Config(app, **options))  # type: ignore[arg-type]
    model = app.state.service.model  # type: ignore[attr-defined]

    def stop_if_failed() -> None:
        if not model.wait():
            server.should_exit = True

    threading.Thread(target=stop_if_failed, name="medlens-load-watch", daemon=True).start()
    server.run()
    if model.failed:
        raise ServiceError(f"the model failed to load: {model.error}")
    if not server.started:
        raise ServiceError("the service did not start (see the log above)")


def settings_environment(settings: object) -> dict[str, str]:
    """``MEDLENS_SERVE_*`` variables that rebuild ``settings`` in each worker process.

    The token itself is never put in the environment, only the path of its file.
    """
    values = settings.model_dump(exclude={"api_token"}, exclude_none=True)  # type: ignore[attr-defined]
    env = {}
    for name, value in values.items():
        text = json.dumps(value) if isinstance(value, (list, dict)) else str(value)
        env[f"MEDLENS_SERVE_{name.upper()}"] = text
    return env
