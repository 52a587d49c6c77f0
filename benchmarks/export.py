"""Export and compression on this CPU: size, latency, share of fp32 peak, test AUC/accuracy.

For each model (default: EfficientNet-Lite0, ImageNet-initialised, and ResNet-18 from
scratch, at 224 px) on the Kermany chest X-rays: a trained run (``--run NAME=DIR``, or a
short training here on a subset of Kermany train), then ``export_run(quantize="int8")``,
``prune_run`` (50 % global L1, one fine-tune epoch) and, for ``--teacher``, ``distill_run``
into ``--student`` (both on ``--finetune-images`` training images). Every variant is timed
at batch 1 and 32 and scored on the official Kermany test split (624 images).

fp32 peak: the best GFLOP/s of a 2048^3 float32 matmul (``torch.mm``) with the same
threads; model FLOPs come from ``torch.utils.flop_counter`` (2 per multiply-add).

Usage (queue behind other heavy jobs on a shared machine):

    flock /tmp/medlens-heavy.lock python benchmarks/export.py [--train-images 800] [--epochs 1]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import random
import time
from pathlib import Path

import numpy as np
import torch

from medlens.export import OnnxModel, Tolerance
from medlens.export.prune import prune_run
from medlens.export.run import export_run, split_tensors
from medlens.export.verify import auc_or_none, class_probabilities, collect_logits, decide
from medlens.inference import Predictor

DATASETS = Path(
    os.environ.get(
        "MEDLENS_SHARED_DATASETS", Path(__file__).resolve().parents[2] / "shared/datasets"
    )
)


def peak_gflops(threads: int, size: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def model_gflops(model: torch.nn.Module, x: torch.Tensor) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        model(x)
    return counter.get_total_flops() / 1e9


def ms_per_image(fn, x: torch.Tensor, seconds: float = 3.0, min_runs: int = 3) -> float:
    """Median wall time of fn(x) divided by the batch size (after one warm-up call)."""
    fn(x)
    times: list[float] = []
    deadline = time.perf_counter() + seconds
    while len(times) < min_runs or time.perf_counter() < deadline:
        start = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1000 / len(x)


def kermany_manifest(work: Path, train_images: int, seed: int) -> Path:
    """Kermany with patient-grouped val carved from train, train subsampled, test complete."""
    from medlens.data import assign_splits, open_source

    path = work / "kermany" / "manifest.csv"
    if path.is_file():
        return path
    manifest = assign_splits(
        open_source(DATASETS / "chest_xray_kermany_224"), val_fraction=0.1, seed=seed
    )
    rng = random.Random(seed)
    train = [r for r in manifest if r.split == "train"]
    keep = {id(r) for r in rng.sample(train, min(train_images, len(train)))}
    val = [r for r in manifest if r.split == "val"]
    val_keep = {id(r) for r in rng.sample(val, min(300, len(val)))}
    records = [r for r in manifest if r.split == "test" or id(r) in keep or id(r) in val_keep]
    path.parent.mkdir(parents=True, exist_ok=True)
    return manifest.with_records(records).write(path)


def train(name: str, manifest: Path, out: Path, epochs: int, pretrained: bool) -> Path:
    from medlens.config import parse_config
    from medlens.tasks.run import train_run

    if (out / "model.json").is_file():
        return out
    config = {
        "data": {"manifest": str(manifest)},
        "model": {
            "name": name,
            "image_size": 224,
            "pretrained": "imagenet" if pretrained else False,
        },
        "epochs": epochs,
        "batch_size": 32,
        "optimizer": {"lr": 1e-3 if pretrained else 3e-3},
        "output_dir": str(out),
    }
    return train_run(parse_config(config))


class Scorer:
    """Test AUC and accuracy with a run's own decision rule."""

    def __init__(self, run: Path) -> None:
        self.predictor = Predictor.from_run(run, engine="torch")
        card = self.predictor.card
        self.x, self.y, _ = split_tensors(
            run / "manifest.csv", self.predictor, ("test",), 10_000, 0
        )
        self.task, self.t = card["task"], float(card.get("temperature") or 1.0)
        self.threshold = card.get("threshold")

    def __call__(self, fn) -> tuple[float | None, float]:
        logits = collect_logits(fn, self.x.split(32))
        probs = class_probabilities(logits, self.task, self.t)
        labels = decide(probs, self.task, self.threshold)
        truth = self.y.numpy().astype(bool) if self.task == "binary" else self.y.numpy()
        return auc_or_none(self.y.numpy(), probs, self.task), float(np.mean(labels == truth))


def measure(name: str, fn, size_bytes: int, x1, x32, scorer, gflop: float | None, peak: float):
    """Latency at batch 1 and 32; ``scorer`` is a Scorer, or (auc, acc) already measured."""
    b1, b32 = ms_per_image(fn, x1), ms_per_image(fn, x32)
    auc, acc = scorer if isinstance(scorer, tuple) else scorer(fn)
    row = {
        "variant": name,
        "MB": size_bytes / 1e6,
        "ms_b1": b1,
        "ms_b32": b32,
        "auc": auc,
        "acc": acc,
        "peak_b1": None if gflop is None else gflop / (b1 / 1000) / peak,
        "peak_b32": None if gflop is None else gflop / (b32 / 1000) / peak,
    }
    print(json.dumps(row), flush=True)
    return row


