"""Distributed feature extraction on Ray: clips split over tasks that each write their own part store,
then one merge into the store.

Layout while it runs: `STORE/parts/NNNNN/` is a complete store (own shards, index parts, store.json,
errors.csv) written by one task with the ordinary `StoreWriter`, so a task retried after its node died
resumes from its last commit. The driver holds the store's lock throughout; when the tasks end it checks
every part and moves its shards into the store (a rename on shared storage, no copy) and indexes them.

Resuming: parts left by an interrupted extraction (the driver or a node died) are merged first, keeping
every committed clip, and only the clips still missing are extracted again. A part whose shard is shorter
than its index says (a partial file from a dead worker, or a lost write) loses the affected clips, with a
warning, and those clips are extracted again: the store is never silently short.
"""

from __future__ import annotations

import csv
import logging
import shutil
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from audiotransfer.data.extract import extract_features
from audiotransfer.data.features import FeatureRecipe
from audiotransfer.data.store_format import SIDECAR, lost_rows, read_index
from audiotransfer.data.store_reader import FeatureStore
from audiotransfer.data.store_writer import StoreWriter
from audiotransfer.errors import UserError
from audiotransfer.manifest import Manifest
from audiotransfer.progress import progress as show_progress

log = logging.getLogger(__name__)
PARTS = "parts"  # one of store_format.STORE_MARKERS
CLIPS_PER_TASK = 2000


def intact_rows(part: Path, frame_bytes: int) -> tuple[pd.DataFrame, int]:
    """The part's committed index rows whose bytes are all in its shard files, and how many are not."""
    index = read_index(part)
    lost = lost_rows(part, index, frame_bytes)
    return index[~lost].reset_index(drop=True), int(lost.sum())


def merge_parts(writer: StoreWriter) -> int:
    """Move every part under the store into it (see the module docstring); return the clips added."""
    added = 0
    parts_dir = writer.root / PARTS
    for part in sorted(p for p in parts_dir.glob("*") if p.is_dir()) if parts_dir.exists() else []:
        if (part / SIDECAR).exists():
            rows, damaged = intact_rows(part, writer.frame_bytes)
            if damaged:
                log.warning(
                    "features: %s: %d clips' bytes are missing from their shard (a partial file left by "
                    "a dead worker); they are extracted again",
                    part,
                    damaged,
                )
            added += writer.adopt(part, rows)
            _append_errors(writer.root / "errors.csv", part / "errors.csv", writer.done)
        shutil.rmtree(part)
    if parts_dir.exists():
        parts_dir.rmdir()
    return added


def _append_errors(target: Path, source: Path, done: set[str]) -> None:
    """Carry a part's unusable clips into the store's errors.csv (those now in the store excepted)."""
    if not source.exists():
        return
    rows = [r for r in csv.reader(source.open())][1:]
    rows = [r for r in rows if r and r[0] not in done]
    if not rows:
        return
    new = not target.exists()
    with target.open("a", newline="") as handle:
        out = csv.writer(handle)
        if new:
            out.writerow(["clip_id", "path", "error"])
        out.writerows(rows)


def extract_part(
    manifest: Manifest, part: Path, recipe: FeatureRecipe, threads: int, on_error: Literal["skip", "stop"]
) -> dict[str, Any]:
    """One task: the clips of `manifest` into the part store `part` (resuming it, unless it is damaged)."""
    import torch

    torch.set_num_threads(threads)
    if (part / SIDECAR).exists():
        _, damaged = intact_rows(part, np.dtype("float16").itemsize * recipe.n_mels)
        if damaged:  # a retry after the node died mid-write: start the part afresh
            shutil.rmtree(part)
    store = extract_features(manifest, part, recipe, jobs=1, on_error=on_error, progress=False)
    return {"part": str(part), "clips": store.num_clips}


def extract_distributed(
    manifest: Manifest,
    store_dir: str | Path,
    recipe: FeatureRecipe | None = None,
    num_cpus: float = 1.0,
    clips_per_task: int = CLIPS_PER_TASK,
    on_error: Literal["skip", "stop"] = "skip",
    progress: bool = True,
    address: str | None = None,
    node_retries: int = 3,
) -> FeatureStore:
    """`extract_features` over a Ray cluster (joined at `address`, or the running Ray, or a local one)."""
    from audiotransfer.cluster import connect, ray_module

    recipe = recipe or FeatureRecipe()
    if "path" not in manifest.clips or "root" not in manifest.meta:
        raise UserError(
            f"manifest {manifest.name!r} has no audio paths (column 'path', meta 'root')",
            fix="build it with a corpus loader (audiotransfer.data.corpora.load_corpus)",
        )
    ray = ray_module()
    started = connect(address)
    writer = StoreWriter(store_dir, recipe, manifest.meta.get("corpus", ""))
    (writer.root / "errors.csv").unlink(missing_ok=True)  # it lists the clips of this extraction
    try:
        resumed = merge_parts(writer)
        todo = np.flatnonzero(~manifest.clips["clip_id"].astype(str).isin(writer.done).to_numpy())
        chunks = [c for c in np.array_split(todo, -(-len(todo) // clips_per_task)) if len(c)] if len(todo) else []
        log.info(
            "features: %d of %d clips in %s (%d from parts of an interrupted extraction); %d to extract in "
            "%d Ray tasks",
            manifest.num_clips - len(todo),
            manifest.num_clips,
            writer.root,
            resumed,
            len(todo),
            len(chunks),
        )
        task = ray.remote(num_cpus=num_cpus, max_retries=node_retries)(extract_part)
        parts = writer.root / PARTS
        refs = [
            task.remote(manifest.take(chunk), parts / f"{i:05d}", recipe, max(1, int(num_cpus)), on_error)
            for i, chunk in enumerate(chunks)
        ]
        _wait_all(ray, refs, progress)
        merge_parts(writer)
    finally:
        store = writer.close()
        if started:
            ray.shutdown()
    return store


def _wait_all(ray: Any, refs: list[Any], progress: bool) -> None:
    """Wait for every task; the first task error is raised (a UserError as itself)."""
    bar = show_progress(total=len(refs), unit="task", desc="extract (ray)", enabled=progress)
    pending = list(refs)
    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            try:
                ray.get(done[0])
            except ray.exceptions.RayTaskError as exc:
                if isinstance(exc.cause, UserError):
                    raise exc.cause from None
                raise
            bar.update(1)
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)
        bar.close()
