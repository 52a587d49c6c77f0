"""nnU-Net v2 as a peer on the hippocampus split of ``benchmarks/segmentation.py``.

nnU-Net is a benchmark peer only (``pip install nnunetv2``; not a medlens dependency). Every
step runs on the CPU with one torch thread (nnU-Net's own CLI would use every core) and no
data-augmentation workers. Commands, in order (one core: about 50 min in all, 45 of them
training; one epoch is the longest shipped schedule that fits an hour there)::

    export nnUNet_raw=/tmp/nnunet/raw nnUNet_preprocessed=/tmp/nnunet/pre \\
        nnUNet_results=/tmp/nnunet/res nnUNet_n_proc_DA=0 nnUNet_compile=f \\
        OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
    python benchmarks/segmentation.py --out /tmp/seg-split --split-only
    python benchmarks/nnunet_peer.py raw /tmp/seg-split/split/manifest.csv
    nnUNet_n_proc_DA=1 nnUNetv2_plan_and_preprocess -d 4 -c 3d_fullres -np 1   # 0 fails here
    python benchmarks/nnunet_peer.py splits /tmp/seg-split/split/manifest.csv
    python benchmarks/nnunet_peer.py probe --iterations 5          # seconds per train step
    /usr/bin/time -v python benchmarks/nnunet_peer.py train --trainer nnUNetTrainer_1epoch
    /usr/bin/time -v python benchmarks/nnunet_peer.py predict --trainer nnUNetTrainer_1epoch \\
        --output /tmp/nnunet/pred
    python benchmarks/nnunet_peer.py score /tmp/seg-split/split/manifest.csv /tmp/nnunet/pred

``raw`` links all 208 cases into ``Dataset004_Hippocampus`` (imagesTr, labelsTr) and the test
cases into imagesTs; ``splits`` writes ``splits_final.json`` with one fold (train = our
train + val cases, val = our test cases); ``train`` runs nnU-Net's training loop without its
final validation; ``predict`` segments imagesTs with ``checkpoint_final.pth`` (nnU-Net's
default inference: Gaussian sliding windows, step 0.5, mirroring); ``score`` prints Dice and
HD95 per structure from ``medlens.evaluation.segmentation.evaluate_segmentations``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

DATASET = "Dataset004_Hippocampus"
LABELS = {"background": 0, "Anterior": 1, "Posterior": 2}


def _env(name: str) -> Path:
    if name not in os.environ:
        raise SystemExit(f"set {name} (see this script's docstring)")
    return Path(os.environ[name])


def _cases(manifest: Path) -> dict[str, list[tuple[str, str, str]]]:
    """``split -> [(case, image path, label path)]`` of a split manifest."""
    from medlens.data import load_manifest

    out: dict[str, list[tuple[str, str, str]]] = {"train": [], "val": [], "test": []}
    for record in load_manifest(manifest):
        out[record.split].append((record.patient_id, record.path, record.label_path))
    return out


def _link(source: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        target.symlink_to(Path(source).resolve())


def write_raw(manifest: Path) -> Path:
    """nnU-Net v2 raw layout of every case; the test cases also in imagesTs."""
    root = _env("nnUNet_raw") / DATASET
    cases = _cases(manifest)
    every = [c for split in cases.values() for c in split]
    for case, image, label in every:
        _link(image, root / "imagesTr" / f"{case}_0000.nii.gz")
        _link(label, root / "labelsTr" / f"{case}.nii.gz")
    for case, image, _ in cases["test"]:
        _link(image, root / "imagesTs" / f"{case}_0000.nii.gz")
    dataset = {
        "channel_names": {"0": "MRI"},
        "labels": LABELS,
        "numTraining": len(every),
        "file_ending": ".nii.gz",
    }
    (root / "dataset.json").write_text(json.dumps(dataset, indent=2) + "\n")
    return root


def write_splits(manifest: Path) -> Path:
    """``splits_final.json``: one fold, train = train + val cases, val = test cases."""
    cases = _cases(manifest)
    fold = {
        "train": sorted(c for c, _, _ in cases["train"] + cases["val"]),
        "val": sorted(c for c, _, _ in cases["test"]),
    }
    path = _env("nnUNet_preprocessed") / DATASET / "splits_final.json"
    path.write_text(json.dumps([fold], indent=2) + "\n")
    print(f"{path}: train {len(fold['train'])}, val {len(fold['val'])}")
    return path


def _trainer(name: str):  # noqa: ANN202 - nnU-Net's trainer class, imported lazily
    import torch
    from nnunetv2.run.run_training import get_trainer_from_args

    return get_trainer_from_args(DATASET, "3d_fullres", 0, name, device=torch.device("cpu"))


def probe(iterations: int) -> None:
    """Time ``iterations`` training steps (after one warm-up step) of the default trainer."""
    trainer = _trainer("nnUNetTrainer")
    trainer.disable_checkpointing = True
    trainer.on_train_start()
    trainer.on_train_epoch_start()
    trainer.train_step(next(trainer.dataloader_train))
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(iterations):
        trainer.train_step(next(trainer.dataloader_train))
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    print(f"{wall / iterations:.2f} s wall, {cpu / iterations:.2f} s CPU per train step")
    print(f"batch {trainer.batch_size}, patch {trainer.configuration_manager.patch_size}")


def train(name: str) -> None:
    """nnU-Net's training loop (``run_training``) without its final validation."""
    trainer = _trainer(name)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    trainer.run_training()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    print(f"training: {wall / 60:.1f} min wall, {cpu / 60:.1f} min CPU (in-process)")


