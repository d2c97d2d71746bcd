"""FSD50K: 51,197 Freesound clips (0.3-30 s) labelled with 200 AudioSet ontology classes, CC licences.

Official layout (Zenodo archives, unpacked side by side under ROOT):
  FSD50K.ground_truth/dev.csv         fname,labels,mids,split   (split: train | val)
  FSD50K.ground_truth/eval.csv        fname,labels,mids
  FSD50K.ground_truth/vocabulary.csv  index,label,mid           (no header)
  FSD50K.dev_audio/{fname}.wav, FSD50K.eval_audio/{fname}.wav
`labels` and `mids` are quoted comma-separated lists of equal length. Splits: train -> "train",
val -> "dev", eval -> "test". The label index is the vocabulary's mids in vocabulary order; every mid
of a clip must be in it (and, when an ontology is given, every vocabulary mid in the ontology), and
every listed clip must have its audio: anything else is a UserError naming the file.

As a pre-training corpus, `segment_lists` gives the dev and eval clips as AudioSet-style segment lists
over the vocabulary, so subset specs (`categories`, `fraction`, budgets) apply unchanged.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
from scipy import sparse

from audiotransfer.data.corpora._common import read_table, require
from audiotransfer.errors import UserError
from audiotransfer.manifest import Manifest, from_label_lists

if TYPE_CHECKING:
    from audiotransfer.ontology.segments import SegmentList

GROUND_TRUTH = "FSD50K.ground_truth"
AUDIO = {"dev": "FSD50K.dev_audio", "eval": "FSD50K.eval_audio"}
LAYOUT = (
    "ROOT/FSD50K.ground_truth/{dev,eval,vocabulary}.csv, ROOT/FSD50K.dev_audio/{fname}.wav, "
    "ROOT/FSD50K.eval_audio/{fname}.wav (the official archives unpacked)"
)
SPLIT_NAMES = {"train": "train", "val": "dev"}


def read_vocabulary(root: Path) -> pd.DataFrame:
    """vocabulary.csv as columns index, label, mid (headerless in the official file)."""
    path = root / GROUND_TRUTH / "vocabulary.csv"
    table = read_table(path, [], LAYOUT, header=None)
    if table.shape[1] != 3:
        raise UserError(
            f"{path}: {table.shape[1]} columns, expected 3 (index,label,mid; no header)",
            fix=f"expected layout: {LAYOUT}",
        )
    table.columns = ["index", "label", "mid"]
    if table["mid"].duplicated().any():
        raise UserError(
            f"{path}: mid {table['mid'][table['mid'].duplicated()].iloc[0]!r} is listed twice",
            fix="use the official vocabulary.csv",
        )
    return table


def _clips(root: Path, vocabulary: pd.DataFrame) -> tuple[pd.DataFrame, list[list[str]]]:
    """All listed clips (clip_id, split, path) and their mids; checks mids and audio files."""
    known = set(vocabulary["mid"])
    frames, mids = [], []
    for part in ("dev", "eval"):
        path = root / GROUND_TRUTH / f"{part}.csv"
        table = read_table(path, ["fname", "labels", "mids"] + (["split"] if part == "dev" else []), LAYOUT)
        lists = table["mids"].str.split(",").tolist()
        names = table["labels"].str.split(",").tolist()
        for line, (row, labels) in enumerate(zip(lists, names, strict=True), start=2):
            unknown = [m for m in row if m not in known]
            if unknown:
                raise UserError(
                    f"{path}: line {line}: field 'mids' has {unknown[0]!r}, not in vocabulary.csv",
                    fix="use the ground truth and vocabulary of the same FSD50K release",
                )
            if len(labels) != len(row):
                raise UserError(
                    f"{path}: line {line}: fields 'labels' and 'mids' list {len(labels)} and {len(row)} entries",
                    fix="each label needs its mid, in the same order",
                )
        if part == "dev":
            bad = sorted(set(table["split"]) - set(SPLIT_NAMES))
            if bad:
                raise UserError(
                    f"{path}: field 'split' has unknown value(s) {bad[:5]}", fix="allowed values: train, val"
                )
            split = table["split"].map(SPLIT_NAMES)
        else:
            split = "test"
        frames.append(
            pd.DataFrame(
                {"clip_id": table["fname"], "split": split, "path": AUDIO[part] + "/" + table["fname"] + ".wav"}
            )
        )
        mids += lists
    clips = pd.concat(frames, ignore_index=True)
    if clips["clip_id"].duplicated().any():
        raise UserError(
            f"{root / GROUND_TRUTH}: fname {clips['clip_id'][clips['clip_id'].duplicated()].iloc[0]!r} "
            "is listed twice (dev and eval overlap?)",
            fix="use the official ground truth files",
        )
    _check_audio(root, clips["path"])
    return clips, mids


def _check_audio(root: Path, paths: pd.Series) -> None:
    for part in AUDIO.values():
        require(root / part, "audio folder", LAYOUT)
    present = {p.relative_to(root).as_posix() for part in AUDIO.values() for p in (root / part).glob("*.wav")}
    missing = paths[~paths.isin(present)]
    if len(missing):
        raise UserError(
            f"{root}: {len(missing)} of {len(paths)} listed clips have no audio (e.g. {', '.join(missing.iloc[:3])})",
            fix="unpack every FSD50K.dev_audio / FSD50K.eval_audio archive part under ROOT",
        )


def _check_ontology(root: Path, vocabulary: pd.DataFrame, ontology: Path | None) -> dict[str, str]:
    """Class names by mid: the ontology's when given (every vocabulary mid must be in it), else FSD50K's."""
    if ontology is None:
        return dict(zip(vocabulary["mid"], vocabulary["label"].str.replace("_", " "), strict=True))
    from audiotransfer.ontology import Ontology

    onto = Ontology.load(require(Path(ontology), "ontology", "the AudioSet ontology.json"))
    unknown = [m for m in vocabulary["mid"] if m not in onto]
    if unknown:
        raise UserError(
            f"{root / GROUND_TRUTH / 'vocabulary.csv'}: mid(s) {unknown[:3]} are not in {ontology}",
            fix="pass the AudioSet ontology.json that FSD50K's vocabulary comes from",
        )
    return {m: onto.name(m) for m in vocabulary["mid"]}


def load(root: Path, ontology: str | None = None, clip_seconds: float = 10.0) -> Manifest:
    """Multi-label manifest over the 200 vocabulary classes; `clip_seconds` is the training crop length
    (clips vary from 0.3 to 30 s: shorter ones are padded, evaluation scores whole clips)."""
    vocabulary = read_vocabulary(root)
    names = _check_ontology(root, vocabulary, Path(ontology) if ontology else None)
    clips, mids = _clips(root, vocabulary)
    labels = list(vocabulary["mid"])
    return from_label_lists(
        "fsd50k",
        clips,
        mids,
        labels=labels,
        label_names=[names[m] for m in labels],
        task_type="multilabel",
        meta={
            "root": str(root),
            "corpus": "fsd50k",
            "clip_seconds": clip_seconds,
            "source": [str(root / GROUND_TRUTH / f) for f in ("dev.csv", "eval.csv", "vocabulary.csv")],
        },
    )


def segment_lists(root: Path, ontology: Path, clip_seconds: float = 10.0) -> tuple[SegmentList, SegmentList]:
    """(dev, eval) clips as `SegmentList`s over the vocabulary mids, for ontology subset specs.

    Start is 0 and end the nominal crop length (FSD50K clips are whole Freesound sounds, not windows).
    """
    from audiotransfer.ontology.segments import SegmentList

    manifest = load(root, ontology=str(ontology), clip_seconds=clip_seconds)
    parts = []
    for is_eval in (False, True):
        rows = np.flatnonzero((manifest.clips["split"] == "test").to_numpy() == is_eval)
        parts.append(
            SegmentList(
                ytid=pa.array(manifest.clips["clip_id"].iloc[rows].tolist(), type=pa.string()),
                start=np.zeros(len(rows)),
                end=np.full(len(rows), float(clip_seconds)),
                labels=sparse.csr_matrix(manifest.targets[rows], dtype=bool),
                label_ids=list(manifest.labels),
                sources=[str(root / GROUND_TRUTH / ("eval.csv" if is_eval else "dev.csv"))],
            )
        )
    return parts[0], parts[1]
