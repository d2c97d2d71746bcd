"""Speech Commands v0.02 in its official layout: list-based splits, 35 words, the 12-class variant."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audiotransfer.data.corpora import load_corpus
from audiotransfer.data.features import RECIPES
from audiotransfer.data.store import extract_features
from audiotransfer.errors import UserError

WORDS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go", "bed", "cat", "zero"]


def speech_tree(root: Path, per_word: int = 10) -> None:
    """`{word}/{speaker}_nohash_{n}.wav` at 16 kHz 16-bit (0.05 s), lists, and two noise files."""
    rng = np.random.default_rng(0)
    valid, test = [], []
    for word in WORDS:
        (root / word).mkdir(parents=True)
        for i in range(per_word):
            name = f"{word}/spk{i // 2:02d}{word}_nohash_{i % 2}.wav"
            sf.write(root / name, 0.1 * rng.standard_normal(800), 16000, subtype="PCM_16")
            (test if i < 2 else valid if i < 4 else []).append(name)
    (root / "validation_list.txt").write_text("\n".join(valid) + "\n")
    (root / "testing_list.txt").write_text("\n".join(test) + "\n")
    (root / "_background_noise_").mkdir()
    for name in ("white_noise", "pink_noise"):
        sf.write(root / "_background_noise_" / f"{name}.wav", 0.1 * rng.standard_normal(48000), 16000)


def test_35_words(tmp_path: Path) -> None:
    speech_tree(tmp_path)
    m = load_corpus("speech_commands", tmp_path)
    assert m.labels == sorted(WORDS) and m.meta["clip_seconds"] == 1.0
    assert m.split_sizes() == {"dev": 2 * len(WORDS), "test": 2 * len(WORDS), "train": 6 * len(WORDS)}
    row = m.clips.set_index("clip_id").loc["cat/spk00cat_nohash_1"]
    assert row["split"] == "test" and row["speaker"] == "spk00cat" and row["path"] == "cat/spk00cat_nohash_1.wav"
    np.testing.assert_array_equal(np.asarray(m.labels)[m.class_indices()], m.clips["word"])


def test_12_classes_with_unknown_and_silence(tmp_path: Path) -> None:
    speech_tree(tmp_path)
    m = load_corpus("speech_commands", tmp_path, variant=12, unknown_percent=20, silence_percent=10, seed=3)
    assert m.labels[-2:] == ["_unknown_", "_silence_"] and len(m.labels) == 12
    counts = m.clips.groupby(["split", "word"]).size()
    assert counts["train", "_unknown_"] == 12 and counts["test", "_unknown_"] == 4  # 20% of 60 and 20
    assert counts["train", "_silence_"] == 6 and counts["dev", "_silence_"] == 2
    assert counts["train", "yes"] == 6
    silence = m.clips[m.clips["word"] == "_silence_"]
    assert silence["path"].str.startswith("_background_noise_/").all() and (silence["duration"] == 1.0).all()
    assert silence["offset"].between(0, 2.0).all() and silence["clip_id"].is_unique
    rows = np.r_[np.flatnonzero(m.clips["word"] == "_unknown_")[:2], np.flatnonzero(m.clips["word"] == "_silence_")[:2]]
    store = extract_features(m.take(rows), tmp_path / "store", RECIPES["panns16k"], progress=False)
    assert store.num_clips == 4
    lengths = store.lengths(store.rows(silence["clip_id"][:2]))
    assert list(lengths) == [101, 101]  # one-second windows of the three-second noise files


def test_bad_layouts(tmp_path: Path) -> None:
    speech_tree(tmp_path, per_word=4)
    with pytest.raises(UserError, match="variant"):
        load_corpus("speech_commands", tmp_path, variant="20")
    (tmp_path / "testing_list.txt").write_text("yes/ghost_nohash_0.wav\n")
    with pytest.raises(UserError, match="not in the corpus"):
        load_corpus("speech_commands", tmp_path)
    (tmp_path / "testing_list.txt").unlink()
    with pytest.raises(UserError, match="split list not found"):
        load_corpus("speech_commands", tmp_path)
    with pytest.raises(UserError, match="no word folders"):
        load_corpus("speech_commands", tmp_path / "_background_noise_")
