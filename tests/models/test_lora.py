"""LoRA adaptation: targets, adapter-only run directory, exact reload, merged ONNX export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from medlens.errors import ConfigError, WeightsError
from medlens.models import create_model


def test_default_targets_per_family():
    from medlens.models.lora import default_targets

    lite = create_model("efficientnet_lite0", num_classes=1, in_chans=1, image_size=32)
    targets = default_targets(lite)
    convs = {n: lite.get_submodule(n) for n in targets}
    assert convs and all(m.kernel_size == (1, 1) and m.groups == 1 for m in convs.values())
    assert "head.1" in targets and not any(n.startswith("classifier") for n in targets)
    vit = create_model("vit_small", num_classes=2, in_chans=1, image_size=16, depth=2)
    assert default_targets(vit) == ["blocks.0.attn", "blocks.1.attn"]  # qkv + out projection


def test_lora_trains_only_adapters_and_head():
    from medlens.config import LoraOptions
    from medlens.models.lora import apply_lora, lora_settings

    model = create_model("efficientnet_lite0", num_classes=1, in_chans=1, image_size=32)
    settings = lora_settings(model, LoraOptions(r=4))
    head = sum(p.numel() for p in model.classifier.parameters())
    lora = sum(
        4 * (m.in_channels + m.out_channels)
        for m in (model.get_submodule(n) for n in settings["target_modules"])
    )  # fmt: skip
    wrapped = apply_lora(model, settings)
    trainable = [n for n, p in wrapped.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n or ".modules_to_save." in n for n in trainable)
    assert sum(p.numel() for p in wrapped.parameters() if p.requires_grad) == lora + head


def test_lora_config_is_checked():
    from medlens.config import parse_config

    base = {"data": {"source": "x"}, "adaptation": {"mode": "lora"}}
    with pytest.raises(ConfigError, match="pretrained"):
        parse_config(base)
    with pytest.raises(ConfigError, match="layer_decay"):
        parse_config({"data": {"source": "x"}, "adaptation": {"mode": "probe"},
                      "optimizer": {"layer_decay": 0.8}})  # fmt: skip
    config = parse_config({**base, "model": {"pretrained": "imagenet"},
                           "adaptation": {"mode": "lora", "lora": {"r": 4}}})  # fmt: skip
    assert config.adaptation.lora.r == 4 and config.adaptation.lora.target_modules == "auto"


def _lora_config(image_folder: Path, out: Path, epochs: int = 2):
    from medlens.config import parse_config

    return parse_config({
        "data": {"source": str(image_folder), "val_fraction": 0.25, "test_fraction": 0.25},
        "model": {"name": "efficientnet_lite0", "pretrained": "imagenet", "image_size": 16},
        "adaptation": {"mode": "lora", "lora": {"r": 4}},
        "optimizer": {"lr": 0.01}, "epochs": epochs, "batch_size": 8, "num_threads": 1,
        "output_dir": str(out),
    })  # fmt: skip


@pytest.fixture(scope="module")
def lora_run(image_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from medlens.tasks.run import train_run

    return train_run(_lora_config(image_folder, tmp_path_factory.mktemp("lora") / "run"))


@pytest.mark.slow
def test_lora_run_saves_only_the_adapter_and_reloads_exactly(lora_run: Path):
    from medlens.card import read_card
    from medlens.inference import Predictor
    from medlens.models.lora import load_adapted

    assert not (lora_run / "model.safetensors").exists()
    card = read_card(lora_run)
    section = card.adapter
    assert section["file"] == "adapter.safetensors" and section["base"]["pretrained"] == "imagenet"
    assert json.loads((lora_run / "adapter_config.json").read_text())["r"] == 4
    size = (lora_run / "adapter.safetensors").stat().st_size
    assert size == section["bytes"] and size < 4 * section["total_params"] / 10  # < 10 %
    assert section["trainable_params"] < section["total_params"] / 10
    x = torch.randn(4, 1, 16, 16)
    unmerged = load_adapted(lora_run, card, merge=False)
    predictor = Predictor.from_run(lora_run, engine="torch")
    with torch.no_grad():
        expected = unmerged(x)
        assert torch.allclose(predictor.model(x), expected, atol=1e-5)  # merged == unmerged
        assert torch.equal(load_adapted(lora_run, card, merge=False)(x), expected)  # reload


@pytest.mark.slow
def test_lora_refuses_other_base_weights_and_a_changed_adapter(lora_run: Path, monkeypatch):
    from medlens.card import read_card
    from medlens.models import lora

    card = read_card(lora_run)
    other = card.model_copy(update={"adapter": {**card.adapter, "base": {
        "pretrained": "imagenet", "sha256": "0" * 64}}})  # fmt: skip
    with pytest.raises(WeightsError, match="base weights"):
        lora.load_adapted(lora_run, other)
    with pytest.raises(WeightsError, match="sha256"):
        lora.load_adapted(lora_run, card.model_copy(update={"sha256": "1" * 64}))


@pytest.mark.slow
def test_merged_onnx_export_matches_the_unmerged_model(lora_run: Path):
    from medlens.card import read_card
    from medlens.export import export_run
    from medlens.export.verify import verify
    from medlens.inference.onnx_runtime import OnnxModel
    from medlens.models.lora import load_adapted

    result = export_run(lora_run, max_verify=16)
    assert result.model.name == "model.onnx"
    unmerged = load_adapted(lora_run, read_card(lora_run), merge=False)
    batches = [
        torch.randn(8, 1, 16, 16, generator=torch.Generator().manual_seed(i)) for i in (0, 1)
    ]
    check = verify(unmerged, OnnxModel(result.model), batches, precision="fp32")
    assert check.passed, check.failures


@pytest.mark.slow
def test_the_service_verifies_and_loads_a_lora_run(lora_run: Path):
    from medlens.serve.model import ModelHandle, verify_weights

    card = json.loads((lora_run / "model.json").read_text())
    assert verify_weights(lora_run, card) == card["sha256"]
    handle = ModelHandle(lora_run)
    handle.load()
    assert handle.ready, handle.error
    assert handle.card["adapter"]["base"]["sha256"] == card["adapter"]["base"]["sha256"]


@pytest.mark.slow
def test_a_lora_run_prunes_into_a_plain_run(lora_run: Path, tmp_path: Path):
    """Pruning starts from the merged adapter weights and writes an ordinary run."""
    from medlens.export.prune import prune_run, sparsity
    from medlens.inference import Predictor

    out = prune_run(lora_run, tmp_path / "pruned", amount=0.5, finetune_epochs=1)
    card = json.loads((out / "model.json").read_text())
    assert card.get("adapter") is None and (out / "model.safetensors").is_file()
    assert not (out / "adapter.safetensors").exists()
    assert sparsity(Predictor.from_run(out, engine="torch").model) == pytest.approx(0.5, abs=0.01)
    report = json.loads((out / "compression.json").read_text())
    assert report["reports"]["source"]["auc"] is not None


@pytest.mark.slow
def test_a_lora_teacher_distils_into_a_plain_student(lora_run: Path, tmp_path: Path):
    from medlens.export.distill import distill_run

    out = distill_run(lora_run, tmp_path / "student", student="simple_cnn", epochs=1)
    card = json.loads((out / "model.json").read_text())
    assert card["architecture"] == "simple_cnn" and card.get("adapter") is None
    assert (out / "compression.json").is_file()


@pytest.mark.slow
def test_a_killed_lora_run_resumes_bit_for_bit(image_folder: Path, tmp_path: Path):
    """Killed after epoch 1 of 3 and resumed: the same metrics and the same adapter bytes."""
    from tests.training.test_loop import _train_interrupted

    from medlens.tasks.run import train_run
    from medlens.training.callbacks import read_metrics

    full = train_run(_lora_config(image_folder, tmp_path / "full", epochs=3))
    cut = tmp_path / "cut"
    _train_interrupted(_lora_config(image_folder, cut, epochs=3), stop_after=1)
    assert (
        not (cut / "adapter.safetensors").exists() and len(read_metrics(cut / "metrics.jsonl")) == 1
    )
    train_run(resume=cut)
    assert read_metrics(cut / "metrics.jsonl") == read_metrics(full / "metrics.jsonl")
    adapter = (cut / "adapter.safetensors").read_bytes()
    assert adapter == (full / "adapter.safetensors").read_bytes()
    assert not (cut / "model.safetensors").exists()
