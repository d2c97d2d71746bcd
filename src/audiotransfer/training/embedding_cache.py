"""Clip embeddings of a frozen backbone, computed once per (weights, task split, crop, front-end) and shared.

A linear probe's embeddings depend on its backbone and the clips, not on its seed, learning rate or epochs,
and the advisor embeds the same clips the same way (whole clips, window embeddings averaged per clip). So
the probes of every seed and the advisor read one cache: a study keeps it in `STUDY/cache/embeddings`, a
probe run on its own in its run folder. One file per split:
`{weights sha256[:16]}-{manifest hash[:16]}-{split}-{frames}-{front-end hash}.pt`, holding the format
version, the key, the embeddings (float32, manifest row order) and the seconds the forward pass took (so a
reader of the cache can report what the embeddings cost). A file of another version or key is recomputed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from audiotransfer.training.checkpoint import atomic_save

CACHE_VERSION = 1


@dataclass(frozen=True)
class EmbeddingKey:
    """What a split's embeddings depend on."""

    weights: str  # content hash of the backbone's weights file (or a run-unique tag for a random backbone)
    manifest: str  # the task manifest's content hash
    split: str  # train, dev or test
    frames: int  # crop length the clip is windowed by
    frontend: str  # the feature store's recipe hash

    @property
    def file_name(self) -> str:
        return f"{self.weights[:16]}-{self.manifest[:16]}-{self.split}-{self.frames}-{self.frontend[:12]}.pt"


@dataclass(frozen=True)
class CachedEmbeddings:
    """A split's embeddings with what they cost to compute, and whether this call read them from disk."""

    embeddings: torch.Tensor  # (n clips, dim), float32
    seconds: float
    cached: bool


def load_or_embed(
    key: EmbeddingKey, cache_dir: Path, compute: Callable[[], torch.Tensor], save: bool = True
) -> CachedEmbeddings:
    """The embeddings `key` names: read from `cache_dir`, or computed by `compute()` and written there
    (unless `save` is False: the other ranks of a distributed run leave the writing to the first)."""
    path = Path(cache_dir) / key.file_name
    if path.exists():
        saved = torch.load(path, map_location="cpu", weights_only=True)
        if saved.get("version") == CACHE_VERSION and saved.get("key") == asdict(key):
            return CachedEmbeddings(saved["embeddings"], float(saved["seconds"]), True)
    start = time.perf_counter()
    embeddings = compute().float().cpu()
    seconds = time.perf_counter() - start
    if save:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_save(
            {"version": CACHE_VERSION, "key": asdict(key), "embeddings": embeddings, "seconds": seconds},
            path,
        )
    return CachedEmbeddings(embeddings, seconds, False)
