"""The manifest: a small saved description of a set of clips, their labels and splits.

Every data set in a study (a pre-training subset, a downstream task) is a manifest: a table of clips
(Parquet) plus a JSON sidecar with the ordered label set, summary statistics, provenance and a content
hash. Code passes manifests around, never paths or filter code, so a result always traces back to data.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from scipy import sparse

from audiotransfer.errors import UserError
from audiotransfer.files import read_sidecar, write_atomic

TaskType = Literal["multilabel", "multiclass", "binary"]
FORMAT_VERSION = 1
SPLITS = ("train", "dev", "test")


@dataclass
class Manifest:
    """Clips with multi-hot targets over an ordered label set.

    `clips` has at least a `clip_id` column (unique strings) and a `split` column ("train", "dev",
    "test" or "" when the manifest is unsplit); corpora add `path` (relative to `meta["root"]`),
    AudioSet lists add `start` and `end`. `targets` is a boolean CSR matrix, one row per clip, one
    column per entry of `labels`. Single-label tasks have exactly one True per row.

    Examples:
        >>> import pandas as pd
        >>> from audiotransfer.manifest import from_label_lists
        >>> clips = pd.DataFrame({"clip_id": ["a", "b", "c", "d"], "split": ["train", "train", "dev", "test"]})
        >>> m = from_label_lists("pets", clips, [["dog"], ["cat"], ["dog"], ["cat"]], task_type="multiclass")
        >>> m
        Manifest('pets', 4 clips x 2 labels, multiclass, splits train 2 / dev 1 / test 1)
        >>> m.split("train").num_clips, m.clips_per_class().tolist(), m.class_indices().tolist()
        (2, [2, 2], [1, 0, 1, 0])
    """

    name: str
    clips: pd.DataFrame
    labels: list[str]
    targets: sparse.csr_matrix
    label_names: list[str] = field(default_factory=list)
    task_type: TaskType = "multilabel"
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if "clip_id" not in self.clips.columns:
            raise ValueError("manifest clips need a 'clip_id' column")
        self.clips = self.clips.reset_index(drop=True)
        dupes = self.clips["clip_id"][self.clips["clip_id"].duplicated()]
        if len(dupes):
            raise UserError(
                f"manifest {self.name!r}: clip id {dupes.iloc[0]!r} is given to more than one clip "
                f"({len(dupes)} duplicate ids): they would share one set of features",
                fix="give every clip its own id (e.g. its path relative to the corpus root)",
            )
        if "split" not in self.clips.columns:
            self.clips["split"] = ""
        self.targets = sparse.csr_matrix(self.targets, dtype=bool)
        if self.targets.shape != (len(self.clips), len(self.labels)):
            raise ValueError(
                f"targets shape {self.targets.shape} does not match {len(self.clips)} clips x {len(self.labels)} labels"
            )
        if not self.label_names:
            self.label_names = list(self.labels)

    def __repr__(self) -> str:
        sizes = self.split_sizes()
        splits = " / ".join(f"{s} {sizes[s]}" for s in (*SPLITS, "") if s in sizes and s)
        return f"Manifest({self.name!r}, {self.num_clips} clips x {self.num_classes} labels, {self.task_type}" + (
            f", splits {splits})" if splits else ")"
        )

    # ----------------------------------------------------------------- summary
    @property
    def num_clips(self) -> int:
        return len(self.clips)

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    def clips_per_class(self) -> np.ndarray:
        return np.asarray(self.targets.sum(axis=0)).ravel().astype(np.int64)

    def labels_per_clip(self) -> float:
        return float(self.targets.nnz / max(self.num_clips, 1))

    def split_sizes(self) -> dict[str, int]:
        return {str(k): int(v) for k, v in self.clips["split"].value_counts().sort_index().items()}

    def class_indices(self) -> np.ndarray:
        """Index of the single label of each clip (single-label tasks only)."""
        if self.task_type == "multilabel":
            raise ValueError(f"manifest {self.name!r} is multi-label; it has no single class per clip")
        counts = np.diff(self.targets.indptr)
        if not np.all(counts == 1):
            raise ValueError(f"manifest {self.name!r}: {int(np.sum(counts != 1))} clips lack exactly one label")
        return self.targets.indices.astype(np.int64)

    @property
    def hash(self) -> str:
        """Content hash (clip ids, splits, labels, targets): equal on any machine for equal content."""
        h = hashlib.sha256()
        for column in ("clip_id", "split"):
            h.update("\x1f".join(self.clips[column].astype(str).tolist()).encode())
            h.update(b"\x1e")
        h.update("\x1f".join(self.labels).encode())
        h.update(b"\x1e")
        csr = self.targets.tocsr()
        csr.sort_indices()
        h.update(np.asarray(csr.indptr, dtype="<i8").tobytes())
        h.update(np.asarray(csr.indices, dtype="<i8").tobytes())
        return h.hexdigest()[:16]

    def summary(self) -> dict[str, Any]:
        per_class = self.clips_per_class()
        return {
            "name": self.name,
            "format_version": FORMAT_VERSION,
            "task_type": self.task_type,
            "num_clips": self.num_clips,
            "num_classes": self.num_classes,
            "labels": list(self.labels),
            "label_names": list(self.label_names),
            "clips_per_class": {lab: int(c) for lab, c in zip(self.labels, per_class, strict=True)},
            "labels_per_clip": round(self.labels_per_clip(), 4),
            "splits": self.split_sizes(),
            "hash": self.hash,
            "meta": self.meta,
        }

    # ---------------------------------------------------------------- subsets
    def take(self, rows: np.ndarray, name: str | None = None) -> Manifest:
        """A manifest of the given rows (same label set)."""
        rows = np.asarray(rows)
        return Manifest(
            name=name or self.name,
            clips=self.clips.iloc[rows].reset_index(drop=True),
            labels=list(self.labels),
            targets=self.targets[rows],
            label_names=list(self.label_names),
            task_type=self.task_type,
            meta=dict(self.meta),
        )

    def split(self, split: str) -> Manifest:
        rows = np.flatnonzero(self.clips["split"].to_numpy() == split)
        return self.take(rows, name=f"{self.name}:{split}")

    # -------------------------------------------------------------------- I/O
    def save(self, directory: str | Path) -> Path:
        """Write `{name}.parquet` (clips, targets as label-id lists) and `{name}.json`; return the JSON."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pandas(self.clips, preserve_index=False)
        csr = self.targets.tocsr()
        csr.sort_indices()
        label_array = pa.array(np.asarray(self.labels, dtype=object)[csr.indices], type=pa.string())
        offsets = pa.array(csr.indptr.astype(np.int32), type=pa.int32())
        table = table.append_column("targets", pa.ListArray.from_arrays(offsets, label_array))
        write_atomic(directory / f"{self.name}.parquet", lambda tmp: pq.write_table(table, tmp))
        sidecar = directory / f"{self.name}.json"
        text = json.dumps(self.summary(), indent=1, default=str) + "\n"
        write_atomic(sidecar, lambda tmp: tmp.write_text(text))
        return sidecar

    @classmethod
    def load(cls, path: str | Path) -> Manifest:
        """Load from `DIR/NAME`, `DIR/NAME.json` or `DIR/NAME.parquet`."""
        path = Path(path)
        base = path.with_suffix("") if path.suffix in (".json", ".parquet") else path
        sidecar, table_path = base.parent / f"{base.name}.json", base.parent / f"{base.name}.parquet"
        for p in (sidecar, table_path):
            if not p.exists():
                raise UserError(f"{p}: manifest file not found", fix="build it first or check the path")
        info = read_sidecar(sidecar, "manifest", FORMAT_VERSION)
        table = pq.read_table(table_path)
        targets_col = table.column("targets").combine_chunks()
        clips = table.drop_columns(["targets"]).to_pandas()
        labels = list(info["labels"])
        lookup = {lab: i for i, lab in enumerate(labels)}
        flat = targets_col.flatten().to_numpy(zero_copy_only=False)
        unknown = set(flat) - lookup.keys()
        if unknown:
            raise UserError(
                f"{table_path}: field 'targets' holds labels missing from the sidecar's 'labels': "
                f"{sorted(unknown)[:5]}",
                fix="rebuild the manifest; the two files do not belong together",
            )
        indices = pd.Series(flat, dtype=object).map(lookup).to_numpy(dtype=np.int64)
        indptr = targets_col.offsets.to_numpy().astype(np.int64)
        targets = sparse.csr_matrix(
            (np.ones(len(indices), dtype=bool), indices, indptr), shape=(len(clips), len(labels))
        )
        manifest = cls(
            name=info["name"],
            clips=clips,
            labels=labels,
            targets=targets,
            label_names=list(info.get("label_names") or labels),
            task_type=info.get("task_type", "multilabel"),
            meta=info.get("meta", {}),
        )
        if info.get("hash") and manifest.hash != info["hash"]:
            raise UserError(
                f"{sidecar}: field 'hash' is {info['hash']} but the clips hash to {manifest.hash}",
                fix="the Parquet file was changed after the sidecar was written; rebuild the manifest",
            )
        return manifest


def from_label_lists(
    name: str,
    clips: pd.DataFrame,
    label_lists: list[list[str]] | pd.Series,
    labels: list[str] | None = None,
    label_names: list[str] | None = None,
    task_type: TaskType = "multilabel",
    meta: dict[str, Any] | None = None,
) -> Manifest:
    """Build a manifest from one list of label ids per clip; labels default to sorted unique ids."""
    lists = list(label_lists)
    if labels is None:
        labels = sorted({lab for row in lists for lab in row})
    lookup = {lab: i for i, lab in enumerate(labels)}
    indptr = np.zeros(len(lists) + 1, dtype=np.int64)
    indptr[1:] = np.cumsum([len(row) for row in lists])
    try:
        indices = np.fromiter((lookup[lab] for row in lists for lab in row), dtype=np.int64, count=indptr[-1])
    except KeyError as exc:
        raise UserError(f"manifest {name!r}: label {exc.args[0]!r} is not in the label set") from None
    targets = sparse.csr_matrix((np.ones(len(indices), dtype=bool), indices, indptr), shape=(len(lists), len(labels)))
    return Manifest(name, clips, list(labels), targets, list(label_names or labels), task_type, meta or {})
