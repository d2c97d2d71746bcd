"""Any CSV of `path,label[,split]`: absolute paths or paths relative to the CSV's folder; seeded stratified
splits if none.

A relative path is read from the CSV's folder, as a shell in that folder would: `../x.wav` is the file beside
that folder (allowed; the CSV must then move with the audio). A clip's id is its path relative to the CSV's
folder without the suffix (`a/x.wav` -> `a/x`, `../b/x.wav` -> `../b/x`; for an absolute path the same
relative form), so ids stay stable when the whole tree moves, and no two files share one.
"""

from __future__ import annotations

import logging
import os
import posixpath
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from audiotransfer.data.corpora._common import (
    check_values,
    clip_ids,
    read_table,
    require,
    single_label_manifest,
)
from audiotransfer.data.corpora.folder import median_seconds
from audiotransfer.data.corpora.groups import groups_from_pattern, split_clips
from audiotransfer.errors import UserError, cut
from audiotransfer.manifest import SPLITS, Manifest

log = logging.getLogger(__name__)

LAYOUT = (
    "a CSV with header path,label[,split][,group] (split in train/dev/test; clips of one group stay in one "
    "split); paths absolute or relative to the CSV's folder"
)


def load(
    root: Path,
    file: str = "labels.csv",
    labels: Sequence[str] | None = None,
    dev_fraction: float = 0.1,
    test_fraction: float = 0.2,
    seed: int = 0,
    clip_seconds: float | None = None,
    group: str | None = None,
) -> Manifest:
    """`root` is the CSV itself or the folder holding `file`; audio paths are absolute or relative to its folder.

    `labels`, when given, is the closed label set (in order): other values in the CSV are an error. A clip's
    group (kept in one split) is the first capture group of the regular expression `group` searched in its
    path relative to the CSV's folder, else the CSV's `group` column, else its ESC-50 file name.
    """
    path = root if root.is_file() else require(root / file, "label list", LAYOUT)
    base = path.parent
    table = read_table(path, ["path", "label"], LAYOUT)
    if table.empty:
        raise UserError(f"{path}: no rows", fix=f"expected {LAYOUT}")
    empty = table.index[(table["path"].str.strip() == "") | (table["label"].str.strip() == "")]
    if len(empty):
        raise UserError(
            f"{path}: empty 'path' or 'label' on line {int(empty[0]) + 2}", fix="give every row a path and a label"
        )
    raw = table["path"].copy()
    table["path"], keys = _normalise(table["path"], base)
    if keys.duplicated().any():
        first = keys[keys.duplicated()].iloc[0]
        rows = table.index[keys == first][:2]
        raise UserError(
            f"{path}: field 'path' lists one file twice, on lines {rows[0] + 2} and {rows[1] + 2} "
            f"({cut(raw[rows[0]], 80)} and {cut(raw[rows[1]], 80)})",
            fix="list each file once",
        )
    table["label"] = _stripped_labels(table["label"], path)
    if labels is not None:
        check_values(table["label"], labels, path, "label")
    clips = pd.DataFrame({"clip_id": clip_ids(keys), "path": table["path"], "label": table["label"]})
    if "group" in table:
        clips["group"] = table["group"].str.strip()
    if "split" in table:
        check_values(table["split"], SPLITS, path, "split")
        clips["split"] = table["split"]
        if group is not None:
            clips["group"] = groups_from_pattern(keys, group, str(path))
    else:
        clips = split_clips(clips.assign(path=keys), group, dev_fraction, test_fraction, seed, str(path))
        clips["path"] = table["path"]
    seconds = clip_seconds if clip_seconds is not None else median_seconds(base, clips["path"])
    return single_label_manifest(
        "csv", clips, "label", labels or sorted(clips["label"].unique()), base, seconds, source=[str(path)], seed=seed
    )


def _stripped_labels(labels: pd.Series, path: Path) -> pd.Series:
    """Labels without surrounding spaces (`dog` and `dog ` are one class), with a warning when any had them."""
    stripped = labels.str.strip()
    changed = labels[stripped != labels]
    if len(changed):
        log.warning(
            f"warning: {path}: {len(changed)} labels have surrounding spaces (e.g. {cut(changed.iloc[0])}); "
            "they are stripped, so 'dog' and 'dog ' are one class"
        )
    return stripped


def _normalise(paths: pd.Series, base: Path) -> tuple[pd.Series, pd.Series]:
    """(paths to read, absolute or relative to `base`, normalised; their relative form to `base`, the key
    that identifies a file: `a/x.wav`, `./a/x.wav` and `BASE/a/x.wav` are one file)."""
    stripped = paths.str.strip()
    read = stripped.map(lambda p: posixpath.normpath(Path(p).expanduser().as_posix()))
    keys = read.map(lambda p: Path(os.path.relpath(p, base)).as_posix() if posixpath.isabs(p) else p)
    return read, keys