def untrained_run(name: str, manifest: Path, out: Path) -> Path:
    """A run directory with random weights: for latency only (AUC and accuracy n/a)."""
    from medlens.card import write_card
    from medlens.data import load_manifest
    from medlens.models import create_model
    from medlens.training.checkpoint import save_weights

    out.mkdir(parents=True, exist_ok=True)
    data = load_manifest(manifest)
    data.write(out / "manifest.csv")
    kwargs = {"name": name, "num_classes": 1, "in_chans": 1, "image_size": 224}
    sha = save_weights(create_model(**kwargs), out / "model.safetensors")
    prep = {"spatial_size": [224, 224], "channels": 1, "mean": [0.449], "std": [0.226]}
    card = {"architecture": name, "create_model": kwargs, "preprocessing": prep}
    write_card(out, {**card, "classes": list(data.classes), "task": "binary", "sha256": sha})
    return out


def bench_model(name: str, run: Path, work: Path, peak: float, speed_only: bool = False):
    """Eager, channels_last, ONNX Runtime fp32 and int8 of one run."""
    scorer = Scorer(run)
    torch_model = scorer.predictor.model
    x1, x32 = scorer.x[:1].contiguous(), scorer.x[:32].contiguous()
    gflop = model_gflops(torch_model, x1)
    weights = (run / "model.safetensors").stat().st_size
    rows = []

    eager_model = copy.deepcopy(torch_model).to(memory_format=torch.contiguous_format)

    def eager(x):
        with torch.no_grad():
            return eager_model(x)

    cl_model = torch_model.to(memory_format=torch.channels_last)  # what Predictor runs

    def fast(x):
        with torch.inference_mode():
            return cl_model(x.contiguous(memory_format=torch.channels_last))

    if speed_only:  # random weights: scores mean nothing, and int8 is judged only for speed
        scorer = (None, float("nan"))
    scores = scorer if speed_only else scorer(fast)  # same weights: scored once for both
    rows.append(measure("PyTorch eager fp32", eager, weights, x1, x32, scores, gflop, peak))
    rows.append(
        measure(
            "PyTorch channels_last + inference_mode", fast, weights, x1, x32, scores, gflop, peak
        )
    )
    result = export_int8(run, speed_only)
    fp32, int8 = (run / f["file"] for f in result.record["files"])
    threads = torch.get_num_threads()  # ONNX Runtime gets the same threads as PyTorch
    ort32, ort8 = OnnxModel(fp32, num_threads=threads), OnnxModel(int8, num_threads=threads)
    rows.append(
        measure("ONNX Runtime fp32", ort32, fp32.stat().st_size, x1, x32, scorer, gflop, peak)
    )
    rows.append(
        measure(
            "ONNX Runtime int8 (static QDQ)", ort8, int8.stat().st_size, x1, x32, scorer, None, peak
        )
    )
    print(json.dumps({"export_verification": result.record["verification"]}), flush=True)
    return {"model": name, "gflop_per_image": gflop, "rows": rows, "x": (x1, x32)}


def bench_compression(
    result: dict, run: Path, work: Path, peak: float, student: str | None, epochs: int,
    finetune_images: int,
) -> None:  # fmt: skip
    """Pruned and distilled variants of a trained run, appended to its rows."""
    name, rows, (x1, x32) = result["model"], result["rows"], result.pop("x")
    source = subset_run(run, work / f"{name}-subset", finetune_images)
    pruned = prune_run(source, work / f"{name}-pruned", amount=0.5, finetune_epochs=1)
    pruned_scorer = Scorer(pruned)  # its own decision threshold and temperature
    zipped = json.loads((pruned / "compression.json").read_text())["reports"]["pruned"]
    rows.append(measure("pruned 50% (PyTorch eager; size = zipped)",
                        _eager(pruned_scorer.predictor.model), zipped["weights_zip_bytes"],
                        x1, x32, pruned_scorer, None, peak))  # fmt: skip
    if student:
        from medlens.export.distill import distill_run

        out = distill_run(source, work / f"{name}-{student}", student=student, epochs=epochs)
        scored = Scorer(out)
        size = (out / "model.safetensors").stat().st_size
        label = f"distilled {student} (PyTorch eager)"
        fn = _eager(scored.predictor.model)
        rows.append(measure(label, fn, size, x1, x32, scored, None, peak))


def subset_run(run: Path, out: Path, n_train: int, seed: int = 0) -> Path:
    """The same trained run, with only ``n_train`` training rows left in its manifest: the
    fine-tune (pruning) and the student (distillation) see fewer images on a busy CPU."""
    import shutil

    from medlens.data import load_manifest

    if out.exists():
        shutil.rmtree(out)
    keep = ("model.safetensors", "model.json", "config.yaml", "fingerprint.json")
    out.mkdir(parents=True)
    for name in keep:
        shutil.copy2(run / name, out / name)
    manifest = load_manifest(run / "manifest.csv")
    train = [r for r in manifest if r.split == "train"]
    chosen = {id(r) for r in random.Random(seed).sample(train, min(n_train, len(train)))}
    manifest.with_records(r for r in manifest if r.split != "train" or id(r) in chosen).write(
        out / "manifest.csv"
    )
    return out


