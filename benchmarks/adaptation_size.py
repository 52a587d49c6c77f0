"""Parameters trained and weight bytes of a LoRA run vs a full fine-tune; merged ONNX export.

    flock /tmp/medlens-laneD.lock env OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONPATH=src \
        python benchmarks/adaptation_size.py LORA_RUN FULL_RUN

Prints the trained parameter counts, the bytes each run stores, and the verification of the
ONNX export of the LoRA run (adapter merged into the base weights by ``medlens export``).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main() -> None:
    import torch

    from medlens.card import read_card
    from medlens.export import export_run
    from medlens.export.verify import verify
    from medlens.inference.onnx_runtime import OnnxModel
    from medlens.models.lora import load_adapted

    parser = argparse.ArgumentParser()
    parser.add_argument("lora_run", type=Path)
    parser.add_argument("full_run", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    card = read_card(args.lora_run)
    adapter = card.adapter
    full_bytes = (args.full_run / "model.safetensors").stat().st_size
    full_params = adapter["total_params"] - adapter["trainable_params"]  # wrapper adds lora
    print(f"lora: {adapter['trainable_params']:,} of {adapter['total_params']:,} parameters "
          f"trained (r={adapter['r']}, {len(adapter['target_modules'])} layers); "
          f"adapter.safetensors {adapter['bytes']:,} bytes")  # fmt: skip
    print(f"full: all {full_params:,} base parameters trained (the LoRA wrapper's "
          f"base + head copy); model.safetensors {full_bytes:,} bytes")  # fmt: skip
    result = export_run(args.lora_run)
    for name, check in result.verifications.items():
        print(f"export {name}: {check}")
    size = card.preprocessing["spatial_size"]
    unmerged = load_adapted(args.lora_run, card, merge=False)
    gen = torch.Generator().manual_seed(0)
    batches = [torch.rand(16, 1, *size, generator=gen) * 2 - 1 for _ in range(4)]
    check = verify(unmerged, OnnxModel(result.model), batches, precision="fp32")
    print(f"merged ONNX vs unmerged peft model: passed={check.passed} "
          f"max|dlogit|={check.max_abs_diff:.2e}")  # fmt: skip


if __name__ == "__main__":
    main()
