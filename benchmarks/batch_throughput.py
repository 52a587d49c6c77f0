"""Batch inference at scale: ``medlens batch`` vs a plain Predictor loop, RSS, kill -9 resume.

    flock /tmp/medlens-laneF.lock env OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 \
        PYTHONPATH=src python benchmarks/batch_throughput.py --n 100000

Writes ``--n`` synthetic 28x28 PNGs under ``--root`` (kept, not committed), trains the demo
model for one epoch when ``--run`` is not given, then prints one JSON line per measurement.
Each measurement runs in its own process; CPU time is that child's user + system time.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def make_images(root: Path, n: int) -> Path:
    """``n`` noise PNGs (28x28, grey) and a manifest listing them; reused when present."""
    from PIL import Image

    manifest = root / f"manifest-{n}.txt"
    if manifest.is_file():
        return manifest
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        path = root / "images" / f"{i // 1000:03d}" / f"img{i:06d}.png"
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 255, (28, 28), dtype=np.uint8)).save(path)
        paths.append(str(path))
    manifest.write_text("\n".join(paths) + "\n")
    return manifest


def demo_run(root: Path) -> Path:
    run = root / "demo" / "run"
    if not (run / "model.json").is_file():
        from medlens.cli.demo import demo_config
        from medlens.pipeline import train_run

        train_run(demo_config(run, 1))
    return run


def plain_loop(run: str, manifest: str, n: int, batch: int) -> dict:
    """The baseline: read files and call Predictor.predict in batches, one process."""
    from medlens.inference import Predictor
    from medlens.io import read_image

    predictor = Predictor.from_run(run, batch_size=batch)
    paths = Path(manifest).read_text().split()[:n]
    start = time.perf_counter()
    for i in range(0, len(paths), batch):
        predictor.predict([read_image(p) for p in paths[i : i + batch]])
    return {"images": len(paths), "wall_s": time.perf_counter() - start}


def batch_run(run: str, manifest: str, out: str, n: int, options: dict) -> dict:
    """``run_batch`` over the first ``n`` items; RSS printed every 10,000 rows."""
    from medlens.batch import run_batch

    if n:
        subset = Path(out + ".manifest.txt")
        subset.parent.mkdir(parents=True, exist_ok=True)
        subset.write_text("\n".join(Path(manifest).read_text().split()[:n]) + "\n")
        manifest = str(subset)
    done = [0, 0]

    def progress(shard, rows: int) -> None:
        done[0] += rows
        if done[0] // 10_000 > done[1]:
            done[1] = done[0] // 10_000
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(
                json.dumps({"rows": done[0], "rss_mb": _rss_mb(), "peak_rss_mb": peak}), flush=True
            )

    start = time.perf_counter()
    summary = run_batch(run, manifest, out, on_shard=progress, **options)
    return {
        "images": summary.rows,
        "skipped_shards": summary.skipped,
        "wall_s": time.perf_counter() - start,
    }


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(name: str, *args: str) -> dict:
    """Run ``name`` of this file in a fresh process; its result with CPU seconds added."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        [sys.executable, __file__, "--child", name, *args], capture_output=True, text=True
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        raise SystemExit(done.stderr[-3000:])
    lines = done.stdout.strip().splitlines()
    for line in lines[:-1]:
        print(json.dumps({"case": name, **json.loads(line)}), flush=True)
    result = json.loads(lines[-1])
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result.update(case=name, cpu_s=round(cpu, 1), images_per_s=result["images"] / result["wall_s"])
    print(json.dumps(result), flush=True)
    return result


def kill_and_resume(run: Path, manifest: Path, out: Path, options: str, after_rows: int) -> dict:
    """Start a batch, kill -9 it once ``after_rows`` rows are done, rerun; time the rerun."""
    command = [
        sys.executable,
        __file__,
        "--child",
        "batch",
        str(run),
        str(manifest),
        str(out),
        "0",
        options,
    ]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while proc.poll() is None:
        rows = sum(json.loads(m.read_text())["rows"] for m in out.glob("*.done.json"))
        if rows >= after_rows:
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.5)
    proc.wait()
    done_before = len(list(out.glob("*.done.json")))
    result = child("batch", str(run), str(manifest), str(out), "0", options)
    return {"shards_done_at_kill": done_before, **result}


def rows_sha256(folder: Path) -> str:
    """SHA-256 of every row of the shards in order (JSON, sorted keys): the output's identity."""
    import hashlib

    import pyarrow.parquet as pq

    digest = hashlib.sha256()
    for path in sorted(folder.glob("shard-*.parquet")):
        for row in pq.read_table(path).to_pylist():
            digest.update((json.dumps(row, sort_keys=True) + "\n").encode())
    return digest.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--compare", type=int, default=20_000, help="items for loop vs engines")
    parser.add_argument("--root", type=Path, default=Path("/tmp/medlens-batch-bench"))
    parser.add_argument("--run", type=Path)
    parser.add_argument("--child", nargs="+")
    args = parser.parse_args()
    if args.child:
        name, *rest = args.child
        if name == "loop":
            print(json.dumps(plain_loop(rest[0], rest[1], int(rest[2]), 64)))
        else:
            print(
                json.dumps(batch_run(rest[0], rest[1], rest[2], int(rest[3]), json.loads(rest[4])))
            )
        return
    manifest = make_images(args.root, args.n)
    run = args.run or demo_run(args.root)
    local = json.dumps({"shard_size": 5000, "batch_size": 64, "workers": 1})
    inline = json.dumps({"shard_size": 5000, "batch_size": 64, "workers": 0})
    out = args.root / "out"
    subprocess.run(["rm", "-rf", str(out)], check=True)
    child("loop", str(run), str(manifest), str(args.n))
    child("batch", str(run), str(manifest), str(out / "full"), "0", local)
    child("batch", str(run), str(manifest), str(out / "inline"), str(args.compare), inline)
    ray = json.dumps({"shard_size": 5000, "batch_size": 64, "engine": "ray", "cpus": 2})
    child("batch", str(run), str(manifest), str(out / "ray"), str(args.compare), ray)
    resumed = kill_and_resume(run, manifest, out / "killed", local, args.n // 2)
    full, killed = rows_sha256(out / "full"), rows_sha256(out / "killed")
    print(
        json.dumps(
            {
                "case": "resume",
                **resumed,
                "rows_sha256_uninterrupted": full,
                "rows_sha256_resumed": killed,
                "identical_to_uninterrupted": full == killed,
            }
        )
    )


if __name__ == "__main__":
    main()
