"""``medlens serve``: safety checks, and real processes: SIGTERM under concurrent load,
several workers behind one /metrics."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
from typer.testing import CliRunner

pytest.importorskip("fastapi")

from medlens.cli import app  # noqa: E402


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run directory written with the training part's helpers (untrained tiny CNN)."""
    import torch

    from medlens.card import write_card
    from medlens.models import create_model
    from medlens.training.checkpoint import save_weights
    from medlens.transforms.preprocess import Preprocessing

    run = tmp_path_factory.mktemp("run")
    torch.manual_seed(0)
    kwargs = {"name": "simple_cnn", "num_classes": 1, "in_chans": 1, "image_size": 32}
    sha = save_weights(create_model(**kwargs), run / "model.safetensors")
    write_card(
        run,
        {
            "architecture": "simple_cnn",
            "create_model": kwargs,
            "preprocessing": Preprocessing(spatial_size=(32, 32)).model_dump(mode="json"),
            "classes": ["NORMAL", "PNEUMONIA"],
            "task": "binary",
            "threshold": 0.5,
            "sha256": sha,
        },
    )
    return run


def test_refuses_a_public_address_without_token(run_dir: Path) -> None:
    result = CliRunner().invoke(app, ["serve", str(run_dir), "--host", "0.0.0.0"])
    assert result.exit_code == 1
    assert "refusing to listen on 0.0.0.0 without an API token" in result.output


