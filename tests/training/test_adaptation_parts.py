"""Layer-wise lr decay, gradient checkpointing and fp16 grad scaling (CPU-checked logic)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from medlens.config import OptimizerConfig
from medlens.errors import ConfigError
from medlens.models import create_model
from medlens.training.optim import build_optimizer, layer_depths


def _lrs_by_layer(optimizer: torch.optim.Optimizer) -> list[float]:
    by_layer = {g["layer"]: g["lr"] for g in optimizer.param_groups}
    return [by_layer[k] for k in sorted(by_layer)]


@pytest.mark.parametrize(
    ("name", "options"),
    [("efficientnet_lite0", {}), ("vit_small", {"depth": 3}), ("resnet18", {})],
)
def test_layer_decay_groups_decay_monotonically_to_the_head(name, options):
    model = create_model(name, num_classes=2, in_chans=1, image_size=32, **options)
    optimizer = build_optimizer(model, OptimizerConfig(lr=1e-3, layer_decay=0.5))
    lrs = _lrs_by_layer(optimizer)
    n = len(model.stages)
    assert len(lrs) == n + 1 and lrs[-1] == pytest.approx(1e-3)  # stages + the head
    assert all(a < b for a, b in zip(lrs, lrs[1:], strict=False))
    assert lrs[0] == pytest.approx(1e-3 * 0.5**n)
    head = {id(p) for p in model.get_classifier().parameters()}
    top = [g for g in optimizer.param_groups if g["layer"] == n]
    assert head <= {id(p) for g in top for p in g["params"]}
    assert sum(len(g["params"]) for g in optimizer.param_groups) == len(list(model.parameters()))
    no_decay = [g for g in optimizer.param_groups if g["weight_decay"] == 0.0]
    assert all(p.ndim <= 1 for g in no_decay for p in g["params"])


def test_without_layer_decay_every_group_has_the_base_lr():
    model = create_model("simple_cnn", num_classes=1, in_chans=1, image_size=16)
    optimizer = build_optimizer(model, OptimizerConfig(lr=3e-3))
    assert {g["lr"] for g in optimizer.param_groups} == {3e-3}
    assert [g["weight_decay"] for g in optimizer.param_groups] == [1e-4, 0.0]


def test_layer_depths_see_through_a_peft_wrapper():
    from medlens.config import LoraOptions
    from medlens.models.lora import apply_lora, lora_settings

    model = create_model("efficientnet_lite0", num_classes=1, in_chans=1, image_size=32)
    wrapped = apply_lora(model, lora_settings(model, LoraOptions(r=2)))
    depths = layer_depths(wrapped)
    n = len(model.stages)
    lora = [d for name, d in depths.items() if "blocks.0.0.project.1.lora_A" in name]
    assert lora == [1]  # blocks.0 is stage 1 (after the stem)
    assert {d for name, d in depths.items() if "modules_to_save" in name} == {n}
    with pytest.raises(ConfigError, match="stages"):
        layer_depths(nn.Linear(3, 1))


def _grads(model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    torch.manual_seed(1)  # the same drop-path masks (checkpointing replays the RNG state)
    model.zero_grad()
    model(x).pow(2).sum().backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "options"),
    [("efficientnet_lite0", {"drop_path_rate": 0.5}), ("vit_small", {"depth": 2, "patch_size": 4})],
)  # fmt: skip
def test_checkpointing_gives_the_same_gradients_and_norm_statistics(name, options):
    from medlens.models.checkpointing import checkpointed_blocks, enable_grad_checkpointing

    torch.manual_seed(0)
    plain = create_model(name, num_classes=2, in_chans=1, image_size=16, **options).train()
    ckpt = copy.deepcopy(plain)
    assert enable_grad_checkpointing(ckpt) == "blocks" and checkpointed_blocks(ckpt)
    x = torch.randn(3, 1, 16, 16)
    expected, got = _grads(plain, x), _grads(ckpt, x)
    assert expected.keys() == got.keys()
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], rtol=1e-4, atol=1e-6)
    for key, buffer in plain.state_dict().items():  # BN counted each batch once
        torch.testing.assert_close(ckpt.state_dict()[key], buffer)
    with torch.no_grad():
        torch.testing.assert_close(ckpt.eval()(x), plain.eval()(x))


def test_a_model_with_its_own_switch_is_asked_to_checkpoint():
    from medlens.models.checkpointing import enable_grad_checkpointing

    class Timmish(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.flag = False

        def set_grad_checkpointing(self, enable: bool = True) -> None:
            self.flag = enable

    model = Timmish()
    assert enable_grad_checkpointing(model) == "timm" and model.flag
    with pytest.raises(ConfigError, match="grad_checkpointing"):
        enable_grad_checkpointing(nn.Sequential(nn.Linear(2, 2)))


# -- mixed precision ---------------------------------------------------------------------
class _Task:
    monitor = "val_auc"

    def prepare_target(self, target: torch.Tensor) -> torch.Tensor:
        return target

    def validate(self, trainer) -> dict[str, float]:
        return {}


def _trainer(scaler: torch.amp.GradScaler | None, grad_clip: float | None = None):
    from medlens.config import ScheduleConfig
    from medlens.training.loop import Trainer
    from medlens.training.optim import LRSchedule

    torch.manual_seed(0)
    model = nn.Linear(4, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    schedule = LRSchedule(optimizer, ScheduleConfig(name="constant"), epochs=1, steps_per_epoch=1)
    data = [(torch.randn(8, 4), torch.randn(8, 1))]
    return Trainer(
        model, optimizer, nn.MSELoss(), schedule, data, None, task=_Task(), epochs=1,
        grad_scaler=scaler, grad_clip=grad_clip, channels_last=False,
    )  # fmt: skip


def test_fp16_scaler_skips_steps_with_inf_gradients_and_backs_off():
    trainer = _trainer(torch.amp.GradScaler("cpu", init_scale=1024.0, enabled=True))
    before = [p.detach().clone() for p in trainer.model.parameters()]
    hook = trainer.model.weight.register_hook(lambda g: torch.full_like(g, float("inf")))
    x, y = trainer.train_loader[0]
    trainer.train_step(x, y)
    assert all(torch.equal(a, b) for a, b in zip(before, trainer.model.parameters(), strict=True))
    assert trainer.state.skipped_steps == 1 and trainer.scaler.get_scale() == 512.0
    hook.remove()
    trainer.train_step(x, y)  # finite gradients: a real step
    assert not torch.equal(before[0], trainer.model.weight)
    assert trainer.state.skipped_steps == 1 and trainer.state.step == 2
    assert trainer.state_dict()["scaler"]["scale"] == 512.0


def test_gradients_are_unscaled_before_clipping():
    """The update with a scale of 2**16 and clipping equals the unscaled, clipped one."""
    plain = _trainer(None, grad_clip=0.01)
    scaled = _trainer(torch.amp.GradScaler("cpu", init_scale=2.0**16, enabled=True), 0.01)
    x, y = plain.train_loader[0]
    plain.train_step(x, y)
    scaled.train_step(x, y)
    for a, b in zip(plain.model.parameters(), scaled.model.parameters(), strict=True):
        torch.testing.assert_close(a, b)
    assert scaled.state.skipped_steps == 0


def test_precision_resolution_and_autocast_device():
    from medlens.tasks.run import make_grad_scaler, resolve_precision

    with pytest.raises(ConfigError, match="fp16 needs a CUDA GPU"):
        resolve_precision("fp16", torch.device("cpu"))
    assert resolve_precision("fp16", torch.device("cuda")) is torch.float16
    assert resolve_precision("fp32", torch.device("cpu")) is None
    assert make_grad_scaler(torch.float16, torch.device("cpu")).is_enabled()
    assert not make_grad_scaler(torch.bfloat16, torch.device("cpu")).is_enabled()
    assert not make_grad_scaler(None, torch.device("cpu")).is_enabled()
    trainer = _trainer(None)
    trainer.autocast_dtype = torch.bfloat16
    context = trainer._autocast()
    assert context.device == "cpu" and context.fast_dtype is torch.bfloat16
