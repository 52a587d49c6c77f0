"""Sampling a trained generation run: tensors (:func:`sample`) and marked PNGs (:func:`generate`).

Every image written is marked synthetic twice: its PNG text chunks (``medlens:synthetic``
and ``medlens:provenance``, a JSON record) and a row of ``provenance.csv`` in the output
folder; ``provenance.json`` beside it records the run and each request. Both are rewritten
atomically, merging rows of earlier requests (other classes, other seeds).

Images of one request are a pure function of (weights, class, seed, index): the noise of
image ``i`` comes from its own generator seeded with ``(seed, class, i)``, so ``-n 10`` gives
the first ten images of ``-n 2000``, whatever the batch size.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medlens.card import ModelCard, read_card
from medlens.config import GenerationConfig
from medlens.data.synthetic import PNG_KEY, PROVENANCE_CSV
from medlens.errors import ConfigError, ModelError

__all__ = ["PROVENANCE_COLUMNS", "generate", "load_generator", "sample"]

PROVENANCE_COLUMNS = (
    "path", "class", "index", "seed", "synthetic", "method", "sampler", "sampler_steps",
    "sampler_clip", "run", "weights_sha256", "card_sha256",
)  # fmt: skip


def load_generator(run_dir: str | Path) -> tuple[torch.nn.Module, ModelCard]:
    """The run's generator (eval mode, CPU) and card; :class:`ModelError` if not one."""
    from medlens.models import create_model
    from medlens.training.checkpoint import load_weights

    card = read_card(run_dir)
    if card.generation is None:
        raise ModelError(f"{run_dir} is a {card.task} run, not a generation run")
    model = create_model(**card.create_model)
    load_weights(model, Path(run_dir) / "model.safetensors", sha256=card.sha256)
    return model.eval(), card


def item_noise(shape: tuple[int, ...], seed: int, label: int, index: int) -> torch.Tensor:
    """The starting noise of one image, from its own seeded generator."""
    mixed = ((seed * 1_000_003 + label) * 1_000_003 + index) % 2**63
    return torch.randn(shape, generator=torch.Generator().manual_seed(mixed))


@torch.no_grad()
def sample(
    model: torch.nn.Module,
    card: ModelCard,
    label: int,
    n: int,
    *,
    seed: int = 0,
    start: int = 0,
    steps: int | None = None,
) -> torch.Tensor:
    """``(n, C, H, W)`` images in [0, 1] of class index ``label`` (images ``start..start+n``)."""
    section = card.generation
    assert section is not None
    labels = torch.full((n,), label, dtype=torch.long)
    if section.method != "ldm":
        shape = (model.latent_dim,)
        noise = torch.stack([item_noise(shape, seed, label, start + i) for i in range(n)])
        images = model.generate(noise, labels)
    else:
        side = model.latent_size
        shape = (model.latent_channels, side, side)
        noise = torch.stack([item_noise(shape, seed, label, start + i) for i in range(n)])
        images = model.decode(_denoise(model, noise, labels, section.sampler, steps, seed))
    return ((images.float() + 1) / 2).clamp(0, 1)


def _denoise(
    model: torch.nn.Module,
    latents: torch.Tensor,
    labels: torch.Tensor,
    sampler: dict[str, Any],
    steps: int | None,
    seed: int,
) -> torch.Tensor:
    from monai.networks.schedulers import DDIMScheduler, DDPMScheduler

    timesteps = int(sampler["timesteps"])
    clip = sampler_clip(sampler)
    bounds = {"clip_sample": clip is not None, "clip_sample_min": -(clip or 1.0),
              "clip_sample_max": clip or 1.0}  # fmt: skip
    if sampler["name"] == "ddim":
        scheduler: Any = DDIMScheduler(num_train_timesteps=timesteps, **bounds)
        scheduler.set_timesteps(steps or int(sampler["steps"]))
    else:
        scheduler = DDPMScheduler(num_train_timesteps=timesteps, **bounds)
        scheduler.set_timesteps(timesteps)
    generator = torch.Generator().manual_seed(seed * 1_000_003 + int(labels[0]))  # DDPM only
    for t in scheduler.timesteps:
        predicted = model(latents, t.expand(len(latents)), labels)
        if sampler["name"] == "ddim":
            latents, _ = scheduler.step(predicted, int(t), latents)
        else:
            latents, _ = scheduler.step(predicted, int(t), latents, generator=generator)
    return latents


