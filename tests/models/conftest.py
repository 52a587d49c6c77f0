"""Model tests use tiny tensors: one thread is faster than fighting over shared cores."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# -- tiny foundation backbones, saved in each source's own layout (no network) ----------
TINY_MEAN, TINY_STD = [0.4, 0.5, 0.6], [0.2, 0.25, 0.3]
TINY_TIMM_ARGS = {"img_size": 32, "patch_size": 8, "embed_dim": 32, "depth": 2, "num_heads": 2}
TINY_CLIP_CFG = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "patch_size": 8, "head_width": 16},
    "text_cfg": {"context_length": 8, "vocab_size": 64, "width": 16, "heads": 2, "layers": 1},
}


def _save_timm(folder):
    import timm

    torch.manual_seed(1)
    model = timm.create_model("vit_small_patch14_dinov2", num_classes=0, **TINY_TIMM_ARGS)
    timm.models.save_for_hf(
        model, str(folder), model_args=TINY_TIMM_ARGS, safe_serialization=True,
        model_config={"pretrained_cfg": {"input_size": [3, 32, 32], "mean": TINY_MEAN,
                                         "std": TINY_STD}},
    )  # fmt: skip
    return model.eval()


def _save_hf(folder):
    import json

    from transformers import Dinov2Config, Dinov2Model

    torch.manual_seed(2)
    config = Dinov2Config(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        image_size=32, patch_size=8,
    )  # fmt: skip
    model = Dinov2Model(config)
    model.save_pretrained(folder, safe_serialization=True)
    pre = {"image_mean": TINY_MEAN, "image_std": TINY_STD}
    (folder / "preprocessor_config.json").write_text(json.dumps(pre))
    return model.eval()


def _save_open_clip(folder):
    import json

    import open_clip
    from safetensors.torch import save_file

    torch.manual_seed(3)
    model = open_clip.CLIP(**TINY_CLIP_CFG)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, folder / "open_clip_model.safetensors")
    config = {"model_cfg": TINY_CLIP_CFG, "preprocess_cfg": {"mean": TINY_MEAN, "std": TINY_STD}}
    (folder / "open_clip_config.json").write_text(json.dumps(config))
    return model.eval()


#: catalogue entry of each source used with the tiny snapshots
TINY_ENTRIES = {"timm": "dinov2_vits14", "hf": "rad_dino", "open_clip": "biomedclip"}


@pytest.fixture(scope="session")
def tiny_snapshots(tmp_path_factory):
    """``{source: (folder, source model)}`` for timm, hf (transformers) and open_clip."""
    root = tmp_path_factory.mktemp("foundation")
    savers = {"timm": _save_timm, "hf": _save_hf, "open_clip": _save_open_clip}
    return {source: (root / source, save(root / source)) for source, save in savers.items()}


@pytest.fixture
def foundation_env(tmp_path, monkeypatch):
    """An empty hub cache, offline, and first-use hashes recorded under ``tmp_path``."""
    monkeypatch.setenv("MEDLENS_HOME", str(tmp_path / "medlens-home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path
