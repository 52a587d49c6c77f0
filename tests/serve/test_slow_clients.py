"""Slow and stalled uploads on a real server (uvicorn on 127.0.0.1, in this process): they
never take a queue place, their time is bounded, and one client's count is capped."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from medlens.serve import create_app

BOUNDARY = "slow-client-boundary"
STALLED_HEAD = (
    "POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
    "Content-Length: 1048576\r\n\r\n"
    f"--{BOUNDARY}\r\nContent-Disposition: form-data; "
).encode()  # headers and a few bytes of a declared 1 MB body, then nothing


@contextmanager
def live_server(make_settings: Callable, **changes: object) -> Iterator[tuple[object, int]]:
    """The app behind a real uvicorn server on a free loopback port, model loaded."""
    import uvicorn

    app = create_app(make_settings(**changes))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        for _ in range(300):
            if server.started:
                break
            threading.Event().wait(0.05)
        assert server.started and app.state.service.model.wait(60)
        yield app, port
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


def stalled(port: int, source: str = "127.0.0.1") -> socket.socket:
    conn = socket.create_connection(("127.0.0.1", port), timeout=15, source_address=(source, 0))
    conn.sendall(STALLED_HEAD)
    return conn


def answer(conn: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (bounded by the timeout)."""
    data = b""
    while chunk := conn.recv(65536):
        data += chunk
    return data


def status_of(data: bytes) -> int:
    return int(data.split(b" ", 2)[1])


def predict(port: int, png: bytes, source: str = "127.0.0.1") -> int:
    import httpx

    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(transport=transport, timeout=30) as client:
        files = {"file": ("a.png", png, "image/png")}
        return client.post(f"http://127.0.0.1:{port}/v1/predict", files=files).status_code


def wait_for(check: Callable[[], bool], tries: int = 200) -> bool:
    for _ in range(tries):
        if check():
            return True
        threading.Event().wait(0.05)
    return check()


@pytest.mark.slow
def test_stalled_uploads_do_not_saturate_the_service(make_settings, png: bytes) -> None:
    """A dozen stalled 1 MB uploads; with one slot and no queue a normal request still runs."""
    options = dict(max_concurrency=1, queue_size=0, max_uploads_per_client=16, body_timeout_s=60)
    with live_server(make_settings, **options) as (app, port):
        connections = [stalled(port) for _ in range(12)]
        assert wait_for(lambda: app.state.service.uploads.sending("127.0.0.1") == 12)
        assert app.state.service.gate.admitted == 0  # no queue place before the body is in
        assert [predict(port, png) for _ in range(3)] == [200, 200, 200]
        for conn in connections:
            conn.close()
        assert wait_for(lambda: app.state.service.uploads.sending("127.0.0.1") == 0)
        assert app.state.service.gate.admitted == 0
        rows = [(r.status_code, r.reason) for r in app.state.service.audit.read()]
        assert sorted(rows, key=str) == [(200, None)] * 3 + [(400, "client_disconnected")] * 12


@pytest.mark.slow
def test_a_stalled_upload_ends_in_408_and_an_audit_row(make_settings, png: bytes) -> None:
    with live_server(make_settings, body_timeout_s=0.3) as (app, port):
        with stalled(port) as conn:
            data = answer(conn)  # the server answers, then closes the connection
        assert status_of(data) == 408 and b'"error":"body_timeout"' in data
        assert b"connection: close" in data.lower()
        rows = app.state.service.audit.read()
        assert [(r.status_code, r.reason) for r in rows] == [(408, "body_timeout")]
        assert app.state.service.uploads.sending("127.0.0.1") == 0
        assert predict(port, png) == 200


@pytest.mark.slow
def test_uploads_per_client_are_capped(make_settings, png: bytes) -> None:
    with live_server(make_settings, max_uploads_per_client=2, body_timeout_s=60) as (app, port):
        held = [stalled(port), stalled(port)]
        assert wait_for(lambda: app.state.service.uploads.sending("127.0.0.1") == 2)
        with stalled(port) as third:
            data = third.recv(65536)  # at once, without waiting for the body
        assert status_of(data) == 429 and b"retry-after: 1" in data.lower()
        assert predict(port, png, source="127.0.0.2") == 200  # another client is served
        held.pop().close()
        assert wait_for(lambda: app.state.service.uploads.sending("127.0.0.1") == 1)
        assert predict(port, png) == 200  # a place for this client again
        held.pop().close()
        assert wait_for(lambda: app.state.service.uploads.sending("127.0.0.1") == 0)
        reasons = [r.reason for r in app.state.service.audit.read()]
        assert reasons.count("too_many_uploads") == 1 and reasons.count(None) == 2
