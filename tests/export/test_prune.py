from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from medlens.errors import ConfigError
from medlens.export.prune import prune_model, prune_run, sparsity
from medlens.inference import Predictor


@pytest.mark.parametrize("structured", [False, True])
def test_prune_model_reaches_sparsity_permanently(
    tiny_net: type[nn.Module], structured: bool
) -> None:
    torch.manual_seed(0)
    model = tiny_net(width=8)
    masks = prune_model(model, 0.5, structured=structured)

    assert sparsity(model, structured=structured) == pytest.approx(0.5, abs=0.01)
    assert not any(name.endswith(("_orig", "_mask")) for name in model.state_dict())
    assert all(isinstance(m.weight, nn.Parameter) for m in masks)
    if structured:  # whole output channels are zero, the classifier keeps every output
        conv = model.features[3]
        zero_channels = (conv.weight.flatten(1).abs().sum(1) == 0).sum()
        assert int(zero_channels) == 8
        assert int(torch.count_nonzero(model.head.weight)) == model.head.weight.numel()


def test_bad_sparsity_is_a_config_error(tiny_net: type[nn.Module]) -> None:
    with pytest.raises(ConfigError, match="sparsity"):
        prune_model(tiny_net(), 1.0)


def test_prune_run_keeps_sparsity_through_finetune(tmp_path: Path, tiny_run: Path) -> None:
    out = prune_run(tiny_run, tmp_path / "pruned", amount=0.6, finetune_epochs=1)

    model = Predictor.from_run(out, engine="torch").model
    assert sparsity(model) == pytest.approx(0.6, abs=0.01)
    report = json.loads((out / "compression.json").read_text())
    source, pruned = report["reports"]["source"], report["reports"]["pruned"]
    assert pruned["nonzero_parameters"] < 0.5 * source["nonzero_parameters"]
    assert pruned["weights_zip_bytes"] < source["weights_zip_bytes"]
    assert pruned["auc"] is not None and pruned["auc"] > 0.9
    assert (out / "model.json").is_file() and (out / "metrics.jsonl").is_file()


def test_global_pruning_never_empties_the_classifier(tiny_net: type[nn.Module]) -> None:
    model = tiny_net()
    with torch.no_grad():
        model.head.weight.mul_(1e-4)  # far below every backbone weight, as in a fresh head
    prune_model(model, 0.5)
    assert int(torch.count_nonzero(model.head.weight)) == model.head.weight.numel()
    assert sparsity(model) == pytest.approx(0.5, abs=0.01)
