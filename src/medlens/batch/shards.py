"""Deterministic shards of a manifest and their done-markers."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medlens.errors import ConfigError

__all__ = ["Shard", "plan_shards"]


@dataclass(frozen=True)
class Shard:
    """Items ``start:start+len(items)`` of the manifest, written as ``shard-NNNNN.parquet``."""

    index: int
    start: int
    items: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"shard-{self.index:05d}"

    def inputs_sha256(self, card_sha256: str, options: dict[str, Any]) -> str:
        """A hash of the items, the model card and the options that change the output."""
        digest = hashlib.sha256()
        digest.update(json.dumps([self.start, card_sha256, options], sort_keys=True).encode())
        for item in self.items:
            digest.update(item.encode("utf-8") + b"\0")
        return digest.hexdigest()

    def marker(self, out: Path) -> Path:
        return out / f"{self.name}.done.json"

    def output(self, out: Path) -> Path:
        return out / f"{self.name}.parquet"

    def is_done(self, out: Path, inputs_sha256: str) -> bool:
        """Whether a marker for exactly these inputs exists beside its Parquet file."""
        marker = self.marker(out)
        if not (marker.is_file() and self.output(out).is_file()):
            return False
        try:
            return json.loads(marker.read_text()).get("inputs_sha256") == inputs_sha256
        except (OSError, ValueError):
            return False


def plan_shards(items: Sequence[str], shard_size: int) -> list[Shard]:
    """Consecutive shards of ``shard_size`` items (the last may be shorter)."""
    if shard_size < 1:
        raise ConfigError(f"shard size must be at least 1, not {shard_size}")
    return [
        Shard(i, start, tuple(items[start : start + shard_size]))
        for i, start in enumerate(range(0, len(items), shard_size))
    ]