def test_refuses_a_short_token(run_dir: Path, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("short\n")
    token.chmod(0o600)
    result = CliRunner().invoke(app, ["serve", str(run_dir), "--token-file", str(token)])
    assert result.exit_code == 1 and "at least 16 characters" in result.output


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_refuses_a_token_file_others_can_read(run_dir: Path, tmp_path: Path, mode: int) -> None:
    token = tmp_path / "token"
    token.write_text("a-long-enough-token-for-the-test\n")
    token.chmod(mode)
    result = CliRunner().invoke(app, ["serve", str(run_dir), "--token-file", str(token)])
    assert result.exit_code == 1
    assert "readable by others: run chmod 600" in " ".join(result.output.split())


def test_refuses_weights_that_do_not_match(run_dir: Path, tmp_path: Path) -> None:
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(run_dir, bad)
    (bad / "model.safetensors").write_bytes(b"not the weights")
    result = CliRunner().invoke(app, ["serve", str(bad)])
    assert result.exit_code == 1 and "sha256 does not match" in result.output


def copy_run(run_dir: Path, target: Path, **card_changes: object) -> Path:
    import json
    import shutil

    shutil.copytree(run_dir, target)
    card = json.loads((target / "model.json").read_text())
    (target / "model.json").write_text(json.dumps({**card, **card_changes}))
    return target


def test_refuses_a_renamed_pickle_whose_hash_matches(run_dir: Path, tmp_path: Path) -> None:
    import torch

    from medlens.serve.model import sha256_file

    bad = copy_run(run_dir, tmp_path / "bad")
    torch.save({"w": torch.zeros(2)}, bad / "model.safetensors")
    copy_run(bad, tmp_path / "bad2", sha256=sha256_file(bad / "model.safetensors"))
    result = CliRunner().invoke(app, ["serve", str(tmp_path / "bad2")])
    assert result.exit_code == 1 and "not a safetensors file" in result.output
    assert "Traceback" not in result.output


def test_process_exits_1_when_the_model_fails_to_load(run_dir: Path, tmp_path: Path) -> None:
    """Weights that pass the checks but do not fit the model: the service stops, exit 1."""
    import json

    card = json.loads((run_dir / "model.json").read_text())
    wrong = {**card["create_model"], "num_classes": 3}
    bad = copy_run(run_dir, tmp_path / "bad", create_model=wrong)
    port = free_port()
    command = [sys.executable, "-c", "from medlens.cli import app; app()", "serve", str(bad)]
    command += ["--port", str(port), "--db", str(tmp_path / "audit.sqlite")]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TMPDIR": str(tmp_path)}
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        output, _ = process.communicate(timeout=120)
    finally:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    text = " ".join(output.decode().split())
    assert process.returncode == 1, text
    assert "the model failed to load" in text and "Traceback" not in text


def test_idle_connections_outlive_the_clients_keep_alive(run_dir: Path) -> None:
    """The server must not close an idle connection a client may still reuse (httpx keeps
    them 5 s, as uvicorn's default): such a race lost requests with a ReadError, unlogged."""
    import httpx

    from medlens.cli.serve import uvicorn_options
    from medlens.serve import ServeSettings

    options = uvicorn_options(ServeSettings(run_dir=run_dir), "info")
    assert options["timeout_keep_alive"] > 2 * httpx.Limits().keepalive_expiry
    assert "limit_concurrency" not in options  # uvicorn's own 503s have no audit row


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check: Callable[[], bool], process: subprocess.Popen, timeout: float = 120.0):
    """Poll ``check`` (connection errors count as not yet) while the server runs."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "medlens serve exited early"
        try:
            if check():
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("medlens serve did not get there in time")


@contextmanager
def serving(run_dir: Path, tmp_path: Path, *options: str) -> Iterator[tuple[subprocess.Popen, str]]:
    """``medlens serve RUN`` as a process (own session) on a free loopback port, once ready.

    Its temporary files go under ``tmp_path``, its output to ``tmp_path / "serve.log"``;
    whatever is left of it (workers included) is killed at the end.
    """
    import httpx

    port = free_port()
    command = [sys.executable, "-c", "from medlens.cli import app; app()", "serve", str(run_dir)]
    command += ["--port", str(port), "--db", str(tmp_path / "audit.sqlite"), *options]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TMPDIR": str(tmp_path)}
    with (tmp_path / "serve.log").open("wb") as log:
        process = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: httpx.get(f"{base}/readyz", timeout=2).status_code == 200, process)
        yield process, base
    finally:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def sample(metrics: str, series: str) -> float:
    """The value of one series of a /metrics text, e.g. ``'medlens_ready{pid="7"}'``."""
    for line in metrics.splitlines():
        if line.startswith(f"{series} "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{series} not in /metrics")


def test_process_sigterm_finishes_in_flight_and_loses_no_audit_row(
    run_dir: Path, tmp_path: Path, dicom_testfile
) -> None:
    import httpx

    from medlens.serve import AuditStore

    options = "--max-concurrency 1 --queue-size 32 --log-level warning".split()
    with serving(run_dir, tmp_path, *options) as (process, base):
        data = dicom_testfile("CT_small.dcm").read_bytes()
        responses: list[httpx.Response] = []
        failures: list[Exception] = []
        first = threading.Event()

        def send() -> None:
            try:
                files = {"file": ("ct.dcm", data, "application/dicom")}
                r = httpx.post(f"{base}/v1/predict?heatmap=true", files=files, timeout=60)
                responses.append(r)
                first.set()
            except httpx.TransportError as exc:  # refused after SIGTERM: never accepted
                failures.append(exc)

        threads = [threading.Thread(target=send) for _ in range(12)]
        for t in threads:
            t.start()
        assert first.wait(60)
        process.send_signal(signal.SIGTERM)
        answered_at_sigterm = len(responses)
        for t in threads:
            t.join(90)
        assert process.wait(60) == 0  # a clean drain is a success (was 143: signal re-raised)
    assert [r.status_code for r in responses] == [200] * len(responses), (
        tmp_path / "serve.log"
    ).read_text()
    assert len(responses) > answered_at_sigterm  # requests in flight at SIGTERM finished
    store = AuditStore(f"sqlite:///{tmp_path / 'audit.sqlite'}", create=False)
    rows = store.read()
    store.close()
    assert sorted(r.request_id for r in rows) == sorted(r.json()["request_id"] for r in responses)
    assert all(r.status_code == 200 and r.label for r in rows)


def test_workers_add_up_in_one_metrics_view(run_dir: Path, tmp_path: Path, dicom_testfile):
    """With --workers 2 every scrape, whichever worker answers it, counts every request."""
    import httpx

    options = "--workers 2 --max-concurrency 1 --queue-size 16 --log-level warning".split()
    with serving(run_dir, tmp_path, *options) as (process, base):
        (metrics_dir,) = tmp_path.glob("medlens-metrics-*")

        def both_ready() -> bool:  # one medlens_ready series per worker (pid label)
            text = httpx.get(f"{base}/metrics", timeout=5).text
            ready = [line for line in text.splitlines() if line.startswith("medlens_ready{pid=")]
            return [float(line.rsplit(" ", 1)[1]) for line in ready] == [1.0, 1.0]

        wait_until(both_ready, process)
        data = dicom_testfile("CT_small.dcm").read_bytes()

        def send(_: int) -> int:  # a new connection each: the kernel hands it to either worker
            files = {"file": ("ct.dcm", data, "application/dicom")}
            return httpx.post(f"{base}/v1/predict", files=files, timeout=60).status_code

        with ThreadPoolExecutor(4) as pool:
            statuses = list(pool.map(send, range(8)))
        assert statuses == [200] * 8
        for _ in range(4):
            text = httpx.get(f"{base}/metrics", timeout=5).text
            assert sample(text, 'medlens_requests_total{route="/v1/predict",status="200"}') == 8
            assert sample(text, 'medlens_inference_latency_seconds_count{engine="torch"}') == 8
            assert sample(text, "medlens_requests_in_flight") == 1  # this scrape
            assert sample(text, "medlens_inference_queued") == 0
            assert "medlens_model_info{" in text
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) in (0, -signal.SIGTERM)
    assert not metrics_dir.exists()  # the per-serve folder is removed at exit
