"""DICOMweb round trip against a local Orthanc: studies/s for query + fetch + predict + store.

    flock /tmp/medlens-laneE.lock env OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 \\
        PYTHONPATH=src python benchmarks/dicomweb_roundtrip.py --studies 10

Starts Orthanc on loopback (``medlens.hospital.pacs.LocalPacs``; or ``--pacs URL``), uploads
``--studies`` copies of the real 20-slice CT series (JPEG 2000) with new UIDs, trains a tiny
2D classifier on synthetic PNGs when ``--run`` is not given (it predicts the middle slice),
then runs ``predict_studies`` over all studies with the SR stored back by STOW-RS. Prints one
JSON line per measurement; then ``medlens batch`` over the same studies as ``dicomweb://``
items (DataLoader workers ``--batch-workers``, no store), and a per-stage breakdown of one
more pass done stage by stage.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

SHARED = Path(
    os.environ.get("MEDLENS_SHARED_DATASETS", Path(__file__).parents[2] / "shared" / "datasets")
)
CT = SHARED / "totalsegmentator_example" / "example_ct_dicom"


def tiny_run(root: Path) -> Path:
    """A simple_cnn trained for 2 epochs on 48 synthetic 16 px PNGs (seconds)."""
    from PIL import Image

    from medlens.config import parse_config
    from medlens.tasks import train_run

    rng = np.random.default_rng(0)
    for label in ("normal", "finding"):
        (root / "data" / label).mkdir(parents=True, exist_ok=True)
        for i in range(24):
            pixels = rng.normal(80 + 60 * (label == "finding"), 20, (16, 16))
            Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(
                root / "data" / label / f"p{label}{i}_{i}.png"
            )
    model = {"name": "simple_cnn", "image_size": 16, "options": {"widths": [4, 8, 8], "hidden": 8}}
    config = {
        "data": {"source": str(root / "data"), "val_fraction": 0.25},
        "model": model,
        "epochs": 2,
        "batch_size": 8,
        "num_threads": 1,
        "seed": 0,
        "output_dir": str(root / "run"),
    }
    return train_run(parse_config(config))


def upload(url: str, n: int) -> tuple[list[str], float]:
    import pydicom

    from medlens.hospital import store_dicomweb
    from medlens.hospital.pacs import with_new_uids

    originals = [pydicom.dcmread(p) for p in sorted(CT.iterdir())]
    start, studies = time.perf_counter(), []
    for i in range(n):
        copies = with_new_uids(originals, f"bench-{i}")
        store_dicomweb(copies, url)
        studies.append(str(copies[0].StudyInstanceUID))
    return studies, time.perf_counter() - start


def stages(run: Path, url: str, study: str) -> dict[str, float]:
    """Seconds per stage of one study, done step by step."""
    import pydicom

    from medlens.hospital import store_dicomweb
    from medlens.hospital.dicomweb import dicomweb_client, find_series
    from medlens.hospital.identity import ModelIdentity
    from medlens.hospital.sr import classification_sr
    from medlens.hospital.uri import parse_dicomweb
    from medlens.inference import Predictor
    from medlens.io import read_series

    predictor = Predictor.from_run(run)
    identity = ModelIdentity.from_card(predictor.card, run)
    address = parse_dicomweb(f"{url}?StudyInstanceUID={study}")
    times, t = {}, time.perf_counter()
    client = dicomweb_client(address)
    series = find_series(address, client)
    times["qido_s"], t = time.perf_counter() - t, time.perf_counter()
    datasets = client.retrieve_series(
        study_instance_uid=study,
        series_instance_uid=series,
        media_types=(("application/dicom", "*"),),
    )
    times["wado_s"], t = time.perf_counter() - t, time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        for k, ds in enumerate(datasets):
            ds.save_as(Path(folder) / f"{k}.dcm", enforce_file_format=True)
        image = read_series(folder)
        headers = [
            pydicom.dcmread(p, stop_before_pixels=True) for p in sorted(Path(folder).iterdir())
        ]
    times["assemble_decode_s"], t = time.perf_counter() - t, time.perf_counter()
    middle = image.with_array(image.array[image.array.shape[0] // 2], spacing=image.spacing[1:])
    prediction = predictor.predict([middle])[0]
    times["predict_s"], t = time.perf_counter() - t, time.perf_counter()
    sr = classification_sr(
        prediction, headers, identity, task=predictor.task, classes=predictor.classes
    )
    times["build_sr_s"], t = time.perf_counter() - t, time.perf_counter()
    store_dicomweb([sr], url)
    times["stow_s"] = time.perf_counter() - t
    return times


def emit(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--studies", type=int, default=10)
    parser.add_argument("--run", type=Path)
    parser.add_argument("--batch-workers", type=int, nargs="*", default=[0, 2])
    parser.add_argument("--pacs", help="a DICOMweb URL (http://...); default: start Orthanc")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    from medlens.batch import run_batch
    from medlens.hospital import predict_studies
    from medlens.hospital.pacs import LocalPacs

    with tempfile.TemporaryDirectory() as tmp:
        pacs = None if args.pacs else LocalPacs().start()
        http = args.pacs or pacs.dicomweb_url
        url = http.replace("http://", "dicomweb://", 1).replace("https://", "dicomwebs://", 1)
        try:
            run = args.run or tiny_run(Path(tmp))
            studies, seconds = upload(url, args.studies)
            rate = round(20 * args.studies / seconds, 1)
            emit(measure="upload (STOW, non-chunked)", studies=args.studies, instances_per_s=rate)
            sources = [f"{url}?StudyInstanceUID={s}" for s in studies]
            start = time.perf_counter()
            predict_studies(run, sources, Path(tmp) / "out" / "pred.csv", stores=[url])
            wall = time.perf_counter() - start
            emit(
                measure="query+fetch+predict+store (SR)",
                studies=len(sources),
                wall_s=round(wall, 2),
                studies_per_s=round(len(sources) / wall, 3),
            )
            manifest = Path(tmp) / "studies.txt"
            manifest.write_text("\n".join(sources) + "\n")
            for workers in args.batch_workers:
                start = time.perf_counter()
                summary = run_batch(
                    run, manifest, Path(tmp) / f"batch-{workers}", shard_size=len(sources),
                    batch_size=8, workers=workers,
                )  # fmt: skip
                wall = time.perf_counter() - start
                emit(
                    measure="medlens batch over dicomweb:// items (query+fetch+predict, no store)",
                    workers=workers,
                    studies=summary.rows,
                    errors=summary.errors,
                    wall_s=round(wall, 2),
                    studies_per_s=round(summary.rows / wall, 3),
                )
            parts = stages(run, url, studies[0])
            emit(measure="stages of one study (s)", **{k: round(v, 3) for k, v in parts.items()})
        finally:
            if pacs is not None:
                pacs.stop()


if __name__ == "__main__":
    main()
