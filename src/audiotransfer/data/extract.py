"""Feature extraction: decode, resample and log-mel every clip of a manifest into a feature store, in
worker processes, resumable, with unusable files listed in the store's errors.csv."""

from __future__ import annotations

import csv
import logging
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

import audiotransfer.data.store_format as fmt
from audiotransfer.data.audio import AudioError, audio_info, load_audio
from audiotransfer.data.features import FeatureRecipe, Frontend, frontend_module
from audiotransfer.data.store_reader import FeatureStore
from audiotransfer.data.store_writer import StoreWriter
from audiotransfer.errors import UserError
from audiotransfer.files import disk_full_is_user_error
from audiotransfer.manifest import Manifest
from audiotransfer.progress import progress as show_progress

Task = tuple[int, str, float, float]  # (position in the manifest, audio path, offset s, duration s or NaN)
log = logging.getLogger(__name__)

_WORKER: dict[str, Any] = {}


def _init_worker(recipe: Frontend, threads: int | None) -> None:
    if threads is not None:
        torch.set_num_threads(threads)
    _WORKER["logmel"] = frontend_module(recipe).eval()
    _WORKER["recipe"] = recipe


def _extract_one(task: Task) -> tuple[int, str, np.ndarray | None, str]:
    """Features of one clip as (position, path, float16 array, "") or (position, path, None, error)."""
    position, path, offset, duration = task
    recipe: Frontend = _WORKER["recipe"]
    if not os.path.exists(path):
        return position, path, None, "missing: file not found"
    try:
        samples = load_audio(path, recipe.sample_rate, offset=offset, duration=None if np.isnan(duration) else duration)
        if len(samples) < recipe.win_length:
            return position, path, None, f"too short: {len(samples)} samples, one frame needs {recipe.win_length}"
        with torch.inference_mode():
            logmel = _WORKER["logmel"](torch.from_numpy(samples)[None])[0]
    except AudioError as exc:
        return position, path, None, str(exc)
    except Exception as exc:  # a file that breaks decoding in another way is reported, not fatal
        return position, path, None, f"failed: {exc!r}"
    return position, path, logmel.numpy(), ""


def _estimate_frames(paths: list[str], durations: np.ndarray, recipe: Frontend, sample_size: int = 1000) -> int:
    """Frames the clips will take, from headers (soundfile.info), extrapolated from a sample if many."""
    picked = np.arange(len(paths))
    if len(paths) > sample_size:
        picked = np.random.default_rng(0).choice(len(paths), sample_size, replace=False)
    total = 0
    for i in picked:
        seconds = durations[i]
        if np.isnan(seconds):
            try:
                n, sr = audio_info(paths[i])
            except AudioError:
                continue
            seconds = n / sr
        total += recipe.frames_for(seconds) or 0
    return int(total * len(paths) / max(len(picked), 1))


def _tasks(manifest: Manifest, todo: np.ndarray) -> Iterator[Task]:
    clips = manifest.clips
    root = Path(manifest.meta["root"])
    offsets = clips["offset"].fillna(0.0).to_numpy(float) if "offset" in clips else np.zeros(len(clips))
    durations = clips["duration"].to_numpy(float) if "duration" in clips else np.full(len(clips), np.nan)
    paths = clips["path"].astype(str).to_numpy()
    for i in todo:
        yield int(i), str(root / paths[i]), float(offsets[i]), float(durations[i])


def _check_space(writer: StoreWriter, store_dir: Path, tasks: list[Task], recipe: Frontend, num_clips: int) -> None:
    """Say what is left to extract and the disk it needs; a UserError when the disk is too small."""
    durations = np.array([t[3] for t in tasks], dtype=float)
    need = _estimate_frames([t[1] for t in tasks], durations, recipe) * writer.frame_bytes
    free = shutil.disk_usage(store_dir).free
    log.info(
        "features: %d of %d clips already in %s; extracting %d (recipe %s), about %s MB needed, %s GB free",
        num_clips - len(tasks),
        num_clips,
        store_dir,
        len(tasks),
        recipe.hash,
        f"{need / 1e6:,.1f}",
        f"{free / 1e9:,.1f}",
    )
    if need > free:
        raise UserError(
            f"{store_dir}: about {need / 1e9:.1f} GB needed but {free / 1e9:.1f} GB free",
            fix="free disk space or choose another --store directory",
        )


