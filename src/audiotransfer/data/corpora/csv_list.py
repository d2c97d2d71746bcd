"""Any CSV of `path,label[,split]`: paths relative to the CSV's folder; seeded stratified splits if none."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from audiotransfer.data.corpora._common import (
    check_values,
    read_table,
    require,
    single_label_manifest,
    stratified_splits,
)
from audiotransfer.data.corpora.folder import median_seconds
from audiotransfer.errors import UserError
from audiotransfer.manifest import SPLITS, Manifest

LAYOUT = "a CSV with header path,label[,split] (split in train/dev/test), paths relative to the CSV's folder"


def load(root: Path, file: str = "labels.csv", labels: Sequence[str] | None = None, dev_fraction: float = 0.1,
         test_fraction: float = 0.2, seed: int = 0, clip_seconds: float | None = None) -> Manifest:
    """`root` is the CSV itself or the folder holding `file`; audio paths are relative to its folder.

    `labels`, when given, is the closed label set (in order): other values in the CSV are an error.
    """
    path = root if root.is_file() else require(root / file, "label list", LAYOUT)
    base = path.parent
    table = read_table(path, ["path", "label"], LAYOUT)
    if table.empty:
        raise UserError(f"{path}: no rows", fix=f"expected {LAYOUT}")
    empty = table.index[(table["path"].str.strip() == "") | (table["label"].str.strip() == "")]
    if len(empty):
        raise UserError(f"{path}: empty 'path' or 'label' on line {int(empty[0]) + 2}",
                        fix="give every row a path and a label")
    if table["path"].duplicated().any():
        dup = table["path"][table["path"].duplicated()].iloc[0]
        raise UserError(f"{path}: field 'path' lists {dup!r} twice", fix="list each file once")
    absolute = table["path"].map(lambda p: Path(p).is_absolute())
    if absolute.any():
        raise UserError(f"{path}: field 'path' holds absolute paths (e.g. {table['path'][absolute].iloc[0]})",
                        fix=f"write paths relative to {base}")
    if labels is not None:
        check_values(table["label"], labels, path, "label")
    if "split" in table:
        check_values(table["split"], SPLITS, path, "split")
        split = table["split"]
    else:
        split = stratified_splits(table["label"], dev_fraction, test_fraction, seed)
    clips = pd.DataFrame({"clip_id": table["path"].str.rsplit(".", n=1).str[0], "split": split,
                          "path": table["path"], "label": table["label"]})
    seconds = clip_seconds if clip_seconds is not None else median_seconds(base, clips["path"])
    return single_label_manifest("csv", clips, "label", labels or sorted(clips["label"].unique()), base, seconds,
                                 source=[str(path)], seed=seed)
