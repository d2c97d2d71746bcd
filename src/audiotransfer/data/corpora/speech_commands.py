"""Google Speech Commands v0.02: official validation/testing lists, 35 words or the 12-class variant.

Layout: `{word}/{speaker}_nohash_{n}.wav`, `validation_list.txt`, `testing_list.txt` (train = the rest),
`_background_noise_/` (not a class). The 12-class variant keeps 10 words, maps the rest to `_unknown_`
(sampled to `unknown_percent` of each split's word clips) and adds `_silence_` clips: one-second windows
at seeded random offsets in the background-noise files (`silence_percent` of each split), as in the
TensorFlow recipe; the manifest gives them `offset` and `duration` columns, which extraction honours.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from audiotransfer.data.audio import AudioError, audio_info
from audiotransfer.data.corpora._common import require, single_label_manifest
from audiotransfer.errors import UserError
from audiotransfer.manifest import Manifest

LAYOUT = (
    "ROOT/{word}/{speaker}_nohash_{n}.wav, ROOT/validation_list.txt, ROOT/testing_list.txt, "
    "ROOT/_background_noise_/*.wav"
)
TEN_WORDS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]
UNKNOWN, SILENCE = "_unknown_", "_silence_"


def _read_list(path: Path, known: set[str]) -> set[str]:
    require(path, "split list", LAYOUT)
    entries = {line.strip() for line in path.read_text().splitlines() if line.strip()}
    unknown = sorted(e for e in entries if e not in known)
    if unknown:
        raise UserError(
            f"{path}: {len(unknown)} listed files are not in the corpus (e.g. {unknown[0]})",
            fix="use the lists that came with this release, next to its word folders",
        )
    return entries


def _silence(root: Path, counts: dict[str, int], rng: np.random.Generator) -> pd.DataFrame:
    """One-second windows of the background-noise files at random offsets, `counts[split]` per split."""
    noise = []
    for path in sorted((root / "_background_noise_").glob("*.wav")):
        try:
            frames, rate = audio_info(path)
        except AudioError:
            continue
        if frames >= rate:
            noise.append((path.relative_to(root).as_posix(), frames / rate))
    if not noise:
        raise UserError(
            f"{root / '_background_noise_'}: no noise file of at least 1 s for the _silence_ class",
            fix=f"expected layout: {LAYOUT}",
        )
    rows = []
    for split, count in counts.items():
        for i in range(count):
            rel, seconds = noise[rng.integers(len(noise))]
            offset = round(float(rng.uniform(0, seconds - 1.0)), 3)
            rows.append((f"{SILENCE}/{split}/{i:05d}", split, rel, SILENCE, offset, 1.0))
    return pd.DataFrame(rows, columns=["clip_id", "split", "path", "word", "offset", "duration"])


def load(
    root: Path, variant: str = "35", unknown_percent: float = 10.0, silence_percent: float = 10.0, seed: int = 0
) -> Manifest:
    """Speech Commands under `root`: 35 words, or (variant "12") 10 words + _unknown_ + _silence_."""
    variant = str(variant)  # a YAML or -o value may be the number 12
    if variant not in ("35", "12"):
        raise UserError(f"option 'variant' is {variant!r}", fix="use '35' (all words) or '12'")
    files = sorted(p.relative_to(root).as_posix() for p in root.glob("*/*.wav") if not p.parent.name.startswith("_"))
    if not files:
        raise UserError(f"{root}: no word folders with .wav files", fix=f"expected layout: {LAYOUT}")
    known = set(files)
    valid = _read_list(root / "validation_list.txt", known)
    test = _read_list(root / "testing_list.txt", known)
    clips = pd.DataFrame({"path": files})
    clips["clip_id"] = clips["path"].str.removesuffix(".wav")
    clips["word"] = clips["path"].str.split("/").str[0]
    clips["speaker"] = clips["path"].str.split("/").str[1].str.split("_nohash_").str[0]
    clips["split"] = np.where(clips["path"].isin(test), "test", np.where(clips["path"].isin(valid), "dev", "train"))
    words = sorted(clips["word"].unique())
    if variant == "35":
        return single_label_manifest("speech_commands", clips, "word", words, root, 1.0, variant=variant)
    rng = np.random.default_rng(seed)
    target = clips["word"].isin(TEN_WORDS)
    keep, counts = [clips[target]], {}
    for split in ("train", "dev", "test"):
        size = int((target & (clips["split"] == split)).sum())
        others = clips[~target & (clips["split"] == split)]
        n_unknown = min(len(others), int(np.ceil(size * unknown_percent / 100)))
        keep.append(others.iloc[np.sort(rng.choice(len(others), n_unknown, replace=False))].assign(word=UNKNOWN))
        counts[split] = int(np.ceil(size * silence_percent / 100))
    clips = pd.concat([*keep, _silence(root, counts, rng)], ignore_index=True)
    return single_label_manifest(
        "speech_commands", clips, "word", [*TEN_WORDS, UNKNOWN, SILENCE], root, 1.0, variant=variant, seed=seed
    )
