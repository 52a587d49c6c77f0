"""Hub weights offline first: the HF cache layout, HF_HUB_OFFLINE, and the download path."""

from __future__ import annotations

import shutil
import warnings

import pytest
import torch

from medlens.errors import WeightsError
from medlens.models import create_model
from medlens.models.foundation import fetch_weights, foundation_entry
from medlens.models.hub import FirstUseWarning, pin_file

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def lay_out_cache(cache, repo_id, files_from, commit=COMMIT):
    """A hub cache entry as huggingface_hub writes it: refs/main -> snapshots/<commit>/."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / commit
    shutil.copytree(files_from, snapshot)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    return snapshot


@pytest.fixture
def spy_download(monkeypatch):
    """Record every snapshot_download call (and pass it on to the real function)."""
    import huggingface_hub

    calls, real = [], huggingface_hub.snapshot_download

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", spy)
    return calls


def test_weights_come_from_the_hub_cache_offline(tiny_snapshots, foundation_env, spy_download):
    entry = foundation_entry("dinov2_vits14")
    lay_out_cache(foundation_env / "hub", entry.repo_id, tiny_snapshots["timm"][0])
    with pytest.warns(FirstUseWarning, match=f"hub:{entry.repo_id}@{COMMIT}"):
        model = create_model("dinov2_vits14", num_classes=2, image_size=32, pretrained=True)
    assert model.weights_origin == f"hub:{entry.repo_id}@{COMMIT}"
    assert model(torch.rand(1, 3, 32, 32)).shape == (1, 2)
    assert spy_download and all(call["local_files_only"] for call in spy_download)
    assert spy_download[0]["revision"] == entry.revision
    assert f"dinov2_vits14 hub:{entry.repo_id}@{COMMIT}" in pin_file().read_text()


def test_offline_without_cache_says_what_to_do(foundation_env, spy_download):
    with pytest.raises(WeightsError, match="HF_HUB_OFFLINE is set.*--download rad_dino"):
        create_model("rad_dino", num_classes=2, pretrained="hub")
    assert all(call["local_files_only"] for call in spy_download)  # never went online


def _fake_hub(monkeypatch, foundation_env, files_from, calls):
    """An online hub that serves ``files_from`` by writing the cache like the real client."""
    import huggingface_hub
    from huggingface_hub.errors import LocalEntryNotFoundError

    def snapshot_download(repo_id, **kwargs):
        calls.append({"repo_id": repo_id, **kwargs})
        repo = foundation_env / "hub" / f"models--{repo_id.replace('/', '--')}"
        if kwargs.get("local_files_only"):
            if not repo.exists():
                raise LocalEntryNotFoundError("not cached")
            return str(repo / "snapshots" / COMMIT)
        return str(lay_out_cache(foundation_env / "hub", repo_id, files_from))

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)


def test_online_download_pinned_revision_then_verified(tiny_snapshots, foundation_env, monkeypatch):
    calls: list[dict] = []
    _fake_hub(monkeypatch, foundation_env, tiny_snapshots["hf"][0], calls)
    entry = foundation_entry("rad_dino")
    with pytest.warns(FirstUseWarning, match="model.safetensors sha256="):
        snapshot = fetch_weights("rad_dino")
    online = [c for c in calls if not c.get("local_files_only")]
    assert len(online) == 1 and online[0]["repo_id"] == entry.repo_id
    assert online[0]["revision"] == entry.revision
    assert "*.safetensors" in online[0]["allow_patterns"]
    assert not any(p.endswith((".bin", ".pt")) for p in online[0]["allow_patterns"])
    assert snapshot.folder.name == COMMIT and set(snapshot.sha256) == {"model.safetensors"}
    with warnings.catch_warnings():
        warnings.simplefilter("error", FirstUseWarning)  # now cached and recorded
        model = create_model("rad_dino", num_classes=2, image_size=32, pretrained=True)
    assert model.weights_origin.endswith(COMMIT)
    assert len([c for c in calls if not c.get("local_files_only")]) == 1  # no second download


def test_a_partial_cache_is_completed_online(tiny_snapshots, foundation_env, monkeypatch):
    calls: list[dict] = []
    _fake_hub(monkeypatch, foundation_env, tiny_snapshots["timm"][0], calls)
    entry = foundation_entry("dinov2_vits14")
    partial = foundation_env / "partial"
    partial.mkdir()
    shutil.copy(tiny_snapshots["timm"][0] / "config.json", partial)
    lay_out_cache(foundation_env / "hub", entry.repo_id, partial, commit="f" * 40)
    with pytest.warns(FirstUseWarning):
        snapshot = fetch_weights("dinov2_vits14")
    assert [c for c in calls if not c.get("local_files_only")] and snapshot.folder.name == COMMIT


def test_gated_download_error_is_explained(foundation_env, monkeypatch):
    import httpx
    import huggingface_hub
    from huggingface_hub.errors import GatedRepoError, LocalEntryNotFoundError

    def snapshot_download(repo_id, **kwargs):
        if kwargs.get("local_files_only"):
            raise LocalEntryNotFoundError("not cached")
        response = httpx.Response(403, request=httpx.Request("GET", "https://hub.invalid"))
        raise GatedRepoError("gated", response=response)

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    with pytest.raises(WeightsError, match="gated: request access.*hf auth login"):
        fetch_weights("uni", accept_license=["CC-BY-NC-ND-4.0"])
