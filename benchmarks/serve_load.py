"""Load test of ``medlens serve`` on loopback, against a bare FastAPI endpoint.

For each input (a 224x224 PNG, a real chest CR DICOM from pydicom-data, 1955x1841) and each
concurrency (1, 8, 32), closed-loop async clients (httpx) post for ``--seconds`` (or at most
``--max-requests``); the script prints requests/s, p50/p95/p99 latency, errors, and the
server's resident memory before and after. The same model (``Predictor.from_run``) is then
served by a bare FastAPI endpoint (upload -> read_image -> predict -> JSON, no limits,
audit or metrics) so that the service's own overhead is visible.

    flock /tmp/medlens-laneA.lock python benchmarks/serve_load.py --seconds 60

Without ``--run`` a run directory with an untrained resnet18 (224 px, 1 channel, binary)
is written to a temporary folder: throughput does not depend on the weights' values.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fastapi import UploadFile  # at module level: the bare endpoint's annotation names it

CONCURRENCY = (1, 8, 32)


def build_run(run_dir: Path, name: str = "resnet18", size: int = 224) -> Path:
    import torch

    from medlens.card import write_card
    from medlens.models import create_model
    from medlens.training.checkpoint import save_weights
    from medlens.transforms.preprocess import Preprocessing

    torch.manual_seed(0)
    kwargs = {"name": name, "num_classes": 1, "in_chans": 1, "image_size": size}
    sha = save_weights(create_model(**kwargs), run_dir / "model.safetensors")
    pre = Preprocessing(spatial_size=(size, size), window="auto", mean=(0.5,), std=(0.25,))
    card = {
        "architecture": name,
        "create_model": kwargs,
        "preprocessing": pre.model_dump(mode="json"),
        "classes": ["NORMAL", "PNEUMONIA"],
        "task": "binary",
        "threshold": 0.5,
        "sha256": sha,
    }
    write_card(run_dir, card)
    return run_dir


def bare_app(run_dir: str):  # noqa: ANN201 - a FastAPI app
    """The baseline: the same predictor behind one plain endpoint."""
    from fastapi import FastAPI

    from medlens.inference import Predictor
    from medlens.io import read_image

    predictor = Predictor.from_run(run_dir)
    app = FastAPI()

    @app.post("/v1/predict")
    def predict(file: UploadFile) -> dict:
        with tempfile.NamedTemporaryFile() as tmp:
            tmp.write(file.file.read())
            tmp.flush()
            result = predictor.predict([read_image(tmp.name)])[0]
        return {"label": result.label, "probabilities": result.probabilities}

    @app.get("/readyz")
    def ready() -> dict:
        return {"ready": True}

    return app


def png_224() -> bytes:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (224, 224), dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def chest_dicom() -> bytes:
    from pydicom.data import get_testdata_file

    return Path(get_testdata_file("RG1_UNCI.dcm")).read_bytes()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stamp() -> str:
    """UTC time and the machine's load averages (1, 5, 15 min): how busy the cores were."""
    now = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    return f"{now}, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start(kind: str, run_dir: Path, port: int, workdir: Path) -> subprocess.Popen:
    if kind == "medlens":
        code = "from medlens.cli import app; app()"
        db = workdir / "audit.sqlite"
        options = f"--port {port} --db {db} --max-concurrency 2 --queue-size 64 --log-level warning"
        args = ["serve", str(run_dir), *options.split()]
    else:
        code = (
            "import sys, uvicorn; sys.path.insert(0, 'benchmarks'); import serve_load; "
            f"uvicorn.run(serve_load.bare_app({str(run_dir)!r}), host='127.0.0.1', port={port}, "
            "log_level='warning')"
        )
        args = []
    log = open(workdir / f"{kind}.log", "wb")  # noqa: SIM115 - lives as long as the server
    return subprocess.Popen([sys.executable, "-c", code, *args], stdout=log, stderr=log)


def wait_ready(base: str, process: subprocess.Popen) -> None:
    import httpx

    for _ in range(600):
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}")
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit("server not ready after 120 s")


