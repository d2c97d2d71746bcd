"""Appending clips to a feature store: committed in batches, recovered after a kill, one writer at a time.

Writes are append-only and committed in batches (shard bytes are fsynced before the index part naming
them is renamed into place), so a killed extraction loses at most one uncommitted batch and a rerun
truncates the uncommitted tail and continues. A lock file keeps a second writer out.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

import audiotransfer.data.store_format as fmt
from audiotransfer.data.features import Frontend, WaveformRecipe
from audiotransfer.data.store_reader import FeatureStore
from audiotransfer.errors import UserError
from audiotransfer.files import make_output_folder, write_atomic

SHARD_BYTES = 1 << 30


log = logging.getLogger(__name__)


class StoreWriter:
    """Appends clips to a store directory; `commit()` makes the appended clips durable, `close()` (or
    leaving a `with` block, also on an exception) commits, merges the index and releases the lock."""

    def __init__(
        self,
        root: str | Path,
        recipe: Frontend,
        corpus: str = "",
        dtype: str | None = None,
        shard_bytes: int = SHARD_BYTES,
    ) -> None:
        self.root = make_output_folder(Path(root), fmt.STORE_MARKERS, "feature store")
        self.recipe = recipe
        dtype = dtype or ("float32" if isinstance(recipe, WaveformRecipe) else "float16")  # samples keep 24 bits
        if (self.root / fmt.SIDECAR).exists():
            corpus, dtype = self._check_existing(corpus, dtype)
        self.corpus = corpus
        self.dtype = np.dtype(dtype)
        self.frame_bytes = self.dtype.itemsize * recipe.n_mels
        self.shard_frames = max(1, shard_bytes // self.frame_bytes)
        (self.root / fmt.SHARDS).mkdir(parents=True, exist_ok=True)
        (self.root / fmt.INDEX_PARTS).mkdir(exist_ok=True)
        self._lock = open(self.root / ".lock", "w")  # noqa: SIM115 - held until close(); the OS drops it on a kill
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise UserError(
                f"{self.root}: another process is writing to this store",
                fix="wait for it to finish (or stop it); a rerun then resumes",
            ) from None
        if not (self.root / fmt.SIDECAR).exists():
            self._write_sidecar(num_clips=0, num_frames=0)
        self.index = fmt.read_index(self.root)
        self.done: set[str] = set(self.index["clip_id"])
        self._recover()
        self._pending: list[tuple[str, int, int, int]] = []
        self._closed = False
        self._file = open(fmt.shard_path(self.root, self.shard), "ab")  # noqa: SIM115 - closed in close()

    def _check_existing(self, corpus: str, dtype: str) -> tuple[str, str]:
        """The existing store's corpus and dtype; a UserError when its recipe or corpus differ."""
        sidecar = self.root / fmt.SIDECAR
        info = fmt.read_sidecar(self.root)
        if info.get("recipe_hash") != self.recipe.hash:
            raise UserError(
                f"{sidecar}: field 'recipe_hash' is {info.get('recipe_hash')}, the requested recipe "
                f"hashes to {self.recipe.hash}",
                fix="use the store's recipe, or a new --store directory for a different recipe",
            )
        if corpus and info.get("corpus") and info["corpus"] != corpus:
            raise UserError(
                f"{sidecar}: field 'corpus' is {info['corpus']!r}, not {corpus!r}",
                fix="use one store per corpus (clip ids of different corpora may clash)",
            )
        return corpus or info.get("corpus", ""), info.get("dtype", dtype)

    def __enter__(self) -> StoreWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self._finish()

    def _recover(self) -> None:
        """Cut every shard back to its committed extent (drops what a killed run left uncommitted); clips
        whose bytes a shard no longer holds (a truncated or lost file) leave the index, to be extracted again."""
        lost = fmt.lost_rows(self.root, self.index, self.frame_bytes)
        if lost.any():
            damaged = sorted({fmt.shard_path(self.root, s).name for s in self.index["shard"][lost]})
            log.warning(
                "features: shard(s) %s in %s are shorter than the index says; %d clips dropped from the "
                "store, to be extracted again",
                ", ".join(damaged),
                self.root / fmt.SHARDS,
                int(lost.sum()),
            )
            self.index = self.index[~lost].reset_index(drop=True)
            self.done = set(self.index["clip_id"])
            self._write_index()
        extent = (self.index["offset"] + self.index["frames"]).groupby(self.index["shard"]).max()
        for path in sorted((self.root / fmt.SHARDS).glob("*.bin")):
            committed = int(extent.get(int(path.stem), 0)) * self.frame_bytes
            if path.stat().st_size > committed:
                os.truncate(path, committed)
        self.shard = int(extent.index.max()) if len(extent) else 0
        self.offset = int(extent.get(self.shard, 0))

    def _write_index(self) -> None:
        """Merge the index into index.parquet (atomically) and drop the committed parts."""
        table = pa.Table.from_pandas(self.index, schema=fmt.INDEX_SCHEMA, preserve_index=False)
        write_atomic(self.root / fmt.INDEX, lambda p: pq.write_table(table, p))
        for part in (self.root / fmt.INDEX_PARTS).glob("*.parquet"):
            part.unlink()

    def add(self, clip_id: str, features: np.ndarray) -> None:
        """Append one clip's (frames, n_mels) features; durable after the next `commit()`."""
        if features.ndim != 2 or features.shape[1] != self.recipe.n_mels or len(features) == 0:
            raise ValueError(
                f"clip {clip_id!r}: features of shape {features.shape}, expected (frames > 0, {self.recipe.n_mels})"
            )
        if self.offset and self.offset + len(features) > self.shard_frames:
            self.commit()
            self._file.close()
            self.shard, self.offset = self.shard + 1, 0
            self._file = open(fmt.shard_path(self.root, self.shard), "ab")  # noqa: SIM115
        self._file.write(np.ascontiguousarray(features, dtype=self.dtype).tobytes())
        self._pending.append((clip_id, self.shard, self.offset, len(features)))
        self.offset += len(features)
        self.done.add(clip_id)

    @property
    def pending(self) -> int:
        """Clips added since the last commit."""
        return len(self._pending)

    def commit(self) -> None:
        """Flush the shard to disk, then publish the pending index rows as a new index part."""
        if not self._pending:
            return
        self._file.flush()
        os.fsync(self._file.fileno())
        part = pd.DataFrame(self._pending, columns=fmt.INDEX_SCHEMA.names)
        parts = sorted((self.root / fmt.INDEX_PARTS).glob("*.parquet"))
        number = int(parts[-1].stem) + 1 if parts else 0
        table = pa.Table.from_pandas(part, schema=fmt.INDEX_SCHEMA, preserve_index=False)
        write_atomic(self.root / fmt.INDEX_PARTS / f"{number:06d}.parquet", lambda p: pq.write_table(table, p))
        self.index = pd.concat([self.index, part], ignore_index=True)
        self._pending.clear()

    def adopt(self, part: Path, rows: pd.DataFrame) -> int:
        """Move the shards of another store of the same recipe (a distributed extraction's part) into this
        one, renamed not copied, and index `rows` of its index (clip_id, shard, offset, frames) that this
        store lacks; return how many. The caller checks that those rows' bytes are all there."""
        rows = rows[~rows["clip_id"].isin(self.done)]
        if rows.empty:
            return 0
        self.commit()
        self._file.close()
        numbers = [int(p.stem) for p in (self.root / fmt.SHARDS).glob("*.bin")]
        first = max([self.shard, *numbers]) + 1
        mapping = {shard: first + k for k, shard in enumerate(sorted(rows["shard"].unique()))}
        for old, new in mapping.items():
            os.replace(fmt.shard_path(part, old), fmt.shard_path(self.root, new))
        self._pending += list(
            zip(rows["clip_id"], rows["shard"].map(mapping), rows["offset"], rows["frames"], strict=True)
        )
        self.done.update(rows["clip_id"])
        self.shard, self.offset = first + len(mapping), 0
        self._file = open(fmt.shard_path(self.root, self.shard), "ab")  # noqa: SIM115 - closed in close()
        self.commit()
        return len(rows)

    def close(self) -> FeatureStore:
        """Finish the writes (see `_finish`) and return the store; closing again only reopens it."""
        self._finish()
        return FeatureStore(self.root)

    def _finish(self) -> None:
        """Commit, merge the index parts into index.parquet, update the sidecar, release the lock (once)."""
        if self._closed:
            return
        self._closed = True
        try:
            self.commit()
            self._file.close()
            self._write_index()
            self._write_sidecar(num_clips=len(self.index), num_frames=int(self.index["frames"].sum()))
        finally:
            self._lock.close()

    def _write_sidecar(self, num_clips: int, num_frames: int) -> None:
        from audiotransfer import __version__

        info = {
            "what": "audiotransfer feature store",
            "format_version": fmt.STORE_VERSION,
            "recipe": self.recipe.model_dump(),
            "recipe_hash": self.recipe.hash,
            "corpus": self.corpus,
            "dtype": self.dtype.name,
            "num_clips": num_clips,
            "num_frames": num_frames,
            "bytes": num_frames * self.frame_bytes,
            "updated": datetime.now(UTC).isoformat(timespec="seconds"),
            "audiotransfer_version": __version__,
        }
        write_atomic(self.root / fmt.SIDECAR, lambda p: p.write_text(json.dumps(info, indent=1) + "\n"))


def write_store(
    store_dir: str | Path, recipe: Frontend, corpus: str, features: Mapping[str, np.ndarray]
) -> FeatureStore:
    """Pack given (frames, n_mels) arrays into a store without audio; clips already in it are kept."""
    with StoreWriter(store_dir, recipe, corpus) as writer:
        for clip_id, array in features.items():
            if str(clip_id) not in writer.done:
                writer.add(str(clip_id), np.asarray(array))
    return writer.close()
