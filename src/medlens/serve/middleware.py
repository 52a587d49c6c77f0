"""ASGI middleware: observability (request id, metrics, audit) and the guard in front of
uploads: token, readiness and uploads per client before the body is read; body size and
time while it is read; admission to the inference queue once it is in."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
import uuid
from datetime import datetime, timezone
from functools import partial
from typing import TYPE_CHECKING, Any

import anyio
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from medlens.errors import MedlensError
from medlens.serve.audit import AuditRecord
from medlens.serve.gate import Saturated

if TYPE_CHECKING:
    from medlens.serve.app import ServiceState

__all__ = ["ApiError", "GuardMiddleware", "ObservabilityMiddleware", "route_of"]

log = logging.getLogger("medlens.serve")

PREDICT_ROUTES = frozenset({"/v1/predict", "/v1/predict/batch", "/v1/preview"})
KNOWN_ROUTES = PREDICT_ROUTES | {
    "/v1/model",
    "/healthz",
    "/readyz",
    "/metrics",
    "/",
    "/docs",
    "/openapi.json",
}
REASON_BY_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    408: "body_timeout",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "too_many_uploads",
    500: "internal_error",
    503: "unavailable",
    504: "timeout",
}

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
)
# Swagger UI starts from an inline script and sets inline styles; still nothing from elsewhere
DOCS_CSP = CSP.replace("script-src 'self'", "script-src 'self' 'unsafe-inline'").replace(
    "style-src 'self'", "style-src 'self' 'unsafe-inline'"
)
#: Refusals answered without waiting for their audit row's commit.
UNWAITED_REASONS = frozenset({"not_ready", "saturated", "too_many_uploads"})
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),
]


class ApiError(HTTPException):
    """An error answer with a reason code; raised by routes and by the body limit."""

    def __init__(
        self, status_code: int, reason: str, detail: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(status_code=status_code, detail=detail, headers=headers)
        self.reason = reason


def route_of(path: str) -> str:
    """The route label of a path: a known template, ``/docs``, ``/static`` or ``other``."""
    if path in KNOWN_ROUTES:
        return path
    if path.startswith("/docs/"):  # Swagger UI's assets and OAuth2 redirect page
        return "/docs"
    return "/static" if path.startswith("/static/") else "other"


def error_content(reason: str, detail: str, request_id: str | None) -> dict[str, Any]:
    return {"error": reason, "detail": detail, "request_id": request_id}


def error_body(reason: str, detail: str, request_id: str | None) -> bytes:
    return json.dumps(error_content(reason, detail, request_id)).encode()


async def send_error(send: Send, status: int, body: bytes, headers: dict[str, str]) -> None:
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def _settle(loop: asyncio.AbstractEventLoop, future: asyncio.Future, value: Any) -> None:
    """From the audit writer thread: complete ``future`` in its loop."""

    def settle() -> None:
        if not future.done():
            future.set_result(value)

    loop.call_soon_threadsafe(settle)


class ObservabilityMiddleware:
    """Give each request an id, count and time it, add security headers, and write the
    audit rows of prediction requests *before* the response starts (a client that got an
    answer can rely on its row being committed). Refusals made before any work (not
    ready, saturated, too many uploads) answer at once, their rows queued behind."""

    def __init__(self, app: ASGIApp, state: ServiceState) -> None:
        self.app, self.state = app, state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = route_of(scope["path"])
        request_id = uuid.uuid4().hex
        info: dict[str, Any] = scope.setdefault("state", {})
        info["request_id"] = request_id
        started_at, start = datetime.now(timezone.utc), time.perf_counter()
        metrics = self.state.metrics
        response_started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = int(message["status"])
                latency = time.perf_counter() - start
                await self._record(route, status, latency, started_at, info)
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                headers += SECURITY_HEADERS
                policy = DOCS_CSP if route == "/docs" else CSP
                headers.append((b"content-security-policy", policy.encode()))
                message = {**message, "headers": headers}
            await send(message)

        metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:
            if not response_started:
                latency = time.perf_counter() - start
                await self._record(route, 500, latency, started_at, info)
            raise
        finally:
            metrics.in_flight.dec()

    async def _record(
        self, route: str, status: int, latency: float, when: datetime, info: dict[str, Any]
    ) -> None:
        metrics = self.state.metrics
        metrics.requests.labels(route=route, status=str(status)).inc()
        metrics.request_latency.labels(route=route).observe(latency)
        reason = info.get("reason") or (REASON_BY_STATUS.get(status) if status >= 400 else None)
        if reason:
            metrics.rejected.labels(reason=reason).inc()
        if route not in PREDICT_ROUTES or info.get("audited"):
            return
        info["audited"] = True
        records = self._records(route, status, latency * 1000.0, when, info, reason)
        if reason in UNWAITED_REASONS:  # answered at once; the row follows in the queue
            self.state.audit.append(records, partial(self._audit_done, info["request_id"]))
            return
        loop = asyncio.get_running_loop()
        committed: asyncio.Future[MedlensError | None] = loop.create_future()
        self.state.audit.append(records, partial(_settle, loop, committed))
        error = await committed
        if error is not None:
            self._audit_done(info["request_id"], error)

    def _audit_done(self, request_id: str, error: MedlensError | None) -> None:
        """The answer still goes out; operations see the error."""
        if error is not None:
            self.state.metrics.rejected.labels(reason="audit_failed").inc()
            log.error("audit write failed for request %s: %s", request_id, error)

    def _records(
        self,
        route: str,
        status: int,
        latency_ms: float,
        when: datetime,
        info: dict[str, Any],
        reason: str | None,
    ) -> list[AuditRecord]:
        common = dict(
            time=when,
            request_id=info["request_id"],
            route=route,
            status_code=status,
            latency_ms=round(latency_ms, 3),
            reason=reason,
            model_version=self.state.model.version if self.state.model.ready else None,
            model_name=self.state.model.name if self.state.model.ready else None,
        )
        items = info.get("audit_items") or [{}]
        if status >= 400:  # a failed request keeps the hashes it saw, no results
            items = [
                {k: v for k, v in item.items() if k in ("item", "input_sha256")} for item in items
            ]
        return [AuditRecord(**common, **item) for item in items]


class GuardMiddleware:
    """In front of protected routes: bearer token; in front of uploads: readiness, admission
    and the body size limit (declared Content-Length, then counted while streaming)."""

    def __init__(self, app: ASGIApp, state: ServiceState) -> None:
        self.app, self.state = app, state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        info = scope.setdefault("state", {})
        protected = path.startswith("/v1/") or path == "/metrics"
        if protected and not self._authorised(scope):
            info["reason"] = "unauthorized"
            detail = "missing or wrong bearer token"
            body = error_body("unauthorized", detail, info.get("request_id"))
            await send_error(send, 401, body, {"WWW-Authenticate": "Bearer"})
            return
        if path not in PREDICT_ROUTES or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        await self._guard_upload(scope, receive, send, info)

    def _authorised(self, scope: Scope) -> bool:
        token = self.state.token
        if token is None:
            return True
        header = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
        scheme, _, given = header.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token)

    async def _guard_upload(self, scope: Scope, receive: Receive, send: Send, info: dict) -> None:
        refusal = self._refusal(scope)
        if refusal is not None:
            status, reason, detail, headers = refusal
            info["reason"] = reason
            await send_error(
                send, status, error_body(reason, detail, info.get("request_id")), headers
            )
            return
        upload = BodyGuard(self.state, info, receive, client_key(scope))
        try:
            await self.app(scope, upload.receive, send)
        finally:
            upload.close()

    def _refusal(self, scope: Scope) -> tuple[int, str, str, dict[str, str]] | None:
        """Why to refuse an upload before reading its body, or None."""
        settings = self.state.settings
        retry = {"Retry-After": str(settings.retry_after_s)}
        if not self.state.model.ready:
            return 503, "not_ready", "the model is not loaded yet", retry
        declared = dict(scope["headers"]).get(b"content-length") or b""
        if declared.isdigit() and int(declared) > settings.max_upload_bytes:
            detail = f"upload larger than {settings.max_upload_mb:g} MB"
            return 413, "too_large", detail, {"Connection": "close"}
        if self.state.uploads.sending(client_key(scope)) >= self.state.uploads.limit:
            detail = "too many uploads at once from this client; retry later"
            return 429, "too_many_uploads", detail, retry
        return None


def client_key(scope: Scope) -> str:
    """The client's address (the unit of the per-client upload limit)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class BodyGuard:
    """The ``receive`` of one upload: counts it among its client's uploads until the body is
    in, bounds its size and the time it takes, then admits it to the inference gate."""

    def __init__(self, state: ServiceState, info: dict, receive: Receive, client: str) -> None:
        self.state, self.info, self._receive, self.client = state, info, receive, client
        self.deadline = time.monotonic() + state.settings.body_timeout_s
        self.received = 0
        self.reading = True
        self.counted = state.uploads.enter(client)
        self.admitted = False

    async def receive(self) -> Message:
        if not self.reading:  # the body is in (or given up): nothing left to bound
            return await self._receive()
        try:
            with anyio.fail_after(max(0.0, self.deadline - time.monotonic())):
                message = await self._receive()
        except TimeoutError:
            self._stop_reading()
            raise self._error(408, "body_timeout", self._slow_detail(), close=True) from None
        self.received += len(message.get("body", b""))
        if self.received > self.state.settings.max_upload_bytes:
            self._stop_reading()
            detail = f"upload larger than {self.state.settings.max_upload_mb:g} MB"
            raise self._error(413, "too_large", detail, close=True)
        if message["type"] == "http.disconnect":
            self._stop_reading()
            detail = "the client went away before its upload was in"
            raise self._error(400, "client_disconnected", detail)
        if not message.get("more_body", False):
            self._stop_reading()
            self._admit()
        return message

    def _slow_detail(self) -> str:
        return f"the upload did not arrive within {self.state.settings.body_timeout_s:g} s"

    def _admit(self) -> None:
        try:
            self.state.gate.admit()
        except Saturated:
            retry = {"Retry-After": str(self.state.settings.retry_after_s)}
            raise self._error(503, "saturated", "the service is busy; retry later", retry) from None
        self.admitted = True

    def _error(
        self,
        status: int,
        reason: str,
        detail: str,
        headers: dict | None = None,
        close: bool = False,
    ) -> ApiError:
        self.info["reason"] = reason
        headers = {**(headers or {}), **({"Connection": "close"} if close else {})}
        return ApiError(status, reason, detail, headers)

    def _stop_reading(self) -> None:
        self.reading = False
        if self.counted:
            self.counted = False
            self.state.uploads.leave(self.client)

    def close(self) -> None:
        """At the end of the request: give back whatever it still holds."""
        self._stop_reading()
        if self.admitted:
            self.admitted = False
            self.state.gate.leave()