def predict(name: str, output: Path) -> None:
    """Segment imagesTs with fold 0's ``checkpoint_final.pth``, in this process only."""
    import torch
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    model = _env("nnUNet_results") / DATASET / f"{name}__nnUNetPlans__3d_fullres"
    predictor = nnUNetPredictor(
        tile_step_size=0.5, use_gaussian=True, use_mirroring=True, device=torch.device("cpu")
    )
    predictor.initialize_from_trained_model_folder(str(model), (0,), "checkpoint_final.pth")
    output.mkdir(parents=True, exist_ok=True)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    predictor.predict_from_files_sequential(
        str(_env("nnUNet_raw") / DATASET / "imagesTs"), str(output), overwrite=True
    )
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    print(f"prediction: {wall / 60:.2f} min wall, {cpu / 60:.2f} min CPU (in-process)")


def score(manifest: Path, predictions: Path, n_bootstrap: int) -> None:
    """Dice and HD95 per structure of nnU-Net's test predictions, as medlens scores its own."""
    from medlens.data import load_record_image
    from medlens.evaluation.segmentation import evaluate_segmentations
    from segmentation import print_per_class  # benchmarks/segmentation.py, the same printout

    pairs = []
    for case, _, label in _cases(manifest)["test"]:
        truth = load_record_image(label, kind="label")
        predicted = load_record_image(str(predictions / f"{case}.nii.gz"), kind="label")
        if predicted.array.shape != truth.array.shape:
            raise SystemExit(f"{case}: prediction {predicted.array.shape} != {truth.array.shape}")
        pairs.append((case, predicted.array, truth.array, truth.spacing))
    names = ["background", "anterior", "posterior"]
    metrics = evaluate_segmentations(pairs, names, n_bootstrap=n_bootstrap)
    print_per_class(metrics)
    print(f"test cases: {metrics['n_cases']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    steps = parser.add_subparsers(dest="step", required=True)
    for step in ("raw", "splits", "score"):
        sub = steps.add_parser(step)
        sub.add_argument("manifest", type=Path, help="split manifest.csv of segmentation.py")
    steps.choices["score"].add_argument("predictions", type=Path)
    steps.choices["score"].add_argument("--bootstrap", type=int, default=1000)
    steps.add_parser("probe").add_argument("--iterations", type=int, default=5)
    for step in ("train", "predict"):
        sub = steps.add_parser(step)
        sub.add_argument("--trainer", default="nnUNetTrainer_1epoch")
    steps.choices["predict"].add_argument("--output", type=Path, required=True)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    if args.step == "raw":
        print(write_raw(args.manifest))
    elif args.step == "splits":
        write_splits(args.manifest)
    elif args.step == "probe":
        probe(args.iterations)
    elif args.step == "train":
        train(args.trainer)
    elif args.step == "predict":
        predict(args.trainer, args.output)
    else:
        score(args.manifest, args.predictions, args.bootstrap)


if __name__ == "__main__":
    main()