def extract_features(
    manifest: Manifest,
    store_dir: str | Path,
    recipe: Frontend | None = None,
    jobs: int = 1,
    on_error: Literal["skip", "stop"] = "skip",
    progress: bool = True,
    commit_every: int = 256,
) -> FeatureStore:
    """Decode, resample and log-mel every clip of `manifest` into the store at `store_dir`.

    Reads `meta["root"]/path` (optionally the window `offset`, `duration` seconds); clips already in the
    store are skipped, so a killed run resumes where its last commit left off. Unusable files go to
    `errors.csv`; `on_error="stop"` raises a UserError at the first one, after committing finished clips.
    """
    recipe = recipe or FeatureRecipe()
    if on_error not in ("skip", "stop"):
        raise UserError(f"on_error is {on_error!r}", fix="use 'skip' or 'stop'")
    if jobs < 1:
        raise UserError(f"jobs is {jobs}: nothing would be extracted", fix="use jobs >= 1")
    if "path" not in manifest.clips or "root" not in manifest.meta:
        raise UserError(
            f"manifest {manifest.name!r} has no audio paths (column 'path', meta 'root')",
            fix="build it with a corpus loader (audiotransfer.data.corpora.load_corpus)",
        )
    store_dir = Path(store_dir)
    errors_path = store_dir / fmt.ERRORS
    with StoreWriter(store_dir, recipe, manifest.meta.get("corpus", "")) as writer:
        clip_ids = manifest.clips["clip_id"].astype(str).to_numpy()
        todo = np.flatnonzero([c not in writer.done for c in clip_ids])
        tasks = list(_tasks(manifest, todo))
        _check_space(writer, store_dir, tasks, recipe, len(clip_ids))
        with disk_full_is_user_error(store_dir):
            try:
                failures = _extract(writer, tasks, clip_ids, errors_path, jobs, on_error, progress, commit_every)
            finally:
                store = writer.close()
    if failures:
        log.warning("features: %d clips could not be used; see %s", failures, errors_path)
    return store


def _extract(
    writer: StoreWriter,
    tasks: list[Task],
    clip_ids: np.ndarray,
    errors_path: Path,
    jobs: int,
    on_error: str,
    progress: bool,
    commit_every: int,
) -> int:
    """The extraction loop: features into the writer, failures into errors.csv; returns the failures."""
    failures, last_commit = 0, time.monotonic()
    with open(errors_path, "w", newline="") as handle, _results(tasks, writer.recipe, jobs) as results:
        report = csv.writer(handle)
        report.writerow(["clip_id", "path", "error"])
        for position, path, feats, error in show_progress(
            results, total=len(tasks), unit="clip", desc="extract", enabled=progress
        ):
            clip_id = str(clip_ids[position])
            if feats is not None:
                writer.add(clip_id, feats)
                if writer.pending >= commit_every or time.monotonic() - last_commit > 10:
                    writer.commit()
                    last_commit = time.monotonic()
                continue
            failures += 1
            report.writerow([clip_id, path, error])
            handle.flush()
            if on_error == "stop":
                raise UserError(
                    f"{path}: {error} (clip {clip_id})",
                    fix="repair or remove the file, or rerun with --on-error skip; finished clips are kept",
                )
    return failures


@contextmanager
def _results(
    tasks: list[Task], recipe: Frontend, jobs: int
) -> Iterator[Iterator[tuple[int, str, np.ndarray | None, str]]]:
    """Results of `_extract_one` over the tasks, as they finish: from `jobs` worker processes, or from
    this process when jobs == 1. Workers are spawned (not forked: torch's thread pools are not fork-safe)."""
    if jobs <= 1:
        _init_worker(recipe, None)
        yield map(_extract_one, tasks)
        return
    import multiprocessing as mp

    with mp.get_context("spawn").Pool(jobs, initializer=_init_worker, initargs=(recipe, 1)) as pool:
        yield pool.imap_unordered(_extract_one, tasks, chunksize=4)
