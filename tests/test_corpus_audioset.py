"""AudioSet: segment lists + a local audio folder with the user's file naming; missing clips reported."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audiotransfer.data.corpora import describe_corpus, load_corpus
from audiotransfer.data.features import RECIPES
from audiotransfer.data.store import extract_features
from audiotransfer.errors import UserError


def audioset_tree(root: Path, metadata: Path, pattern: str, present: int = 4) -> list[tuple[str, float, float]]:
    """Real ontology and label index, the first 6 balanced and 4 eval rows; the first `present` clips of each
    list get 44.1 kHz FLAC audio under audio/ (train ones in a sub-folder, as download tools do)."""
    root.mkdir(parents=True, exist_ok=True)
    for name in ("ontology.json", "class_labels_indices.csv"):
        shutil.copy(metadata / name, root / name)
    segments = []
    for name, n in (("balanced_train_segments.csv", 6), ("eval_segments.csv", 4)):
        lines = (metadata / name).read_text().splitlines()
        (root / name).write_text("\n".join(lines[: 3 + n]) + "\n")
        for line in lines[3 : 3 + min(n, present)]:
            ytid, start, end = (x.strip() for x in line.split(",")[:3])
            segments.append((ytid, float(start), float(end)))
            file = (
                root
                / "audio"
                / ("train" if "balanced" in name else "eval")
                / pattern.format(ytid=ytid, start=start, end=end, start_s=int(float(start)), end_s=int(float(end)))
            )
            file.parent.mkdir(parents=True, exist_ok=True)
            sf.write(file, np.zeros(4410), 44100, format="FLAC")
    return segments


@pytest.mark.parametrize("pattern", ["Y{ytid}.flac", "{ytid}_{start}_{end}.flac", "{ytid}_{start_s}.flac"])
def test_file_name_patterns(tmp_path: Path, audioset_dir: Path, pattern: str, caplog: pytest.LogCaptureFixture) -> None:
    segments = audioset_tree(tmp_path, audioset_dir, pattern)
    m = load_corpus("audioset", tmp_path, pattern=pattern)
    assert m.task_type == "multilabel" and m.num_classes == 527 and m.label_names[0] == "Speech"
    assert list(m.clips["clip_id"]) == [s[0] for s in segments]
    assert m.split_sizes() == {"test": 4, "train": 4}
    assert all((tmp_path / p).exists() for p in m.clips["path"])
    assert m.meta["missing_clips"] == 2 and m.meta["listed_clips"] == 10
    assert "2 of 10 listed clips have no audio" in caplog.text
    assert m.clips["end"].iloc[0] - m.clips["start"].iloc[0] == pytest.approx(10.0)
    assert m.targets.sum(axis=1).min() >= 1


def test_labels_follow_the_lists(tmp_path: Path, audioset_dir: Path) -> None:
    audioset_tree(tmp_path, audioset_dir, "Y{ytid}.wav")
    m = load_corpus("audioset", tmp_path)
    line = (tmp_path / "balanced_train_segments.csv").read_text().splitlines()[3]
    mids = line.split('"')[1].split(",")
    row = m.targets[0].toarray().ravel()
    assert sorted(np.asarray(m.labels)[row]) == sorted(mids)
    info = describe_corpus("audioset", tmp_path)
    assert info["sample_rates"] == {44100: 8} and info["clips"] == 8
    store = extract_features(m, tmp_path / "store", RECIPES["demo"], progress=False)
    assert store.num_clips == 8 and set(store.lengths(np.arange(8))) == {0.1 * 16000 // 320 + 1}


def test_bad_inputs(tmp_path: Path, audioset_dir: Path) -> None:
    audioset_tree(tmp_path, audioset_dir, "Y{ytid}.wav")
    with pytest.raises(UserError, match="none of the 10 listed clips"):
        load_corpus("audioset", tmp_path, pattern="{ytid}.mp3")
    with pytest.raises(UserError, match="cannot be formatted"):
        load_corpus("audioset", tmp_path, pattern="{video}.wav")
    with pytest.raises(UserError, match="audio folder not found"):
        load_corpus("audioset", tmp_path, audio_dir="clips")
    with pytest.raises(UserError, match="segment list not found"):
        load_corpus("audioset", tmp_path, train_lists=["unbalanced_train_segments.csv"])
    (tmp_path / "ontology.json").unlink()
    with pytest.raises(UserError, match="ontology not found"):
        load_corpus("audioset", tmp_path)