def sampler_clip(sampler: dict[str, Any]) -> float | None:
    """The bound on predicted clean latents (in latent SDs); runs from before the setting
    get the default, since their unclipped DDIM samples could diverge."""
    return sampler.get("clip", GenerationConfig.model_fields["sampler_clip"].default)


def generate(
    run_dir: str | Path,
    n: int,
    class_name: str,
    out_dir: str | Path,
    *,
    seed: int = 0,
    batch_size: int = 64,
    steps: int | None = None,
) -> list[Path]:
    """Write ``n`` PNGs of ``class_name`` to ``out_dir/<class>/``, with provenance; return them."""
    if n < 1:
        raise ConfigError(f"n must be >= 1, got {n}")
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    model, card = load_generator(run_dir)
    if class_name not in card.classes:
        raise ConfigError(f"class {class_name!r} is not one of the run's {card.classes}")
    label = card.classes.index(class_name)
    record = _request(run_dir, card, class_name, seed, steps)
    folder = out_dir / _safe(class_name)
    folder.mkdir(parents=True, exist_ok=True)
    paths, rows = [], []
    for start in range(0, n, batch_size):
        images = sample(model, card, label, min(batch_size, n - start), seed=seed, start=start,
                        steps=steps)  # fmt: skip
        for offset, image in enumerate(images):
            index = start + offset
            path = folder / f"synthetic_s{seed}_{index:06d}.png"
            row = {**record, "path": path.relative_to(out_dir).as_posix(), "index": index}
            write_marked_png(path, image, row)
            paths.append(path)
            rows.append(row)
    _write_provenance(out_dir, rows, record, n)
    return paths


def _request(
    run_dir: Path, card: ModelCard, class_name: str, seed: int, steps: int | None
) -> dict[str, Any]:
    section = card.generation
    assert section is not None
    sampler_steps = steps or section.sampler.get("steps", "")
    return {
        "class": class_name, "seed": seed, "synthetic": "true", "method": section.method,
        "sampler": section.sampler["name"], "sampler_steps": sampler_steps,
        "sampler_clip": sampler_clip(section.sampler) if section.method == "ldm" else "",
        "run": str(run_dir.resolve()), "weights_sha256": card.sha256,
        "card_sha256": hashlib.sha256((run_dir / "model.json").read_bytes()).hexdigest(),
    }  # fmt: skip


def write_marked_png(path: Path, image: torch.Tensor, record: dict[str, Any]) -> None:
    """An 8-bit PNG (grey or RGB) with its synthetic marker and provenance, atomically."""
    from PIL import Image, PngImagePlugin

    from medlens.training.checkpoint import atomic_write_bytes

    array = (image.numpy() * 255).round().astype(np.uint8)
    picture = Image.fromarray(array[0] if array.shape[0] == 1 else array.transpose(1, 2, 0))
    info = PngImagePlugin.PngInfo()
    info.add_text(PNG_KEY, "true")
    info.add_text("medlens:provenance", json.dumps(record, sort_keys=True))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", pnginfo=info)
    atomic_write_bytes(path, buffer.getvalue())


def _write_provenance(
    out_dir: Path, rows: list[dict[str, Any]], record: dict[str, Any], n: int
) -> None:
    """Merge ``rows`` into ``provenance.csv`` and the request into ``provenance.json``."""
    from medlens.training.checkpoint import atomic_write_text

    table = out_dir / PROVENANCE_CSV
    kept: dict[str, dict[str, Any]] = {}
    if table.is_file():
        with open(table, newline="", encoding="utf-8") as handle:
            kept = {row["path"]: row for row in csv.DictReader(handle)}
    kept |= {row["path"]: row for row in rows}
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, PROVENANCE_COLUMNS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(kept[path] for path in sorted(kept))
    atomic_write_text(table, buffer.getvalue())
    summary_path = out_dir / "provenance.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {"requests": []}
    request = {**record, "n": n}
    summary["requests"] = [r for r in summary["requests"] if r != request] + [request]
    summary["synthetic"] = True
    atomic_write_text(summary_path, json.dumps(summary, indent=2, sort_keys=True) + "\n")


def _safe(name: str) -> str:
    """A class name as a folder name (path separators replaced)."""
    return name.replace(os.sep, "_").replace("/", "_") or "_"
