"""Offline-first weights for catalogue backbones: local folder, hub cache, then download.

Order: ``model.pretrained: /path`` (a folder or one ``.safetensors`` file), else the
Hugging Face hub cache (``HF_HUB_CACHE`` / ``HF_HOME``, read when called), else a download
of the pinned revision with ``huggingface_hub.snapshot_download`` unless ``HF_HUB_OFFLINE``
is set. Every weight file is then checked: safetensors only (pickles are refused) and its
SHA-256 against the catalogue, or, where the catalogue has none, against the hash recorded
at first use (``$MEDLENS_HOME/foundation-sha256.json``, default ``~/.cache/medlens``).
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medlens.errors import WeightsError
from medlens.training.checkpoint import atomic_write_text, sha256_file

if TYPE_CHECKING:
    from medlens.models.foundation import FoundationEntry

__all__ = [
    "PICKLE_SUFFIXES",
    "FirstUseWarning",
    "Snapshot",
    "download_snapshot",
    "hub_cache_dir",
    "hub_offline",
    "pin_file",
    "resolve_snapshot",
    "verify_files",
]

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
_ALLOW = ["*.json", "*.safetensors"]
_TRUE = ("1", "true", "yes", "on")


class FirstUseWarning(UserWarning):
    """Weights with no catalogue hash, hashed and recorded now (trust on first use)."""


def hub_offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` (read now, not at import) forbids network access."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE


def hub_cache_dir() -> Path | None:
    """``HF_HUB_CACHE``, else ``HF_HOME/hub``, else None (huggingface_hub's default)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]) / "hub"
    return None


def pin_file() -> Path:
    """Where first-use hashes are recorded."""
    home = os.environ.get("MEDLENS_HOME") or Path.home() / ".cache" / "medlens"
    return Path(home) / "foundation-sha256.json"


@dataclass(frozen=True)
class Snapshot:
    """Verified weights: their folder (configs beside them), the files and their origin."""

    folder: Path
    files: tuple[Path, ...]
    origin: str
    sha256: dict[str, str]


def resolve_snapshot(entry: FoundationEntry, pretrained: object) -> Snapshot:
    """Find and verify ``entry``'s weights.

    ``pretrained`` is True / ``"imagenet"`` / ``"hub"`` (the catalogue's hub weights) or a
    local folder or ``.safetensors`` file (its configs beside it).
    """
    if pretrained in (True, "imagenet", "hub"):
        folder, origin = _from_hub(entry)
        files = _weight_files(entry, folder)
    else:
        path = Path(str(pretrained)).expanduser()
        if not path.exists():
            raise WeightsError(f"{entry.name}: weights folder or file not found: {path}")
        origin = f"local:{path.resolve()}"
        if path.is_dir():
            folder, files = path, _weight_files(entry, path)
        else:
            _refuse_pickle(entry, [path])
            if path.suffix != ".safetensors":
                raise WeightsError(f"{entry.name}: {path.name} is not a .safetensors file")
            folder, files = path.parent, [path]
    hashes = verify_files(entry, files, origin)
    return Snapshot(folder, tuple(files), origin, hashes)


def _weight_files(entry: FoundationEntry, folder: Path) -> list[Path]:
    """The catalogued safetensors files in ``folder``; a folder of pickles is refused."""
    found = [folder / name for name in entry.files if (folder / name).is_file()]
    if found:
        return found
    _refuse_pickle(entry, sorted(p for p in folder.iterdir() if p.is_file()))
    raise WeightsError(
        f"{entry.name}: {folder} holds none of the weight files {', '.join(entry.files)}"
    )


def _refuse_pickle(entry: FoundationEntry, files: list[Path]) -> None:
    pickles = [p.name for p in files if p.suffix.lower() in PICKLE_SUFFIXES]
    if pickles:
        raise WeightsError(
            f"{entry.name}: only pickle weights found ({', '.join(pickles)}); medlens loads "
            "safetensors only, because unpickling can run arbitrary code. Where you trust "
            "the file, convert it: safetensors.torch.save_file(torch.load(path, "
            f"weights_only=True), '{entry.files[0]}'), then point model.pretrained at the folder"
        )


def _from_hub(entry: FoundationEntry) -> tuple[Path, str]:
    """The cached snapshot of the pinned revision; downloaded when online and missing."""
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        path = _snapshot(entry, local_files_only=True)
        if any((path / name).is_file() for name in entry.files) or hub_offline():
            return path, f"hub:{entry.repo_id}@{_commit_of(path)}"
    except LocalEntryNotFoundError:  # not cached (or only partly: completed below)
        pass
    if hub_offline():
        raise WeightsError(
            f"{entry.name}: {entry.repo_id} is not in the Hugging Face cache "
            f"({hub_cache_dir() or 'default location'}) and HF_HUB_OFFLINE is set. Download it "
            f"where you are online (`medlens models --download {entry.name}`), copy the cache, "
            "or point model.pretrained at a local folder with the files"
        )
    path = download_snapshot(entry)
    return path, f"hub:{entry.repo_id}@{_commit_of(path)}"


def download_snapshot(entry: FoundationEntry) -> Path:
    """Download the pinned revision (json and safetensors files only) into the hub cache."""
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError

    try:
        path = _snapshot(entry)
    except GatedRepoError:
        raise WeightsError(
            f"{entry.name}: {entry.repo_id} is gated: request access on "
            f"https://huggingface.co/{entry.repo_id}, then log in (`hf auth login`)"
        ) from None
    except RepositoryNotFoundError:
        raise WeightsError(f"{entry.name}: hub repository {entry.repo_id} not found") from None
    except (HfHubHTTPError, OSError) as exc:
        raise WeightsError(f"{entry.name}: download of {entry.repo_id} failed: {exc}") from None
    return path


def _snapshot(entry: FoundationEntry, **options: Any) -> Path:
    """``snapshot_download`` of the pinned revision, json and safetensors files only."""
    from huggingface_hub import snapshot_download

    path = snapshot_download(
        entry.repo_id,
        revision=entry.revision,
        cache_dir=hub_cache_dir(),
        allow_patterns=_ALLOW,
        **options,
    )
    return Path(path)


def _commit_of(snapshot: Path) -> str:
    """The commit a hub-cache snapshot folder is named after."""
    return snapshot.name


def verify_files(entry: FoundationEntry, files: list[Path], origin: str) -> dict[str, str]:
    """Check each file's SHA-256 against the catalogue or the first-use record.

    Files the catalogue has no hash for, and that were never seen from ``origin``, are
    recorded now and a :class:`FirstUseWarning` names their hash.
    """
    pins = _read_pins()
    key = f"{entry.name} {origin}"
    recorded = pins.get(key, {})
    hashes, new = {}, {}
    for file in files:
        got = sha256_file(file)
        expected = entry.sha256.get(file.name) or recorded.get(file.name)
        if expected is not None and expected != got:
            where = "the catalogue" if entry.sha256.get(file.name) else f"first use ({pin_file()})"
            raise WeightsError(
                f"{entry.name}: {file.name} from {origin} has SHA-256 {got}, but {where} "
                f"says {expected}: the file is corrupt or not the catalogued weights"
            )
        if expected is None:
            new[file.name] = got
        hashes[file.name] = got
    if new:
        pins[key] = {**recorded, **new}
        atomic_write_text(pin_file(), json.dumps(pins, indent=2, sort_keys=True) + "\n")
        listed = ", ".join(f"{name} sha256={sha}" for name, sha in new.items())
        warnings.warn(
            f"{entry.name}: the catalogue has no verified SHA-256 for these weights; recorded "
            f"on first use from {origin}: {listed} (in {pin_file()}); compare them with the "
            "hub's file page, later loads are checked against them",
            FirstUseWarning,
            stacklevel=3,
        )
    return hashes


def _read_pins() -> dict[str, dict[str, str]]:
    try:
        return json.loads(pin_file().read_text())
    except FileNotFoundError:
        return {}
    except ValueError:
        raise WeightsError(f"{pin_file()} is not valid JSON; remove it to re-record") from None
