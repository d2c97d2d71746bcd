"""Any folder of `class_name/*.{wav,flac,ogg,mp3}`: one class per sub-folder, seeded stratified splits that
keep each group of clips (option `group`, or ESC-50 file names) in one split (see `groups`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from audiotransfer.data.audio import AudioError, audio_info
from audiotransfer.data.corpora._common import (
    AUDIO_SUFFIXES,
    clip_ids,
    single_label_manifest,
)
from audiotransfer.data.corpora.groups import split_clips
from audiotransfer.errors import UserError
from audiotransfer.manifest import Manifest

LAYOUT = "ROOT/{class_name}/{file}.wav|.flac|.ogg|.mp3, at least one class folder with audio"


def median_seconds(root: Path, paths: pd.Series, sample: int = 200) -> float:
    """Median duration of up to `sample` of the files (headers only): the nominal clip length."""
    picked = paths.sample(min(sample, len(paths)), random_state=0) if len(paths) else paths
    seconds = []
    for rel in picked:
        try:
            frames, rate = audio_info(root / rel)
            seconds.append(frames / rate)
        except AudioError:
            continue
    return float(np.median(seconds)) if seconds else 0.0


def load(
    root: Path,
    dev_fraction: float = 0.1,
    test_fraction: float = 0.2,
    seed: int = 0,
    clip_seconds: float | None = None,
    group: str | None = None,
) -> Manifest:
    """Clips from class sub-folders of `root`; clip_seconds defaults to the median file duration; `group` is a
    regular expression whose first capture group, searched in the path relative to `root`, names the group."""
    files = sorted(p for p in root.glob("*/**/*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
    if not files:
        raise UserError(f"{root}: no audio files in class sub-folders", fix=f"expected layout: {LAYOUT}")
    rel = pd.Series([p.relative_to(root).as_posix() for p in files])
    clips = pd.DataFrame({"clip_id": clip_ids(rel), "path": rel, "label": rel.str.split("/").str[0]})
    clips = split_clips(clips, group, dev_fraction, test_fraction, seed, str(root))
    seconds = clip_seconds if clip_seconds is not None else median_seconds(root, clips["path"])
    return single_label_manifest(
        "folder",
        clips,
        "label",
        sorted(clips["label"].unique()),
        root,
        seconds,
        dev_fraction=dev_fraction,
        test_fraction=test_fraction,
        seed=seed,
    )