async def load(base: str, data: bytes, name: str, ctype: str, conc: int, seconds: float,
               max_requests: int) -> dict:  # fmt: skip
    import httpx

    latencies: list[float] = []
    errors: dict[str, int] = {}
    sent = 0
    limits = httpx.Limits(max_connections=conc, max_keepalive_connections=conc)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:

        async def one() -> None:
            start = time.perf_counter()
            try:
                r = await client.post("/v1/predict", files={"file": (name, data, ctype)})
                key = None if r.status_code == 200 else str(r.status_code)
            except httpx.HTTPError as exc:
                key = type(exc).__name__
            if key is None:
                latencies.append(time.perf_counter() - start)
            else:
                errors[key] = errors.get(key, 0) + 1

        for _ in range(2):  # warm-up, not counted
            await client.post("/v1/predict", files={"file": (name, data, ctype)})
        deadline = time.perf_counter() + seconds
        began = time.perf_counter()

        async def worker() -> None:
            nonlocal sent
            while time.perf_counter() < deadline and sent < max_requests:
                sent += 1
                await one()

        await asyncio.gather(*(worker() for _ in range(conc)))
        elapsed = time.perf_counter() - began
    q = statistics.quantiles(latencies, n=100) if len(latencies) >= 2 else [float("nan")] * 99
    return {
        "n": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50": q[49] * 1000,
        "p95": q[94] * 1000,
        "p99": q[98] * 1000,
        "errors": sum(errors.values()),
        "error_kinds": errors,
        "seconds": elapsed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="run directory (default: an untrained resnet18)")
    parser.add_argument("--seconds", type=float, default=60.0, help="duration per config")
    parser.add_argument("--max-requests", type=int, default=100_000, help="cap per config")
    parser.add_argument("--servers", default="medlens,bare")
    parser.add_argument("--concurrency", default=",".join(map(str, CONCURRENCY)))
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="medlens-bench-"))
    run_dir = args.run or build_run(workdir / "run")
    inputs = {"png224": (png_224(), "x.png", "image/png"),
              "dicom_cr": (chest_dicom(), "x.dcm", "application/dicom")}  # fmt: skip
    conc_list = [int(c) for c in args.concurrency.split(",")]
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    print(f"# machine: {machine}")
    print(f"# start: {stamp()}")
    print(f"# run: {run_dir}; {args.seconds:g} s per config (max {args.max_requests} requests)")
    print("| server | input | concurrency | requests | req/s | p50 ms | p95 ms | p99 ms | errors |")
    print("|---|---|---|---|---|---|---|---|---|")
    servers = {}
    try:
        for kind in args.servers.split(","):  # all up at once; idle ones cost no CPU
            port = free_port()
            servers[kind] = (start(kind, run_dir, port, workdir), f"http://127.0.0.1:{port}")
        for process, base in servers.values():
            wait_ready(base, process)
        rss_before = {kind: rss_mb(process.pid) for kind, (process, _) in servers.items()}
        for label, (data, name, ctype) in inputs.items():
            for conc in conc_list:
                for kind, (_, base) in servers.items():  # back to back: same machine load
                    r = asyncio.run(load(base, data, name, ctype, conc, args.seconds,
                                         args.max_requests))  # fmt: skip
                    print(f"| {kind} | {label} | {conc} | {r['n']} | {r['rps']:.1f} | "
                          f"{r['p50']:.0f} | {r['p95']:.0f} | {r['p99']:.0f} | "
                          f"{r['errors']} {r['error_kinds'] or ''} |", flush=True)  # fmt: skip
        for kind, (process, _) in servers.items():
            print(f"# {kind} server RSS: {rss_before[kind]:.0f} MB after start-up, "
                  f"{rss_mb(process.pid):.0f} MB after the load", flush=True)  # fmt: skip
        print(f"# end: {stamp()}")
    finally:
        for process, _ in servers.values():
            process.terminate()
            process.wait(60)


if __name__ == "__main__":
    main()
