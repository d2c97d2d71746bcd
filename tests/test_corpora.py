"""Corpus registry, ESC-50, class folders, CSV lists, `describe_corpus` and the data CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from audiotransfer.cli import main
from audiotransfer.data.corpora import describe_corpus, load_corpus
from audiotransfer.data.corpora._common import stratified_pick, stratified_splits
from audiotransfer.data.features import RECIPES
from audiotransfer.data.store import FeatureStore, extract_features
from audiotransfer.errors import UserError


def write(path: Path, rate: int, seconds: float, fmt: str = "WAV", subtype: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    signal = 0.1 * np.random.default_rng(len(path.name)).standard_normal(round(rate * seconds))
    sf.write(path, signal, rate, format=fmt, subtype=subtype)


def esc50_tree(root: Path, per_class: int = 5, classes: int = 4, audio: bool = False) -> None:
    """meta/esc50.csv with one clip per fold per class; 44.1 kHz WAV when `audio`."""
    rows = []
    for target in range(classes):
        for fold in range(1, per_class + 1):
            name = f"{fold}-{1000 + target}-A-{target}.wav"
            rows.append((name, fold, target, f"class{(classes - target):02d}", False, 1000 + target, "A"))
            if audio:
                write(root / "audio" / name, 44100, 0.2)
    (root / "meta").mkdir(parents=True)
    (root / "audio").mkdir(exist_ok=True)
    pd.DataFrame(rows, columns=["filename", "fold", "target", "category", "esc10", "src_file", "take"]).to_csv(
        root / "meta" / "esc50.csv", index=False
    )


def test_registry_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="did you mean esc50"):
        load_corpus("esc5O", tmp_path)
    with pytest.raises(UserError, match="does not exist"):
        load_corpus("esc50", tmp_path / "nowhere")
    with pytest.raises(UserError, match="no option") as info:
        load_corpus("esc50", tmp_path, testfold=2)
    assert "test_fold, dev_fold" in info.value.fix


def test_stratified_pick_is_exact_and_seeded() -> None:
    keys = ["a"] * 7 + ["b"] * 13 + ["c"] * 30
    mask = stratified_pick(keys, 0.1, seed=0)
    assert mask.sum() == 5
    per = pd.Series(mask).groupby(pd.Series(keys)).sum()
    assert per["c"] == 3 and per["a"] + per["b"] == 2
    assert np.array_equal(mask, stratified_pick(keys, 0.1, seed=0))
    assert not np.array_equal(stratified_pick(keys, 0.5, seed=0), stratified_pick(keys, 0.5, seed=1))
    split = stratified_splits(keys, 0.1, 0.2, seed=0)
    assert (split == "test").sum() == 10 and (split == "dev").sum() == 5
    with pytest.raises(UserError, match="sum < 1"):
        stratified_splits(keys, 0.5, 0.5, seed=0)


def test_esc50_folds(tmp_path: Path) -> None:
    esc50_tree(tmp_path)
    m = load_corpus("esc50", tmp_path)
    assert m.labels == ["class04", "class03", "class02", "class01"]  # ordered by target
    assert m.split_sizes() == {"dev": 4, "test": 4, "train": 12}
    assert set(m.clips.loc[m.clips["split"] == "test", "fold"]) == {"5"}
    assert set(m.clips.loc[m.clips["split"] == "dev", "fold"]) == {"4"}
    m1 = load_corpus("esc50", tmp_path, test_fold=1)
    assert set(m1.clips.loc[m1.clips["split"] == "dev", "fold"]) == {"5"}
    assert m.clips["path"].iloc[0] == "audio/1-1000-A-0.wav" and m.meta["clip_seconds"] == 5.0
    with pytest.raises(UserError, match="two different folds"):
        load_corpus("esc50", tmp_path, test_fold=6)
    table = pd.read_csv(tmp_path / "meta" / "esc50.csv")
    table.loc[0, "fold"] = 9
    table.to_csv(tmp_path / "meta" / "esc50.csv", index=False)
    with pytest.raises(UserError, match="'fold' has unknown value"):
        load_corpus("esc50", tmp_path)


def test_folder_of_ogg_and_flac(tmp_path: Path) -> None:
    for label, fmt in (("dog", "OGG"), ("rain", "FLAC")):
        for i in range(10):
            write(tmp_path / label / f"{i}.{fmt.lower()}", 22050, 0.2 + 0.01 * i, fmt=fmt)
    (tmp_path / "notes.txt").write_text("not audio")
    m = load_corpus("folder", tmp_path, seed=1)
    assert m.labels == ["dog", "rain"] and m.num_clips == 20
    assert m.clips.groupby(["split", "label"]).size().to_dict() == {
        ("dev", "dog"): 1,
        ("dev", "rain"): 1,
        ("test", "dog"): 2,
        ("test", "rain"): 2,
        ("train", "dog"): 7,
        ("train", "rain"): 7,
    }
    assert m.meta["clip_seconds"] == pytest.approx(0.245, abs=0.006)
    assert "dog/3" in set(m.clips["clip_id"])
    assert extract_features(m, tmp_path / "store", RECIPES["demo"], progress=False).num_clips == 20
    with pytest.raises(UserError, match="no audio files in class sub-folders"):
        load_corpus("folder", tmp_path / "dog")


def test_csv_lists(tmp_path: Path) -> None:
    for i in range(6):
        write(tmp_path / "clips" / f"{i}.wav", 16000, 0.5)
    rows = [f"clips/{i}.wav,{'ab'[i % 2]},{['train', 'dev', 'test'][i % 3]}" for i in range(6)]
    (tmp_path / "labels.csv").write_text("path,label,split\n" + "\n".join(rows) + "\n")
    m = load_corpus("csv", tmp_path)
    assert m.split_sizes() == {"dev": 2, "test": 2, "train": 2} and m.labels == ["a", "b"]
    assert m.meta["clip_seconds"] == pytest.approx(0.5)
    store = extract_features(m, tmp_path / "store", RECIPES["demo"], progress=False)
    np.testing.assert_array_equal(store.rows(["clips/5"]), [5])
    no_split = tmp_path / "plain.csv"
    no_split.write_text("path,label\n" + "\n".join(r.rsplit(",", 1)[0] for r in rows) + "\n")
    m2 = load_corpus("csv", no_split, dev_fraction=1 / 3, test_fraction=1 / 3)
    assert m2.split_sizes() == {"dev": 2, "test": 2, "train": 2}
    with pytest.raises(UserError, match="'label' has unknown value"):
        load_corpus("csv", no_split, labels=["a"])
    bad = tmp_path / "bad.csv"
    bad.write_text("path,label,split\nclips/0.wav,a,validation\n")
    with pytest.raises(UserError, match="'split' has unknown value"):
        load_corpus("csv", bad)
    bad.write_text("file,class\nclips/0.wav,a\n")
    with pytest.raises(UserError, match="missing field"):
        load_corpus("csv", bad)
    bad.write_text(f"path,label\n{tmp_path}/clips/0.wav,a\n./clips/0.wav,b\n")
    with pytest.raises(UserError, match="lists one file twice"):  # an absolute and a relative name of one file
        load_corpus("csv", bad)


def test_describe(tmp_path: Path) -> None:
    esc50_tree(tmp_path, audio=True)
    (tmp_path / "audio" / "1-1000-A-0.wav").write_bytes(b"broken")
    info = describe_corpus("esc50", tmp_path)
    assert info["clips"] == 20 and info["classes"] == 4 and info["splits"]["test"] == 4
    assert info["sample_rates"] == {44100: 19} and info["audio_unreadable"] == 1
    assert info["seconds"]["max"] == pytest.approx(0.2) and info["clip_seconds"] == 5.0
    sampled = describe_corpus("esc50", tmp_path, max_files=5)
    assert sampled["audio_checked"] == 5


def test_cli_describe_and_extract(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    esc50_tree(tmp_path / "esc", audio=True)
    assert main(["data", "describe", "esc50", "--root", str(tmp_path / "esc"), "-o", "test_fold=2"]) == 0
    out = capsys.readouterr().out
    assert "sample_rates: {44100: 20}" in out and "class04" in out
    store = tmp_path / "store"
    args = ["features", "extract", "esc50", "--root", str(tmp_path / "esc"), "--store", str(store), "--recipe", "demo"]
    assert main(args) == 0
    assert FeatureStore(store).num_clips == 20 and "20 clips" in capsys.readouterr().out
    (tmp_path / "esc" / "audio" / "1-1000-A-0.wav").write_bytes(b"")
    assert main([*args[:-1], "panns16k", "--store", str(tmp_path / "s2"), "--on-error", "stop"]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "1-1000-A-0.wav: unreadable" in err and "Traceback" not in err
    assert main(["data", "describe", "esc50", "--root", str(tmp_path)]) == 2
    assert "expected layout" in capsys.readouterr().err
    assert main(["data", "describe", "esc50", "--root", str(tmp_path), "-o", "oops"]) == 2
