"""Random-access reads of an extracted feature store: memory-mapped shards, crops, batch prefetch."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch

import audiotransfer.data.store_format as fmt
from audiotransfer.data.features import Frontend, frontend_from_dict
from audiotransfer.errors import UserError

COPY_ELEMENTS = 16384  # below torch's parallel grain size (32768): copies stay on the calling thread


class FeatureStore:
    """Random-access reads of an extracted store: `rows`, `lengths`, `read_batch`, `read`.

    Opening checks the sidecar's format version and every shard against the index (a short shard is a
    UserError here, never zeros read later). `close()` (or leaving a `with` block) releases the memory maps
    and the files opened for prefetch; a closed store reopens them on the next read.

    A store holds each clip's features once (shards + an index); every manifest of the same corpus and recipe
    reads its clips from it by id. `extract_features` writes one from audio; `write_store` from arrays, as here:

    Examples:
        >>> import tempfile
        >>> import numpy as np
        >>> from audiotransfer.data.features import RECIPES
        >>> from audiotransfer.data.store import write_store
        >>> arrays = {f"clip{i}": np.zeros((50 + 10 * i, 32), np.float32) for i in range(3)}  # (frames, mels)
        >>> store = write_store(tempfile.mkdtemp(), RECIPES["demo"], "toy", arrays)
        >>> store  # doctest: +ELLIPSIS
        FeatureStore('...', clips=3, recipe=...)
        >>> rows = store.rows(["clip2", "clip0"])
        >>> store.lengths(rows).tolist(), store.read_batch(rows, 40, crop="center").shape
        ([70, 50], (2, 40, 32))
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.info: dict[str, Any] = fmt.read_sidecar(self.root)
        self.recipe: Frontend = frontend_from_dict(self.info["recipe"])
        self.corpus: str = self.info.get("corpus", "")
        self.dtype = np.dtype(self.info.get("dtype", "float16"))
        index = fmt.read_index(self.root)
        self.clip_ids: pd.Index = pd.Index(index["clip_id"].astype(str))
        self._shard = index["shard"].to_numpy(np.int32)
        self._offset = index["offset"].to_numpy(np.int64)
        self._frames = index["frames"].to_numpy(np.int64)
        self._maps: dict[int, torch.Tensor] = {}
        self._fds: dict[int, int] = {}
        self._check_shards(index)

    def _check_shards(self, index: pd.DataFrame) -> None:
        """A shard shorter than the index says (truncated, lost) is a UserError naming it."""
        frame_bytes = self.dtype.itemsize * self.recipe.n_mels
        lost = fmt.lost_rows(self.root, index, frame_bytes)
        if not lost.any():
            return
        shard = int(index["shard"][lost].iloc[0])
        path = fmt.shard_path(self.root, shard)
        need = int(fmt.row_ends(index[index["shard"] == shard], frame_bytes).max())
        raise UserError(
            f"{path}: shard holds {fmt.file_size(path):,} bytes but the store's index needs {need:,} "
            "(the file was truncated or replaced)",
            fix="rerun `audiotransfer features extract` (or `study run`): clips the shard lost are "
            "dropped from the index and extracted again",
        )

    @property
    def num_clips(self) -> int:
        return len(self.clip_ids)

    @property
    def floor(self) -> float:
        return self.recipe.floor_db

    def __repr__(self) -> str:
        return f"FeatureStore({str(self.root)!r}, clips={self.num_clips}, recipe={self.recipe.hash})"

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_maps"], state["_fds"] = {}, {}  # memory maps and files are reopened in the receiving process
        return state

    def close(self) -> None:
        """Release the memory maps and close the files opened for prefetch."""
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
        self._maps.clear()

    def __enter__(self) -> FeatureStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_fds", None):
            self.close()

    def rows(self, clip_ids: Sequence[str] | np.ndarray | pd.Series) -> np.ndarray:
        """Store rows of the given clip ids (int64); a UserError names the missing ones."""
        ids = pd.Index(np.asarray(clip_ids, dtype=object).astype(str))
        rows = self.clip_ids.get_indexer(ids)
        missing = ids[rows < 0]
        if len(missing):
            raise UserError(
                f"{self.root}: {len(missing)} of {len(ids)} clips are not in the store "
                f"(e.g. {', '.join(map(str, missing[:5]))})",
                fix="extract features for this manifest into the store (`audiotransfer features extract`)",
            )
        return rows.astype(np.int64)

    def lengths(self, rows: np.ndarray) -> np.ndarray:
        """Number of frames of each row's clip."""
        return self._frames[np.asarray(rows, dtype=np.int64)]

    def _shard_tensor(self, shard: int) -> torch.Tensor:
        if shard not in self._maps:
            path = fmt.shard_path(self.root, shard)
            n_mels = self.recipe.n_mels
            # copy-on-write map: writable for torch, never written back to the file
            mm = np.memmap(
                path, dtype=self.dtype, mode="c", shape=(path.stat().st_size // (self.dtype.itemsize * n_mels), n_mels)
            )
            self._maps[shard] = torch.from_numpy(mm)
        return self._maps[shard]

    def _prefetch(self, shards: list[int], begins: list[int], counts: list[int]) -> None:
        """Ask the kernel to read every crop of a batch now (POSIX_FADV_WILLNEED, asynchronous): on a
        store larger than RAM the disk then serves the whole batch at a deep queue instead of one page
        fault at a time. A no-op where the platform lacks posix_fadvise."""
        if not hasattr(os, "posix_fadvise"):
            return
        size = self.dtype.itemsize * self.recipe.n_mels
        for shard, begin, n in zip(shards, begins, counts, strict=True):
            if shard not in self._fds:
                self._fds[shard] = os.open(fmt.shard_path(self.root, shard), os.O_RDONLY)
            os.posix_fadvise(self._fds[shard], begin * size, n * size, os.POSIX_FADV_WILLNEED)

    def read(self, row: int) -> np.ndarray:
        """All frames of one clip, float32 (frames, n_mels)."""
        shard = self._shard_tensor(int(self._shard[row]))
        start = int(self._offset[row])
        return shard[start : start + int(self._frames[row])].float().numpy()

    def read_batch(
        self,
        rows: np.ndarray,
        frames: int,
        crop: Literal["random", "center"] = "random",
        rng: np.random.Generator | None = None,
        starts: np.ndarray | None = None,
        dtype: type[np.floating[Any]] = np.float32,
    ) -> np.ndarray:
        """Crops of `frames` frames, float32 (B, frames, n_mels); short clips padded with the floor value.

        `starts` (first frame of each crop) overrides `crop`; `dtype=np.float16` skips the conversion
        (half the bytes to copy and to send to an accelerator, which converts exactly)."""
        rows = np.asarray(rows, dtype=np.int64)
        lengths = self._frames[rows]
        spare = np.maximum(lengths - frames, 0)
        if starts is not None:
            starts = np.minimum(np.asarray(starts, dtype=np.int64), spare)
        elif crop == "random":
            starts = (rng or np.random.default_rng()).integers(0, spare + 1)
        elif crop == "center":
            starts = spare // 2
        else:
            raise ValueError(f"crop must be 'random' or 'center', not {crop!r}")
        take = np.minimum(lengths, frames)
        out = np.full((len(rows), frames, self.recipe.n_mels), self.floor, dtype=dtype)
        target = torch.from_numpy(out)  # shares memory: torch converts float16 -> float32 fast (F16C)
        begins = self._offset[rows] + starts
        step = COPY_ELEMENTS // self.recipe.n_mels
        shards, begins, take = self._shard[rows].tolist(), begins.tolist(), take.tolist()
        self._prefetch(shards, begins, take)
        for i, (shard, begin, n) in enumerate(zip(shards, begins, take, strict=True)):
            source = self._shard_tensor(shard)
            for a in range(0, n, step):  # pieces below torch's parallel grain: no thread hand-off per crop
                b = min(a + step, n)
                target[i, a:b].copy_(source[begin + a : begin + b])
        return out
