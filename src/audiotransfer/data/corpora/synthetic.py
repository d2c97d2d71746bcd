"""The synthetic world as corpora: `synthetic` (pre-training) and its three downstream tasks.

`root` is the folder written by `generate_world` / `audiotransfer synth generate`. The pre-training corpus is
read through the ontology package (`Ontology.load`, `read_segments`) exactly like AudioSet: train segments
become split "train", eval segments split "test". Task corpora read `tasks/{task}/meta.csv`. All paths are
relative to `root`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse

from audiotransfer.errors import UserError
from audiotransfer.manifest import Manifest, from_label_lists

_FIX = "generate it first: audiotransfer synth generate --out DIR (or audiotransfer.data.synthetic.generate_world)"


def _require(path: Path) -> Path:
    if not path.exists():
        raise UserError(f"{path}: not found; the folder does not hold a generated synthetic world", fix=_FIX)
    return path


def load_pretraining(root: Path) -> Manifest:
    """AudioSet-format pre-training clips (multi-label over the world's class index)."""
    from audiotransfer.ontology import Ontology, read_segments

    root = Path(root)
    onto = Ontology.load(_require(root / "ontology.json"), _require(root / "class_labels_indices.csv"))
    labels = list(onto.trainable)
    sources = [_require(root / "train_segments.csv"), _require(root / "eval_segments.csv")]
    clips, targets = [], []
    for source, split in zip(sources, ("train", "test"), strict=True):
        segments = read_segments(source, labels)
        ytid = np.asarray(segments.ytid, dtype=object).astype(str)
        clips.append(pd.DataFrame({"clip_id": ytid, "split": split, "path": [f"audio/Y{y}.wav" for y in ytid],
                                   "start": segments.start, "end": segments.end}))  # fmt: skip
        targets.append(segments.labels)
    table = pd.concat(clips, ignore_index=True)
    durations = (table["end"] - table["start"]).to_numpy()
    return Manifest(
        name="synthetic",
        clips=table,
        labels=labels,
        targets=sparse.vstack(targets, format="csr"),
        label_names=[onto.name(i) for i in labels],
        task_type="multilabel",
        meta={
            "root": str(root.resolve()),
            "corpus": "synthetic",
            "source": [str(s) for s in sources],
            "clip_seconds": float(np.median(durations)) if len(durations) else 0.0,
        },
    )


def _load_task(root: Path, task: str, corpus: str) -> Manifest:
    from audiotransfer.data.synthetic.world import CLIP_SECONDS, COMMAND_SECONDS, TASK_LABELS, TASK_NAMES

    root = Path(root)
    meta_path = _require(root / "tasks" / task / "meta.csv")
    meta = pd.read_csv(meta_path, dtype=str, keep_default_na=False)
    missing = {"clip_id", "path", "label", "split"} - set(meta.columns)
    if missing:
        raise UserError(f"{meta_path}: missing column(s) {sorted(missing)}", fix=_FIX)
    labels = TASK_LABELS[task]
    unknown = sorted(set(meta["label"]) - set(labels))
    if unknown:
        raise UserError(f"{meta_path}: field 'label' holds unknown labels {unknown[:5]}", fix=f"use {labels}")
    columns = ["clip_id", "split", "path"] + (["speaker"] if task == "commands" else [])
    return from_label_lists(
        corpus,
        meta[columns].copy(),
        [[lab] for lab in meta["label"]],
        labels=labels,
        label_names=TASK_NAMES.get(task, labels),
        task_type="binary" if task == "birds" else "multiclass",
        meta={
            "root": str(root.resolve()),
            "corpus": corpus,
            "source": [str(meta_path)],
            "clip_seconds": COMMAND_SECONDS if task == "commands" else CLIP_SECONDS,
        },
    )


def load_scenes(root: Path) -> Manifest:
    """Six acoustic scenes (multiclass), 2 s clips; splits stratified by scene."""
    return _load_task(root, "scenes", "synthetic_scenes")


def load_birds(root: Path) -> Manifest:
    """Bird activity (binary, labels "0"/"1"), 2 s clips in natural beds at low, varied SNR."""
    return _load_task(root, "birds", "synthetic_birds")


def load_commands(root: Path) -> Manifest:
    """Twelve command words (multiclass), 1 s clips; speakers disjoint across train/dev/test."""
    return _load_task(root, "commands", "synthetic_commands")
