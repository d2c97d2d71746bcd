"""Public pre-trained models as advisor candidates: embed a task's audio files with the model's own front-end.

A public model (`--checkpoint NAME=PATH:FORMAT`, FORMAT a key of `PUBLIC_FORMATS`) reads raw audio, not the
task's feature store: each labelled clip is decoded and resampled to the model's rate (soundfile + soxr),
centre-cropped or zero-padded to the task's `clip_seconds` (whole when the manifest has none), and embedded.
Embeddings are cached per (model content hash, layer, task manifest hash, clip length) in
`cache_dir/public-....npz`; one pass over the audio fills the cache of every requested layer of the model.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from audiotransfer.advise.embed import Candidate, Embedded
from audiotransfer.errors import UserError
from audiotransfer.files import write_atomic
from audiotransfer.models.public import PUBLIC_FORMATS, load_public, public_hash

BATCH = 8


def is_public(candidate: Candidate) -> bool:
    """Whether the candidate is read by a public family (it embeds audio files, not the feature store)."""
    return candidate.source in PUBLIC_FORMATS


def cache_path(model_hash: str, layer: int | None, manifest: Any, cache_dir: Path) -> Path:
    """The cache file of one layer of a public model (its `public_hash`) on a task's labelled clips."""
    seconds = manifest.meta.get("clip_seconds")
    clip = "whole" if seconds is None else f"{float(seconds):g}s"
    tag = "last" if layer is None else f"L{layer}"
    return Path(cache_dir) / f"public-{model_hash}-{tag}-{manifest.hash[:16]}-{clip}.npz"


def clip_waves(manifest: Any, rate: int) -> Iterator[np.ndarray]:
    """Each clip of the manifest as mono float32 at `rate`, cut to the manifest's clip length."""
    from audiotransfer.data.audio import AudioError, fit_length, load_audio

    clips, root = manifest.clips, manifest.meta.get("root")
    if "path" not in clips or root is None:
        raise UserError(
            f"task '{manifest.name}': the manifest names no audio files (no 'path' column or root)",
            fix="a public model embeds the task's audio: use a corpus task (--task ... --root ...)",
        )
    seconds = manifest.meta.get("clip_seconds")
    offsets = clips["offset"].fillna(0.0).to_numpy(float) if "offset" in clips else np.zeros(len(clips))
    durations = clips["duration"].to_numpy(float) if "duration" in clips else np.full(len(clips), np.nan)
    for rel, offset, duration in zip(clips["path"].astype(str), offsets, durations, strict=True):
        path = Path(root) / rel
        try:
            wave = load_audio(path, rate, offset, None if np.isnan(duration) else float(duration))
        except AudioError as exc:
            raise UserError(f"{path}: {exc}", fix="repair or remove the file from the task") from None
        if seconds is not None:
            length = round(float(seconds) * rate)
            wave = fit_length(wave[max(0, (len(wave) - length) // 2) :], length)
        yield wave


def _batches(waves: Iterator[np.ndarray], size: int) -> Iterator[list[np.ndarray]]:
    batch: list[np.ndarray] = []
    for wave in waves:
        if batch and (len(batch) == size or len(wave) != len(batch[0])):
            yield batch
            batch = []
        batch.append(wave)
    if batch:
        yield batch


def compute(model: Any, manifest: Any, layers: list[int | None], desc: str, progress: bool) -> list[np.ndarray]:
    """The model's clip embeddings of every clip of the manifest at each of `layers`, in one pass."""
    import torch

    outs: list[list[np.ndarray]] = [[] for _ in layers]
    bar = tqdm(total=manifest.num_clips, desc=desc, unit="clip", disable=not progress)
    with torch.inference_mode():
        for batch in _batches(clip_waves(manifest, model.sample_rate), BATCH):
            for out, emb in zip(outs, model.embed_layers(torch.from_numpy(np.stack(batch)), layers), strict=True):
                out.append(emb.numpy().astype(np.float64))
            bar.update(len(batch))
    bar.close()
    return [np.concatenate(o) for o in outs]


def embed_public(
    candidate: Candidate, manifest: Any, cache_dir: Path, layers: list[int | None] | None = None, progress: bool = True
) -> Embedded:
    """The candidate's embeddings of the manifest's clips, from the cache or one pass that also caches the
    other `layers` of the same model. A public model has no pre-training head: logits are (n, 0)."""
    wanted = list(dict.fromkeys([candidate.layer, *(layers or [])]))
    try:
        model_hash = public_hash(candidate.path, candidate.source)
    except UserError as exc:
        raise UserError(f"candidate '{candidate.name}': {exc.message}", fix=exc.fix) from None
    paths = {layer: cache_path(model_hash, layer, manifest, cache_dir) for layer in wanted}
    empty = np.zeros((manifest.num_clips, 0))
    if paths[candidate.layer].exists():
        with np.load(paths[candidate.layer]) as data:
            return Embedded(data["embeddings"], empty, float(data["seconds"]), True)
    todo = [layer for layer in wanted if not paths[layer].exists()]
    try:
        model = load_public(candidate.path, candidate.source)
    except UserError as exc:
        raise UserError(f"candidate '{candidate.name}': {exc.message}", fix=exc.fix) from None
    for layer in todo:
        model.check_layer(layer)
    start = time.perf_counter()
    embs = compute(model, manifest, todo, f"embed {candidate.name} ({manifest.name})", progress)
    seconds = (time.perf_counter() - start) / len(todo)
    for layer, emb in zip(todo, embs, strict=True):
        _save(paths[layer], emb, seconds)
    return Embedded(embs[todo.index(candidate.layer)], empty, seconds, False)


def _save(path: Path, emb: np.ndarray, seconds: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)

    def save(tmp: Path) -> None:
        with tmp.open("wb") as fh:
            np.savez(fh, embeddings=emb, seconds=seconds)

    write_atomic(path, save)
