"""The feature store's on-disk layout, written once: file names, the index schema, the sidecar and its
version, and the one check of which index rows a shard no longer holds.

Layout of a store directory:
  store.json            sidecar: recipe, recipe hash, corpus, dtype, counts, format_version
  shards/NNNNN.bin      raw row-major (frames, n_mels) arrays, clips back to back (float16 by default)
  index.parquet         clip_id, shard, offset, frames (offset and frames in feature frames)
  index/NNNNNN.parquet  index parts committed during an extraction, merged into index.parquet at the end
  errors.csv            clips the last extraction could not read (clip_id, path, error)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from audiotransfer.errors import UserError
from audiotransfer.files import read_sidecar as read_sidecar_file

STORE_VERSION = 1
SIDECAR = "store.json"
# what marks a folder as a store, finished or not: its sidecar, its writer's lock, a distributed run's parts
STORE_MARKERS = (SIDECAR, ".lock", "parts")
INDEX = "index.parquet"
INDEX_PARTS = "index"
SHARDS = "shards"
ERRORS = "errors.csv"
INDEX_SCHEMA = pa.schema(
    [("clip_id", pa.string()), ("shard", pa.int32()), ("offset", pa.int64()), ("frames", pa.int64())]
)


def shard_path(root: Path, shard: int) -> Path:
    """The file of shard number `shard` in the store at `root`."""
    return root / SHARDS / f"{int(shard):05d}.bin"


def file_size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def read_sidecar(root: Path) -> dict[str, Any]:
    """`store.json` of the store at `root`, its format version checked (a store without one is version 1)."""
    sidecar = root / SIDECAR
    if not sidecar.exists():
        raise UserError(
            f"{sidecar}: not a feature store (store.json missing)",
            fix="run `audiotransfer features extract` first, or check the --store path",
        )
    return read_sidecar_file(sidecar, "feature store", STORE_VERSION)


def read_index(root: Path) -> pd.DataFrame:
    """The merged index plus any committed parts, first occurrence of a clip id kept."""
    tables = [pq.read_table(root / INDEX)] if (root / INDEX).exists() else []
    tables += [pq.read_table(p) for p in sorted((root / INDEX_PARTS).glob("*.parquet"))]
    if not tables:
        return INDEX_SCHEMA.empty_table().to_pandas()
    frame = pa.concat_tables([t.cast(INDEX_SCHEMA) for t in tables]).to_pandas()
    return frame.drop_duplicates("clip_id", keep="first").reset_index(drop=True)


def row_ends(index: pd.DataFrame, frame_bytes: int) -> np.ndarray:
    """The byte each index row's clip ends at in its shard."""
    return (index["offset"] + index["frames"]).to_numpy(np.int64) * frame_bytes


def lost_rows(root: Path, index: pd.DataFrame, frame_bytes: int) -> np.ndarray:
    """Mask of the index rows whose bytes their shard file under `root` no longer holds (truncated or lost)."""
    sizes = {s: file_size(shard_path(root, s)) for s in index["shard"].unique()}
    return row_ends(index, frame_bytes) > index["shard"].map(sizes).to_numpy(np.int64)
