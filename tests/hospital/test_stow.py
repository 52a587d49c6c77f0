"""STOW-RS sends one body with a Content-Length (no chunked transfer) and checks the answer.

A loopback HTTP server records what arrives. dicomweb-client alone switches to
``Transfer-Encoding: chunked`` above its 1 MB ``chunk_size``; the bodies here are larger.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from medlens.errors import PacsError
from medlens.hospital.dicomweb import store_dicomweb


class _Recorder(BaseHTTPRequestHandler):
    requests: list[dict[str, Any]] = []
    acknowledge: int | None = None  # how many instances to acknowledge; None: all

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        headers = {k.lower(): v for k, v in self.headers.items()}
        if headers.get("transfer-encoding") == "chunked":
            body = self._read_chunked()
        else:
            body = self.rfile.read(int(headers["content-length"]))
        boundary = headers["content-type"].split("boundary=")[1].strip('"')
        parts = [p for p in body.split(b"--" + boundary.encode()) if b"application/dicom" in p]
        self.requests.append({"headers": headers, "parts": len(parts), "size": len(body)})
        count = len(parts) if self.acknowledge is None else self.acknowledge
        answer = {
            "00081199": {"vr": "SQ", "Value": [
                {"00081155": {"vr": "UI", "Value": [f"1.2.{i}"]}} for i in range(count)
            ]},
        }  # fmt: skip
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/dicom+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _read_chunked(self) -> bytes:
        body = b""
        while True:
            size = int(self.rfile.readline().strip(), 16)
            if size == 0:
                self.rfile.readline()
                return body
            body += self.rfile.read(size)
            self.rfile.readline()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    _Recorder.requests, _Recorder.acknowledge = [], None
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"dicomweb://127.0.0.1:{httpd.server_address[1]}/dicom-web"
    httpd.shutdown()
    httpd.server_close()


def test_stow_is_one_body_with_content_length(server: str, ct_datasets: list) -> None:
    stored = store_dicomweb(ct_datasets, server)
    assert len(stored) == len(ct_datasets)
    (request,) = _Recorder.requests
    assert request["size"] > 10**6  # above dicomweb-client's chunk_size
    assert "transfer-encoding" not in request["headers"]
    assert int(request["headers"]["content-length"]) == request["size"]
    assert request["parts"] == len(ct_datasets)
    assert request["headers"]["content-type"].startswith(
        'multipart/related; type="application/dicom"'
    )


def test_chunked_is_what_dicomweb_client_does_when_asked(server: str, ct_datasets: list) -> None:
    store_dicomweb(ct_datasets, server, chunked=True)
    (request,) = _Recorder.requests
    assert request["headers"].get("transfer-encoding") == "chunked"
    assert request["parts"] == len(ct_datasets)


def test_a_silently_dropped_instance_is_an_error(server: str, ct_datasets: list) -> None:
    _Recorder.acknowledge = 1  # Orthanc 1.10 answers 200 and leaves out what it dropped
    with pytest.raises(PacsError, match="acknowledged 1 of 3"):
        store_dicomweb(ct_datasets[:3], server)


def test_an_unreachable_server_is_a_pacs_error(ct_datasets: list) -> None:
    from medlens.hospital.pacs import free_port

    with pytest.raises(PacsError, match="ConnectionError"):
        store_dicomweb(ct_datasets[:1], f"dicomweb://127.0.0.1:{free_port()}/dicom-web")
