"""Subset specs and building: label sets, levels, class selection, fractions, budgets, errors, hashes."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from audiotransfer.errors import UserError
from audiotransfer.manifest import Manifest
from audiotransfer.ontology import (
    Ontology,
    SegmentList,
    SubsetSpec,
    build_subset,
    build_subsets,
    load_subset_file,
    read_segments,
)

REPO = Path(__file__).resolve().parents[1]
HEADER = "# a\n# b\n# YTID, start_seconds, end_seconds, positive_labels\n"


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def real(audioset_dir: Path) -> tuple[Ontology, SegmentList, SegmentList]:
    onto = Ontology.load(audioset_dir / "ontology.json", audioset_dir / "class_labels_indices.csv")
    train = read_segments(audioset_dir / "balanced_train_segments.csv", onto.trainable)
    test = read_segments(audioset_dir / "eval_segments.csv", onto.trainable)
    return onto, train, test


@pytest.fixture
def fragment(tmp_path: Path) -> tuple[Ontology, SegmentList]:
    """A small ontology (root > Alpha, Beta; 'Shared child' under both; Other > Other one) and six clips."""
    classes = [
        ("/x/root", "Things", ["/x/a", "/x/b"], ["abstract"]),
        ("/x/a", "Alpha", ["/x/a1", "/x/shared"], []),
        ("/x/b", "Beta", ["/x/b1", "/x/shared"], []),
        ("/x/a1", "Alpha one", [], []),
        ("/x/b1", "Beta one", [], []),
        ("/x/shared", "Shared child", [], []),
        ("/x/other", "Other", ["/x/o1"], ["abstract"]),
        ("/x/o1", "Other one", [], []),
    ]
    path = tmp_path / "ontology.json"
    path.write_text(json.dumps([{"id": i, "name": n, "child_ids": c, "restrictions": r} for i, n, c, r in classes]))
    onto = Ontology.load(path)
    rows = {
        "c0": "/x/a1",
        "c1": "/x/shared",
        "c2": "/x/a1,/x/shared",
        "c3": "/x/b1",
        "c4": "/x/o1",
        "c5": "/x/o1,/x/b",
    }
    segments = tmp_path / "segments.csv"
    segments.write_text(HEADER + "".join(f'{k}, 0.000, 10.000, "{v}"\n' for k, v in rows.items()))
    return onto, read_segments(segments, onto.trainable)


def targets(manifest: Manifest) -> dict[str, list[str]]:
    """clip id -> its label ids."""
    dense = manifest.targets.toarray()
    return {
        cid: [lab for lab, on in zip(manifest.labels, row, strict=True) if on]
        for cid, row in zip(manifest.clips["clip_id"], dense, strict=True)
    }


def train_ids(manifest: Manifest) -> set[str]:
    return set(manifest.split("train").clips["clip_id"])


# ------------------------------------------------------------- label sets
def test_categories_with_multi_parent_descendants(fragment: tuple[Ontology, SegmentList]) -> None:
    onto, segments = fragment
    manifest = build_subset("beta", SubsetSpec(categories=["beta"]), segments, onto)
    assert manifest.labels == ["/x/b", "/x/b1", "/x/shared"]
    assert manifest.label_names == ["Beta", "Beta one", "Shared child"]
    assert targets(manifest) == {"c1": ["/x/shared"], "c2": ["/x/shared"], "c3": ["/x/b1"], "c5": ["/x/b"]}
    assert set(manifest.clips["split"]) == {"train"}
    excluded = build_subset("x", SubsetSpec(categories=["Things"], exclude=["Beta"]), segments, onto)
    assert excluded.labels == ["/x/a", "/x/a1"] and sorted(targets(excluded)) == ["c0", "c2"]


def test_level_collapses_to_ancestors_in_a_dag(fragment: tuple[Ontology, SegmentList]) -> None:
    onto, segments = fragment
    level1 = build_subset("l1", SubsetSpec(level=1), segments, onto)
    assert level1.labels == ["/x/a", "/x/b", "/x/o1"]
    got = targets(level1)
    assert got["c1"] == ["/x/a", "/x/b"]  # the shared child maps to both parents
    assert got["c2"] == ["/x/a", "/x/b"] and got["c0"] == ["/x/a"] and got["c5"] == ["/x/b", "/x/o1"]
    level0 = build_subset("l0", SubsetSpec(level=0), segments, onto)
    assert level0.labels == ["/x/root", "/x/other"]
    assert targets(level0)["c5"] == ["/x/root", "/x/other"]


def test_real_paper_subsets_match_the_ontology(real: tuple[Ontology, SegmentList, SegmentList]) -> None:
    onto, train, test = real
    speech = build_subset("speech", SubsetSpec(categories=["Speech"]), train, onto, test)
    assert speech.num_classes == 8 and speech.labels[0] == "/m/09x0r"
    assert np.diff(speech.targets.indptr).min() >= 1  # every clip keeps a label of the set
    assert speech.split_sizes() == {"test": 5422, "train": 5842}
    assert speech.meta["clip_seconds"] == 10.0 and speech.meta["spec"]["categories"] == ["Speech"]
    animal = build_subset("animal", SubsetSpec(categories=["Animal"]), train, onto)
    allowed = onto.descendants(onto.resolve("Animal")) | {onto.resolve("Animal")}
    assert set(animal.labels) <= allowed and animal.num_classes == 65
    level0 = build_subset("top", SubsetSpec(level=0), train, onto)
    assert level0.labels == onto.roots and level0.num_clips == len(train)


def test_paper_example_has_the_13_states() -> None:
    specs = load_subset_file(REPO / "examples" / "subsets" / "paper.yaml")
    assert len(specs) == 13
    assert sorted(s.fraction for s in specs.values() if s.fraction) == [0.01, 0.03, 0.1, 0.3]
    assert all(s.seed == 42 for s in specs.values())
    assert specs["human_animal_natural"].categories == ["Human sounds", "Animal", "Natural sounds"]


# --------------------------------------------------------- fractions, hashes
def test_fractions_are_nested_and_sized(real: tuple[Ontology, SegmentList, SegmentList]) -> None:
    onto, train, _ = real
    fractions = [1.0, 0.3, 0.1, 0.03, 0.01]
    sets = [train_ids(build_subset(f"f{f}", SubsetSpec(fraction=f, seed=42), train, onto)) for f in fractions]
    for bigger, smaller in itertools.pairwise(sets):
        assert smaller < bigger
    for f, ids in zip(fractions, sets, strict=True):
        assert len(ids) == round(f * len(train))  # exact sizes: the clips of lowest seeded key, not coin flips
    other_seed = train_ids(build_subset("s", SubsetSpec(fraction=0.1, seed=1), train, onto))
    assert other_seed != sets[2]


def test_hash_is_stable_across_runs_and_pinned(real: tuple[Ontology, SegmentList, SegmentList], tmp_path: Path) -> None:
    onto, train, test = real
    spec = SubsetSpec(fraction=0.01, seed=42)
    first = build_subset("fraction_1pct", spec, train, onto, test)
    again = build_subset("fraction_1pct", spec, train.take(np.arange(len(train))), onto, test)
    assert first.hash == again.hash == "ef31fbb8382b57e5"  # the same on any machine (exact-size fractions)
    loaded = Manifest.load(first.save(tmp_path).with_suffix(""))
    assert loaded.hash == first.hash and loaded.meta["spec"]["fraction"] == 0.01


# ---------------------------------------------------- classes and budgets
def test_class_selection(real: tuple[Ontology, SegmentList, SegmentList]) -> None:
    onto, train, _ = real
    counts = dict(zip(onto.trainable, train.clips_per_label(), strict=True))
    top = build_subset("top", SubsetSpec(num_classes=5, class_selection="most_frequent"), train, onto)
    assert sorted(counts[lab] for lab in top.labels) == sorted(counts.values())[-5:]
    low = build_subset("low", SubsetSpec(num_classes=5, class_selection="least_frequent"), train, onto)
    assert sorted(counts[lab] for lab in low.labels) == sorted(counts.values())[:5]
    pick = {k: build_subset("r", SubsetSpec(num_classes=k, seed=3), train, onto).labels for k in (4, 16, 64)}
    assert len(pick[64]) == 64 and set(pick[4]) < set(pick[16]) < set(pick[64])  # nested in k
    assert build_subset("r", SubsetSpec(num_classes=16, seed=3), train, onto).labels == pick[16]
    assert build_subset("r", SubsetSpec(num_classes=16, seed=4), train, onto).labels != pick[16]
    with pytest.raises(UserError, match="'num_classes' is 9 but only 8 classes"):
        build_subset("x", SubsetSpec(categories=["Speech"], num_classes=9), train, onto)


def test_num_samples_decouples_classes_from_clips(real: tuple[Ontology, SegmentList, SegmentList]) -> None:
    onto, train, _ = real
    grid = {
        k: build_subset("d", SubsetSpec(num_classes=k, class_selection="most_frequent", num_samples=2000), train, onto)
        for k in (8, 32, 128)
    }
    assert {m.num_clips for m in grid.values()} == {2000}
    assert [m.num_classes for m in grid.values()] == [8, 32, 128]
    assert all(m.clips_per_class().min() > 0 for m in grid.values())
    sizes = [train_ids(build_subset("n", SubsetSpec(num_samples=n, seed=5), train, onto)) for n in (300, 1000)]
    assert len(sizes[0]) == 300 and sizes[0] < sizes[1]  # nested in n


def test_budgets_balance_classes(real: tuple[Ontology, SegmentList, SegmentList]) -> None:
    onto, train, _ = real
    spec = SubsetSpec(categories=["Animal"], num_samples=650)
    balanced = build_subset("b", spec, train, onto).clips_per_class()
    animal = build_subset("a", SubsetSpec(categories=["Animal"]), train, onto)
    rng = np.random.default_rng(0)
    random_pick = animal.take(rng.choice(animal.num_clips, 650, replace=False)).clips_per_class()
    assert balanced.min() >= 5 and balanced.min() > random_pick.min()  # 65 classes, 650 clips: about 10 each
    capped = build_subset("m", SubsetSpec(categories=["Animal"], max_samples_per_class=20), train, onto)
    assert capped.clips_per_class().min() >= 20  # every class gets its 20 (co-labels may add more)
    assert capped.num_clips <= 65 * 20


def test_budget_composes_with_fraction(fragment: tuple[Ontology, SegmentList]) -> None:
    onto, segments = fragment
    with pytest.raises(UserError, match="'num_samples' is 7 but only 6 clips"):
        build_subset("x", SubsetSpec(num_samples=7), segments, onto)
    assert build_subset("x", SubsetSpec(num_samples=6), segments, onto).num_clips == 6


# ------------------------------------------------------------------ errors
def test_empty_subset_and_empty_label_set(fragment: tuple[Ontology, SegmentList]) -> None:
    onto, segments = fragment
    with pytest.raises(UserError, match=r"subset 'tiny' is empty.*fraction=1e-06"):
        build_subset("tiny", SubsetSpec(fraction=1e-6), segments, onto)
    with pytest.raises(UserError, match="leaves no trainable label"):
        build_subset("x", SubsetSpec(categories=["Beta"], exclude=["Things"]), segments, onto)
    with pytest.raises(UserError, match="field 'categories': unknown class 'Alfa'; did you mean 'Alpha'"):
        build_subset("x", SubsetSpec(categories=["Alfa"]), segments, onto)


def test_eval_overlap_is_an_error(fragment: tuple[Ontology, SegmentList]) -> None:
    onto, segments = fragment
    with pytest.raises(UserError, match="in both the training and the evaluation lists"):
        build_subset("x", SubsetSpec(), segments, onto, segments)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("subsets: {a: {fraction: 0}}", "subset 'a' field 'fraction': Input should be greater than 0"),
        ("subsets: {a: {fraction: 1.5}}", "field 'fraction': Input should be less than or equal to 1"),
        ("subsets: {a: {num_clases: 3}}", "field 'num_clases': Extra inputs are not permitted; did you mean"),
        ("subsets: {a: {class_selection: best}}", "field 'class_selection'"),
        ("subsets: {a: {categories: []}}", "field 'categories'"),
        ("subsets: {}", "field 'subsets' is missing or empty"),
        ("sed: 1\nsubsets: {a: {}}", "unknown top-level field 'sed'; did you mean 'seed'"),
        ("subsets: {'a/b': {}}", "not usable as a file name"),
        ("subsets: {a.1: {}}", "not usable as a file name"),
        ("subsets: {a: 3}", "must be a mapping"),
        ("subsets: {a: [1,\n", "not valid YAML (line"),
    ],
)
def test_bad_spec_files(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    with pytest.raises(UserError) as err:
        load_subset_file(path)
    assert str(path) in err.value.message and expected in err.value.message


def test_spec_file_defaults_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text("seed: 9\nfraction: 0.5\nsubsets:\n  a:\n  b: {seed: 1}\n")
    specs = load_subset_file(path)
    assert (specs["a"].seed, specs["a"].fraction, specs["b"].seed, specs["b"].fraction) == (9, 0.5, 1, 0.5)
    with pytest.raises(UserError, match="subset spec file not found"):
        load_subset_file(tmp_path / "nope.yaml")


def test_build_subsets_checks_names_first_and_saves(fragment: tuple[Ontology, SegmentList], tmp_path: Path) -> None:
    onto, segments = fragment
    spec = tmp_path / "spec.yaml"
    spec.write_text("subsets:\n  good: {categories: [Alpha]}\n  bad: {categories: [Betta]}\n")
    with pytest.raises(UserError) as err:
        build_subsets(spec, segments, onto, tmp_path / "out", progress=False)
    assert f"{spec}: subset 'bad' field 'categories': unknown class 'Betta'" in err.value.message
    assert not (tmp_path / "out").exists()  # nothing built before the check
    summaries = build_subsets(spec, segments, onto, tmp_path / "out", names=["good"], progress=False)
    assert [s["name"] for s in summaries] == ["good"] and summaries[0]["num_clips"] == 3
    assert Manifest.load(tmp_path / "out" / "good").hash == summaries[0]["hash"]
    with pytest.raises(UserError, match="no subset named 'god'; did you mean 'good'"):
        build_subsets(spec, segments, onto, tmp_path / "out", names=["god"], progress=False)
