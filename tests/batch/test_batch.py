"""Batch inference: manifests, shards, resume after a crash, typed per-item errors, engines."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image as PILImage
from typer.testing import CliRunner

from medlens.batch import plan_shards, read_manifest, run_batch
from medlens.cli import app
from medlens.errors import ConfigError, DatasetError


def _pngs(root: Path, n: int, size: int = 16) -> list[Path]:
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        path = root / f"img{i:03d}.png"
        PILImage.fromarray(rng.integers(0, 255, (size, size), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


@pytest.fixture()
def manifest(tmp_path: Path) -> Path:
    paths = _pngs(tmp_path / "images", 9)
    (tmp_path / "images" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    rows = [str(p) for p in paths[:4]] + ["images/broken.png", str(tmp_path / "missing.png")]
    rows += [str(p) for p in paths[4:]]
    path = tmp_path / "manifest.csv"
    path.write_text("path\n" + "\n".join(rows) + "\n")
    return path


def _table(out: Path):
    import pyarrow as pa

    return pa.concat_tables([pq.read_table(p) for p in sorted(out.glob("shard-*.parquet"))])


def test_manifest_formats_and_folders(tmp_path: Path) -> None:
    paths = _pngs(tmp_path / "folder", 3)
    (tmp_path / "list.txt").write_text(f"# a comment\n{paths[0]}\n\nfolder\n")
    assert read_manifest(tmp_path / "list.txt") == [str(paths[0])] + [str(p) for p in paths]
    import pyarrow as pa

    pq.write_table(pa.table({"path": [str(p) for p in paths]}), tmp_path / "m.parquet")
    assert read_manifest(tmp_path / "m.parquet") == [str(p) for p in paths]
    study = "dicomweb://pacs:8042/dicom-web?StudyInstanceUID=1.2.3"
    (tmp_path / "uids.txt").write_text(f"{study}\n")
    assert read_manifest(tmp_path / "uids.txt") == [study]  # read by medlens.hospital
    (tmp_path / "other.txt").write_text("gopher://pacs/1.2.3\n")
    with pytest.raises(ConfigError, match="gopher://"):
        read_manifest(tmp_path / "other.txt")
    with pytest.raises(DatasetError):
        read_manifest(tmp_path / "none.csv")


def test_shards_are_deterministic() -> None:
    shards = plan_shards([f"f{i}" for i in range(7)], 3)
    assert [(s.index, s.start, len(s.items)) for s in shards] == [(0, 0, 3), (1, 3, 3), (2, 6, 1)]
    with pytest.raises(ConfigError):
        plan_shards(["a"], 0)


def test_batch_writes_shards_skips_bad_items_and_resumes(
    trained_run: Path, manifest: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING, logger="medlens.batch"):
        summary = run_batch(trained_run, manifest, out, shard_size=4, batch_size=3)
    assert (summary.shards, summary.written, summary.rows, summary.errors) == (3, 3, 11, 2)
    assert "missing.png" not in caplog.text and "broken" not in caplog.text  # no paths logged
    table = _table(out)
    assert table.column("index").to_pylist() == list(range(11))
    errors = table.column("error_type").to_pylist()
    assert errors[4:6] == ["TruncatedImageError", "InvalidImageError"]
    assert errors.count(None) == 9 and "missing.png" in table.column("error").to_pylist()[5]
    probs = np.array([table.column(f"p_{c}").to_pylist()[0] for c in ("normal", "pneumonia")])
    assert probs.sum() == pytest.approx(1.0)
    marker = json.loads((out / "shard-00001.done.json").read_text())
    assert marker["rows"] == 4 and marker["errors"] == 2

    first = {p.name: p.read_bytes() for p in out.glob("shard-*.parquet")}
    (out / "shard-00001.done.json").unlink()  # as if killed after shard 0 and 2
    (out / "shard-00001.parquet").write_bytes(b"half a file")
    again = run_batch(trained_run, manifest, out, shard_size=4, batch_size=3)
    assert (again.skipped, again.written) == (2, 1)
    assert {p.name: p.read_bytes() for p in out.glob("shard-*.parquet")} == first
    assert run_batch(trained_run, manifest, out, shard_size=4).written == 0


def test_ranks_take_disjoint_shards(trained_run: Path, manifest: Path, tmp_path: Path) -> None:
    out = tmp_path / "ranks"
    done = [
        run_batch(trained_run, manifest, out, shard_size=2, rank=r, world_size=2) for r in (0, 1)
    ]
    assert [d.written for d in done] == [3, 3] and _table(out).num_rows == 11


def test_segmentation_rows_carry_volumes_and_masks(seg_run_2d: Path, tmp_path: Path) -> None:
    paths = _pngs(tmp_path / "cases", 2, size=48)
    (tmp_path / "m.txt").write_text("\n".join(map(str, paths)))
    run_batch(seg_run_2d, tmp_path / "m.txt", tmp_path / "out", shard_size=8)
    table = _table(tmp_path / "out")
    assert table.num_rows == 2 and set(table.column("error_type").to_pylist()) == {None}
    with PILImage.open(table.column("mask_path").to_pylist()[0]) as mask:
        assert mask.size == (48, 48)  # a palette PNG on the input's grid
    assert any(name.startswith("volume_mm3_") for name in table.column_names)


def test_cli_batch(trained_run: Path, manifest: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["batch", str(trained_run), str(manifest), "-o", str(tmp_path / "o")]
    )
    assert result.exit_code == 0, result.output
    assert "11 rows" in result.output and "2 skipped" in result.output
    bad = CliRunner().invoke(
        app, ["batch", str(trained_run), str(manifest), "-o", "x", "--engine", "spark"]
    )
    assert bad.exit_code == 1 and "unknown batch engine" in bad.output


@pytest.mark.slow
def test_torchrun_ranks_match_one_process(
    trained_run: Path, manifest: Path, tmp_path: Path
) -> None:
    run_batch(trained_run, manifest, tmp_path / "one", shard_size=2)
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--standalone",
        "-m", "medlens", "batch", str(trained_run), str(manifest), "-o", str(tmp_path / "two"),
        "--shard-size", "2",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert _table(tmp_path / "two").equals(_table(tmp_path / "one"))


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # inside Ray Data's own context
def test_ray_engine_matches_local(trained_run: Path, manifest: Path, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    import ray

    run_batch(trained_run, manifest, tmp_path / "local", shard_size=4)
    try:
        run_batch(trained_run, manifest, tmp_path / "ray", shard_size=4, engine="ray", cpus=1)
    finally:
        ray.shutdown()
    local, remote = _table(tmp_path / "local"), _table(tmp_path / "ray")
    assert remote.column("error_type").equals(local.column("error_type"))
    for name in ("p_normal", "p_pneumonia"):
        np.testing.assert_allclose(
            np.array(remote.column(name).to_pylist(), dtype=float),
            np.array(local.column(name).to_pylist(), dtype=float),
            rtol=1e-6,
        )


@pytest.mark.slow
def test_loader_workers_give_the_same_rows(trained_run: Path, manifest: Path, tmp_path: Path):
    """Workers hand over one stacked tensor per batch; bad items keep their place."""
    run_batch(trained_run, manifest, tmp_path / "inline", shard_size=5, batch_size=3)
    run_batch(trained_run, manifest, tmp_path / "workers", shard_size=5, batch_size=3, workers=1)
    assert _table(tmp_path / "workers").equals(_table(tmp_path / "inline"))
    assert _table(tmp_path / "workers").column("error_type").to_pylist().count(None) == 9
