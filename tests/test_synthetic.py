"""The synthetic world: ontology fragment, labels, balance, splits, determinism, caching, corpora, subsets."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from audiotransfer.data.corpora import load_corpus
from audiotransfer.data.synthetic import CLASSES, ROOTS, fragment_path, generate_world, world
from audiotransfer.data.synthetic.generate import remove_audio
from audiotransfer.errors import UserError
from audiotransfer.ontology import Ontology, build_subset, load_subset_file, read_segments

REPO = Path(__file__).resolve().parents[1]
SMALL = {"num_pretrain": 60, "num_eval": 20, "num_scenes": 30, "num_birds": 24, "num_commands": 60,
         "num_speakers": 20}  # fmt: skip


@pytest.fixture(scope="module")
def small_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_world(tmp_path_factory.mktemp("world") / "w", seed=3, jobs=1, progress=False, **SMALL)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------------------- ontology
def test_fragment_agrees_with_real_ontology(audioset_dir: Path) -> None:
    real = {c["id"]: c for c in json.loads((audioset_dir / "ontology.json").read_text())}
    trainable = set(pd.read_csv(audioset_dir / "class_labels_indices.csv")["mid"])
    fragment = json.loads(fragment_path().read_text())
    ids = {c["id"] for c in fragment}
    for c in fragment:
        r = real[c["id"]]
        assert (c["name"], c["restrictions"], c["description"]) == (r["name"], r["restrictions"], r["description"])
        assert set(c["child_ids"]) <= set(r["child_ids"])
        assert set(c["child_ids"]) == set(r["child_ids"]) & ids  # every real link inside the fragment is kept
    parents = {k for r in real.values() if r["id"] not in ids for k in r["child_ids"]}
    assert not parents & ids, "the fragment must hold every ancestor of its classes"
    for cls in CLASSES:
        assert real[cls.id]["name"] == cls.name and cls.id in trainable


def test_class_table_spans_the_ontology() -> None:
    onto = Ontology.load(fragment_path())
    assert len({c.id for c in CLASSES}) == len(CLASSES) >= 30
    assert sum(not onto.children(c.id) for c in CLASSES) >= 30  # leaves of the fragment
    names = {r: onto.name(r) for r in onto.roots}
    for cls in CLASSES:
        assert cls.root in {names[a] for a in onto.ancestors(cls.id) if a in names}
    assert {c.root for c in CLASSES} == set(ROOTS) and len(ROOTS) >= 5


# ---------------------------------------------------------------------------------------- labels
@pytest.mark.parametrize("index", [0, 7, 19, 50, 51, 97, 133])
def test_labels_are_exactly_the_events_in_the_clip(index: int) -> None:
    labels = world.pretrain_labels(0, "train", index)
    clip = world.render_pretrain(0, "train", index)
    assert 1 <= len(labels) <= 3 and len(set(labels)) == len(labels)
    assert list(clip.stems) == labels
    np.testing.assert_allclose(clip.audio, clip.floor + sum(clip.stems.values()), atol=1e-12)
    floor = world.loudness_db(clip.floor)
    for stem in clip.stems.values():
        assert world.loudness_db(stem) > floor + 10  # every labelled event is clearly audible
    assert np.max(np.abs(clip.audio)) <= 0.95 + 1e-9


def test_class_balance() -> None:
    n = len(CLASSES) * 20
    first = Counter(world.pretrain_labels(0, "train", i)[0] for i in range(n))
    assert set(first.values()) == {20}
    every = Counter(lab for i in range(n) for lab in world.pretrain_labels(0, "train", i))
    mean = np.mean(list(every.values()))
    assert len(every) == len(CLASSES) and 0.6 * mean < min(every.values()) and max(every.values()) < 1.5 * mean


def test_tasks_are_balanced_and_speakers_disjoint() -> None:
    specs = pd.DataFrame([world.task_spec("commands", 0, i, 60) for i in range(720)])
    counts = specs.groupby(["split", "label"]).size().unstack()
    assert (counts.nunique(axis=1) == 1).all()  # each split holds every word equally often
    assert counts.loc["train"].iloc[0] == 42 and counts.loc["dev"].iloc[0] == counts.loc["test"].iloc[0] == 9
    speakers = {s: set(g["speaker"]) for s, g in specs.groupby("split")}
    assert not speakers["train"] & speakers["dev"] and not speakers["train"] & speakers["test"]
    assert not speakers["dev"] & speakers["test"] and len(speakers["train"]) > 30
    scenes = pd.DataFrame([world.task_spec("scenes", 0, i, 60) for i in range(120)])
    assert set(scenes.groupby("label").size()) == {20} and set(scenes["split"]) == {"train", "dev", "test"}


# ------------------------------------------------------------------------------------ on disk
def test_generation_is_deterministic_cached_and_resumable(small_world: Path, tmp_path: Path) -> None:
    twin = generate_world(tmp_path / "twin", seed=3, jobs=2, progress=False, **SMALL)
    assert _files(small_world) == _files(twin)  # bit-identical, whatever the number of workers
    other = generate_world(tmp_path / "other", seed=4, jobs=1, progress=False, **SMALL)
    assert _files(other)["audio/Ysyntr000000.wav"] != _files(twin)["audio/Ysyntr000000.wav"]

    # interrupted run: a clip missing, sidecar not complete -> only that clip is made again, identically
    victim = twin / "tasks" / "commands" / "audio" / "commands_00005.wav"
    victim.unlink()
    info = json.loads((twin / "world.json").read_text())
    (twin / "world.json").write_text(json.dumps({**info, "complete": False}))
    kept = (twin / "audio" / "Ysyntr000001.wav").stat().st_mtime_ns
    generate_world(twin, seed=3, jobs=1, progress=False, **SMALL)
    assert _files(twin) == _files(small_world)
    assert (twin / "audio" / "Ysyntr000001.wav").stat().st_mtime_ns == kept

    with pytest.raises(UserError, match="differs from the requested world"):
        generate_world(twin, seed=5, jobs=1, progress=False, **SMALL)


def test_removed_audio_is_rendered_again_identically(small_world: Path, tmp_path: Path) -> None:
    lean = generate_world(tmp_path / "lean", seed=3, jobs=1, progress=False, **SMALL)
    wavs = sorted(p for p in _files(lean) if p.endswith(".wav"))
    size = sum((lean / p).stat().st_size for p in wavs)
    assert remove_audio(lean) == size and not list(lean.rglob("*.wav"))
    assert json.loads((lean / "world.json").read_text())["audio"] == "removed"
    generate_world(lean, seed=3, jobs=1, progress=False, audio=False, **SMALL)  # features extracted: no audio
    assert not list(lean.rglob("*.wav"))
    generate_world(lean, seed=3, jobs=1, progress=False, **SMALL)  # asked for: rendered from the seed
    assert _files(lean) == _files(small_world)
    with pytest.raises(UserError, match="not complete"):
        remove_audio(tmp_path / "nothing")


def test_segment_lists_are_audioset_format(small_world: Path) -> None:
    lines = (small_world / "train_segments.csv").read_text().splitlines()
    assert [line.startswith("#") for line in lines[:4]] == [True, True, True, False]
    assert len(lines) == 3 + SMALL["num_pretrain"]
    ytid, start, end, labels = lines[3].split(", ", 3)
    assert (ytid, start, end) == ("syntr000000", "0.000", "2.000")
    assert labels.strip('"').split(",") == world.pretrain_labels(3, "train", 0)
    assert len(ytid) == 11 and (small_world / "audio" / f"Y{ytid}.wav").exists()


def test_corpora_load_with_splits(small_world: Path) -> None:
    import soundfile as sf

    pre = load_corpus("synthetic", small_world)
    assert pre.task_type == "multilabel" and pre.num_classes == len(CLASSES)
    assert pre.split_sizes() == {"test": SMALL["num_eval"], "train": SMALL["num_pretrain"]}
    assert pre.meta["clip_seconds"] == 2.0 and pre.meta["corpus"] == "synthetic"
    assert pre.label_names[0] == CLASSES[0].name
    expected = {"synthetic_scenes": (6, "multiclass", 2.0), "synthetic_birds": (2, "binary", 2.0),
                "synthetic_commands": (12, "multiclass", 1.0)}  # fmt: skip
    for name, (classes, task_type, seconds) in expected.items():
        m = load_corpus(name, small_world)
        assert (m.num_classes, m.task_type, m.meta["clip_seconds"]) == (classes, task_type, seconds)
        assert set(m.clips["split"]) == {"train", "dev", "test"}
        assert len(m.class_indices()) == m.num_clips
        info = sf.info(Path(m.meta["root"]) / m.clips["path"].iloc[0])
        assert (info.samplerate, info.subtype, info.duration) == (16000, "PCM_16", seconds)
    assert load_corpus("synthetic_birds", small_world).labels == ["0", "1"]
    assert "speaker" in load_corpus("synthetic_commands", small_world).clips.columns
    with pytest.raises(UserError, match="synth generate"):
        load_corpus("synthetic_scenes", small_world / "audio")


def test_paper_subsets_build_on_the_fragment(small_world: Path) -> None:
    onto = Ontology.load(small_world / "ontology.json", small_world / "class_labels_indices.csv")
    train = read_segments(small_world / "train_segments.csv", onto.trainable)
    test = read_segments(small_world / "eval_segments.csv", onto.trainable)
    specs = load_subset_file(REPO / "examples" / "subsets" / "paper.yaml")
    animal = build_subset("animal", specs["animal"], train, onto, test)
    assert set(animal.labels) == {c.id for c in CLASSES if c.root == "Animal"}
    assert np.all(np.diff(animal.targets.indptr) >= 1)
    speech = build_subset("speech", specs["speech"], train, onto, test)
    # male, female, child speech, babbling, speech synthesizer; Whispering is a sibling of Speech, not below it
    assert set(speech.labels) == {"/m/05zppz", "/m/02zsn", "/m/0ytgt", "/m/0261r1", "/m/0brhx"}
    for name, spec in specs.items():
        if (spec.fraction or 1.0) >= 0.1:  # 1-3% of 60 clips may well be empty
            assert build_subset(name, spec, train, onto, test).num_clips > 0


def test_world_extracts_into_the_feature_store(small_world: Path, tmp_path: Path) -> None:
    from audiotransfer.data.features import RECIPES
    from audiotransfer.data.store import extract_features

    manifest = load_corpus("synthetic_commands", small_world)
    store = extract_features(manifest, tmp_path / "store", RECIPES["panns16k"], jobs=1, progress=False)
    assert store.num_clips == manifest.num_clips
    assert set(store.lengths(store.rows(manifest.clips["clip_id"]))) == {101}