def export_int8(run: Path, speed_only: bool):
    """Default tolerance, then 7-bit weights; if both are refused, export anyway with the
    checks off so that the figures can be shown, and say so."""
    from medlens.errors import ExportError

    loose = Tolerance(min_label_agreement=0.0, max_auc_drop=1.0)
    if speed_only:
        return export_run(run, quantize="int8", tolerance=loose)
    for reduce_range in (False, True):
        try:
            return export_run(run, quantize="int8", reduce_range=reduce_range)
        except ExportError as exc:
            print(json.dumps({"refused": str(exc), "reduce_range": reduce_range}), flush=True)
    print(json.dumps({"note": "int8 figures below come from an export that was refused"}))
    return export_run(run, quantize="int8", tolerance=loose)


def _eager(model):
    def run(x):
        with torch.no_grad():
            return model(x)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["efficientnet_lite0", "resnet18"])
    parser.add_argument("--teacher", default="efficientnet_lite0", help="model to distill")
    parser.add_argument("--run", action="append", default=[], help="NAME=RUN_DIR to reuse")
    parser.add_argument("--train-images", type=int, default=800)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--student", default="simple_cnn")
    parser.add_argument("--distill-epochs", type=int, help="default: --epochs")
    parser.add_argument("--finetune-images", type=int, default=256)
    parser.add_argument(
        "--speed-only", nargs="*", default=[], help="models timed with random weights (no training)"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--skip-compression", action="store_true", help="time the engines only (no prune/distill)"
    )
    parser.add_argument("--work", type=Path, default=Path("/tmp/medlens-export-bench"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    given = dict(item.split("=", 1) for item in args.run)
    args.work.mkdir(parents=True, exist_ok=True)

    peak = peak_gflops(args.threads)
    print(json.dumps({"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                      "threads": args.threads, "torch": torch.__version__,
                      "fp32_peak_gflops": peak}), flush=True)  # fmt: skip
    manifest = kermany_manifest(args.work, args.train_images, seed=0)
    results, runs = [], {}
    for name in args.models:
        run = Path(given[name]) if name in given else None
        if run is None and name in args.speed_only:
            run = untrained_run(name, manifest, args.work / f"{name}-untrained")
        elif run is None:
            start = time.perf_counter()
            run = train(
                name,
                manifest,
                args.work / name,
                args.epochs,
                pretrained=name == "efficientnet_lite0",
            )
            print(json.dumps({"trained": name, "seconds": time.perf_counter() - start}), flush=True)
        results.append(bench_model(name, run, args.work, peak, speed_only=name in args.speed_only))
        runs[name] = run
    for result in results:  # the slow part last: fine-tuning and distillation
        name = result["model"]
        if name not in args.speed_only and not args.skip_compression:
            student = args.student if name == args.teacher else None
            bench_compression(
                result,
                runs[name],
                args.work,
                peak,
                student,
                args.distill_epochs or args.epochs,
                args.finetune_images,
            )
        result.pop("x", None)
    peak_end = peak_gflops(args.threads)
    print(json.dumps({"fp32_peak_gflops_at_end": peak_end}), flush=True)
    if peak_end > peak:  # contention from other users lowers a measurement, never raises it
        for result in results:
            for row in result["rows"]:
                for key in ("peak_b1", "peak_b32"):
                    if row[key] is not None:
                        row[key] *= peak / peak_end
        peak = peak_end
    (args.work / "results.json").write_text(
        json.dumps({"peak_gflops": peak, "models": results}, indent=2)
    )
    print_table(peak, results)


HEADER = (
    "| variant | size MB | ms/img b1 | ms/img b32 | % of fp32 peak b1 / b32 | test AUC | test acc |"
)


def print_table(peak: float, results: list[dict]) -> None:
    print(f"\nfp32 peak (torch.mm 2048^3): {peak:.1f} GFLOP/s")
    for result in results:
        print(f"\n### {result['model']} ({result['gflop_per_image']:.2f} GFLOP/image, 224 px)\n")
        print(HEADER)
        print("|---|---|---|---|---|---|---|")
        for r in result["rows"]:
            share = (
                ""
                if r["peak_b32"] is None
                else f"{100 * r['peak_b1']:.0f} / {100 * r['peak_b32']:.0f}"
            )
            auc = "n/a" if r["auc"] is None else f"{r['auc']:.4f}"
            cells = [r["variant"], f"{r['MB']:.1f}", f"{r['ms_b1']:.1f}", f"{r['ms_b32']:.1f}"]
            acc = "n/a" if r["acc"] != r["acc"] else f"{r['acc']:.4f}"  # NaN: not scored
            print("| " + " | ".join([*cells, share, auc, acc]) + " |")


if __name__ == "__main__":
    main()
