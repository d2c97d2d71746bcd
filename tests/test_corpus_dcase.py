"""DCASE2020 Task 1A (TAU 2020 Mobile) and DCASE2018 Task 3 (bird detection) in their official layouts."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from audiotransfer.data.corpora import describe_corpus, load_corpus
from audiotransfer.data.corpora.dcase2020_task1a import SCENES
from audiotransfer.data.features import RECIPES
from audiotransfer.data.store import extract_features
from audiotransfer.errors import UserError


def noise(path: Path, rate: int, seconds: float, subtype: str = "PCM_16", seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, 0.1 * np.random.default_rng(seed).standard_normal(round(rate * seconds)), rate, subtype=subtype)


def tau_tree(root: Path, cities: int = 3, segments: int = 4, audio: int = 0) -> pd.DataFrame:
    """TAU 2020 Mobile layout: meta.csv, evaluation_setup/fold1_*.csv; the first `audio` files written as
    44.1 kHz 24-bit WAV. Train: cities 0..n-2, evaluate: the last city (as in the official fold)."""
    rows = []
    devices = ["a", "b", "s1"]
    for scene, c, seg, dev in itertools.product(SCENES, range(cities), range(segments), devices):
        city = f"city{c}"
        name = f"audio/{scene}-{city}-{c * 10 + 1}-{seg}-{dev}.wav"
        rows.append((name, scene, f"{city}-{c * 10 + 1}", dev, "test" if c == cities - 1 else "train"))
    table = pd.DataFrame(rows, columns=["filename", "scene_label", "identifier", "source_label", "fold"])
    (root / "audio").mkdir(parents=True)
    (root / "evaluation_setup").mkdir()
    table.drop(columns="fold").to_csv(root / "meta.csv", sep="\t", index=False)
    folds = table[["filename", "scene_label"]]
    folds[table["fold"] == "train"].to_csv(root / "evaluation_setup/fold1_train.csv", sep="\t", index=False)
    folds[table["fold"] == "test"].to_csv(root / "evaluation_setup/fold1_evaluate.csv", sep="\t", index=False)
    for name in table["filename"][:audio]:
        noise(root / name, 44100, 0.3, subtype="PCM_24")
    return table


def test_tau_split_is_official_and_stratified(tmp_path: Path) -> None:
    table = tau_tree(tmp_path)
    m = load_corpus("dcase2020_task1a", tmp_path)
    clips = m.clips.set_index("path")
    assert m.task_type == "multiclass" and m.labels == SCENES and m.meta["clip_seconds"] == 10.0
    test = table.loc[table["fold"] == "test", "filename"]
    assert set(clips.index[clips["split"] == "test"]) == set(test)
    n_train = int((table["fold"] == "train").sum())  # 10 scenes x 2 cities x 4 segments x 3 devices
    assert m.split_sizes() == {"dev": round(0.1 * n_train), "test": len(test), "train": n_train - round(0.1 * n_train)}
    strata = clips[clips["split"] != "test"].groupby(["scene_label", "city", "device"])["split"]
    dev_share = strata.apply(lambda s: (s == "dev").sum())
    assert dev_share.max() - dev_share.min() <= 1  # 24 strata of 4: 0 or 1 dev clip each
    assert clips.loc["audio/bus-city0-1-2-b.wav", "clip_id"] == "bus-city0-1-2-b"
    labels = np.asarray(m.labels)[m.class_indices()]
    np.testing.assert_array_equal(labels, m.clips["scene_label"])
    again = load_corpus("dcase2020_task1a", tmp_path)
    other = load_corpus("dcase2020_task1a", tmp_path, seed=1)
    assert again.hash == m.hash and other.hash != m.hash


def test_tau_bad_inputs(tmp_path: Path) -> None:
    tau_tree(tmp_path, cities=2, segments=1)
    meta = pd.read_csv(tmp_path / "meta.csv", sep="\t")
    meta.loc[0, "scene_label"] = "beach"
    meta.to_csv(tmp_path / "meta.csv", sep="\t", index=False)
    with pytest.raises(UserError, match=r"scene_label.*beach"):
        load_corpus("dcase2020_task1a", tmp_path)
    meta.drop(columns="source_label").to_csv(tmp_path / "meta.csv", sep="\t", index=False)
    with pytest.raises(UserError, match="source_label"):
        load_corpus("dcase2020_task1a", tmp_path)
    meta.loc[0, "scene_label"] = "bus"
    meta.to_csv(tmp_path / "meta.csv", sep="\t", index=False)
    (tmp_path / "evaluation_setup/fold1_train.csv").unlink()
    with pytest.raises(UserError, match=r"fold1_train.csv: metadata file not found") as info:
        load_corpus("dcase2020_task1a", tmp_path)
    assert "evaluation_setup/fold1_train.csv" in info.value.fix


def test_tau_describe_and_extract(tmp_path: Path) -> None:
    tau_tree(tmp_path, cities=2, segments=1, audio=60)
    m = load_corpus("dcase2020_task1a", tmp_path).take(np.arange(4))
    store = extract_features(m, tmp_path / "store", RECIPES["demo"], progress=False)
    assert store.num_clips == 4 and np.all(store.lengths(np.arange(4)) == 0.3 * 16000 // 320 + 1)
    info = describe_corpus("dcase2020_task1a", tmp_path)
    assert info["clips"] == 60 and info["classes"] == 10 and info["sample_rates"] == {44100: 60}
    assert info["seconds"]["median"] == pytest.approx(0.3)


def bird_tree(root: Path, sizes: dict[str, int], audio: bool = True) -> None:
    """Three corpora folders, each `{csv}` + `wav/{itemid}.wav` (44.1 kHz), one third with birds."""
    from audiotransfer.data.corpora.dcase2018_task3 import METADATA

    for corpus, n in sizes.items():
        ids = [f"{corpus[:3]}{i}" if corpus != "ff1010bird" else str(1000 + i) for i in range(n)]
        table = pd.DataFrame({"itemid": ids, "datasetid": corpus, "hasbird": [int(i % 3 == 0) for i in range(n)]})
        (root / corpus / "wav").mkdir(parents=True)
        table.to_csv(root / corpus / METADATA[corpus], index=False)
        for i in ids[:2] if audio else []:
            noise(root / corpus / "wav" / f"{i}.wav", 44100, 0.2)


def test_birds_protocol(tmp_path: Path) -> None:
    bird_tree(tmp_path, {"ff1010bird": 30, "BirdVox-DCASE-20k": 60, "warblrb10k": 20})
    m = load_corpus("dcase2018_task3", tmp_path)
    assert m.task_type == "binary" and m.labels == ["0", "1"] and m.label_names == ["no bird", "bird"]
    assert m.split_sizes() == {"dev": 9, "test": 20, "train": 81}
    clips = m.clips
    assert set(clips.loc[clips["split"] == "test", "corpus"]) == {"warblrb10k"}
    dev = clips[clips["split"] == "dev"]
    assert dev.groupby(["corpus", "hasbird"]).size().to_dict() == {
        ("BirdVox-DCASE-20k", "0"): 4,
        ("BirdVox-DCASE-20k", "1"): 2,
        ("ff1010bird", "0"): 2,
        ("ff1010bird", "1"): 1,
    }
    assert "ff1010bird/1000" in set(clips["clip_id"]) and clips["path"].iloc[0] == "ff1010bird/wav/1000.wav"
    np.testing.assert_array_equal(np.asarray(m.labels)[m.class_indices()], clips["hasbird"])
    swapped = load_corpus("dcase2018_task3", tmp_path, train=["warblrb10k"], test="ff1010bird", dev_fraction=0.2)
    assert swapped.split_sizes() == {"dev": 4, "test": 30, "train": 16}
    with pytest.raises(UserError, match="both train and test"):
        load_corpus("dcase2018_task3", tmp_path, train=["warblrb10k"], test=["warblrb10k"])
    with pytest.raises(UserError, match="did you mean warblrb10k"):
        load_corpus("dcase2018_task3", tmp_path, test=["warblr10k"])
    store = extract_features(
        m.take(np.flatnonzero(clips["clip_id"].isin(["ff1010bird/1000", "warblrb10k/war0"]))),
        tmp_path / "store",
        RECIPES["demo"],
        progress=False,
    )
    assert store.num_clips == 2


def test_birds_bad_inputs(tmp_path: Path) -> None:
    bird_tree(tmp_path, {"ff1010bird": 3, "BirdVox-DCASE-20k": 3, "warblrb10k": 3}, audio=False)
    csv = tmp_path / "warblrb10k" / "warblrb10k_public_metadata_2018.csv"
    csv.write_text("itemid,datasetid,hasbird\nx,warblrb10k,yes\n")
    with pytest.raises(UserError, match=r"hasbird.*yes"):
        load_corpus("dcase2018_task3", tmp_path)
    (tmp_path / "warblrb10k" / "wav").rmdir()
    csv.write_text("itemid,datasetid,hasbird\nx,warblrb10k,1\n")
    with pytest.raises(UserError, match="audio folder of warblrb10k"):
        load_corpus("dcase2018_task3", tmp_path)
    csv.unlink()
    with pytest.raises(UserError, match=r"warblrb10k_public_metadata_2018.csv: metadata file not found"):
        load_corpus("dcase2018_task3", tmp_path)
