"""AudioSet: segment lists (train lists -> "train", eval lists -> "test") plus a local audio folder.

Local copies are named by the user's download tool; `pattern` formats the expected file name (relative to
`audio_dir`, or just the base name) from `ytid`, `start`/`end` (as in the CSV, e.g. "30.000") and
`start_s`/`end_s` (whole seconds): "Y{ytid}.wav", "{ytid}_{start}_{end}.wav", "{ytid}_{start_s}.flac".
Listed clips without audio are reported and left out.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from audiotransfer.data.corpora._common import AUDIO_SUFFIXES, require
from audiotransfer.errors import UserError
from audiotransfer.manifest import Manifest

log = logging.getLogger(__name__)

LAYOUT = (
    "ROOT/ontology.json, ROOT/class_labels_indices.csv, segment lists (balanced_train_segments.csv, "
    "unbalanced_train_segments.csv, eval_segments.csv) and an audio folder (ROOT/audio by default)"
)
TRAIN_LISTS = ("balanced_train_segments.csv", "unbalanced_train_segments.csv")
TEST_LISTS = ("eval_segments.csv",)


def _lists(root: Path, given: Sequence[str] | str | None, defaults: Sequence[str]) -> list[Path]:
    if given is None:
        return [root / name for name in defaults if (root / name).exists()]
    names = [given] if isinstance(given, str) else list(given)
    return [require(root / name, "segment list", LAYOUT) for name in names]


def _file_names(ytid: np.ndarray, start: np.ndarray, end: np.ndarray, pattern: str) -> list[str]:
    try:
        return [
            pattern.format(ytid=y, start=f"{s:.3f}", end=f"{e:.3f}", start_s=int(s), end_s=int(e))
            for y, s, e in zip(ytid, start, end, strict=True)
        ]
    except (KeyError, IndexError, ValueError) as exc:
        raise UserError(
            f"option 'pattern' {pattern!r} cannot be formatted ({exc})",
            fix="use the fields {ytid}, {start}, {end}, {start_s}, {end_s}",
        ) from None


def load(
    root: Path,
    audio_dir: str = "audio",
    pattern: str = "Y{ytid}.wav",
    train_lists: Sequence[str] | str | None = None,
    test_lists: Sequence[str] | str | None = None,
    ontology: str = "ontology.json",
    labels_csv: str = "class_labels_indices.csv",
) -> Manifest:
    """Multi-label manifest over the 527 trainable labels of the listed clips that exist locally."""
    from audiotransfer.manifest import from_label_lists
    from audiotransfer.ontology import Ontology, read_segments

    onto = Ontology.load(
        require(root / ontology, "ontology", LAYOUT), require(root / labels_csv, "label index", LAYOUT)
    )
    audio = require(root / audio_dir, "audio folder", LAYOUT)
    splits = {"train": _lists(root, train_lists, TRAIN_LISTS), "test": _lists(root, test_lists, TEST_LISTS)}
    if not any(splits.values()):
        raise UserError(f"{root}: no segment list found", fix=f"expected layout: {LAYOUT}")
    files = [p for p in audio.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES]
    relative = pd.Series([p.relative_to(audio).as_posix() for p in files], dtype=str)
    by_name = dict(zip(relative.str.rsplit("/", n=1).str[-1], relative, strict=True))
    by_name.update(zip(relative, relative, strict=True))
    clips, label_lists, listed = [], [], 0
    for split, paths in splits.items():
        if not paths:
            continue
        seg = read_segments(paths, onto.trainable)
        ytid = np.asarray(seg.ytid, dtype=object)
        names = _file_names(ytid, seg.start, seg.end, pattern)
        found = np.array([n in by_name for n in names], dtype=bool)
        listed += len(names)
        rows = np.flatnonzero(found)
        clips.append(
            pd.DataFrame(
                {
                    "clip_id": ytid[rows],
                    "split": split,
                    "path": [(Path(audio_dir) / by_name[names[i]]).as_posix() for i in rows],
                    "start": seg.start[rows],
                    "end": seg.end[rows],
                }
            )
        )
        labels = seg.labels[rows].tolil().rows
        label_lists += [[onto.trainable[j] for j in row] for row in labels]
    table = pd.concat(clips, ignore_index=True)
    missing = listed - len(table)
    if table.empty:
        raise UserError(
            f"{audio}: none of the {listed} listed clips has audio named like "
            f"{_file_names(np.array(['YTID']), np.zeros(1), np.full(1, 10.0), pattern)[0]!r}",
            fix="set the option 'pattern' to your download tool's naming, or 'audio_dir'",
        )
    if missing:
        log.warning("audioset: %d of %d listed clips have no audio under %s (left out)", missing, listed, audio)
    if table["clip_id"].duplicated().any():
        raise UserError(
            f"{root}: clip {table['clip_id'][table['clip_id'].duplicated()].iloc[0]!r} is in a train and a test list",
            fix="pass train and test lists that do not overlap",
        )
    return from_label_lists(
        "audioset",
        table,
        label_lists,
        labels=list(onto.trainable),
        label_names=[onto[i].name for i in onto.trainable],
        task_type="multilabel",
        meta={
            "root": str(root),
            "corpus": "audioset",
            "clip_seconds": 10.0,
            "pattern": pattern,
            "source": [str(p) for ps in splits.values() for p in ps],
            "listed_clips": listed,
            "missing_clips": missing,
        },
    )
