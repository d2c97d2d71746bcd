"""FSD50K on a fixture in the official layout: ground truth with quoted comma-separated labels and mids,
a headerless vocabulary, 44.1 kHz PCM clips of 0.3-2.4 s; as a task and as an ontology pre-training corpus."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audiotransfer.data.corpora import load_corpus
from audiotransfer.errors import UserError
from audiotransfer.ontology import Ontology, SubsetSpec, build_subset

FRAGMENT = Path(__file__).resolve().parents[1] / "src/audiotransfer/data/synthetic/fragment.json"
# (label, mid) in FSD50K's spelling; ancestors are propagated in the ground truth as in the real files
VOCABULARY = [
    ("Bark", "/m/05tny_"),
    ("Dog", "/m/0bt9lr"),
    ("Domestic_animals_and_pets", "/m/068hy"),
    ("Animal", "/m/0jbk"),
    ("Meow", "/m/07qrkrw"),
    ("Cat", "/m/01yrx"),
    ("Guitar", "/m/0342h"),
    ("Plucked_string_instrument", "/m/0fx80y"),
    ("Musical_instrument", "/m/04szw"),
    ("Music", "/m/04rlf"),
    ("Speech", "/m/09x0r"),
    ("Human_voice", "/m/09l8g"),
    ("Clapping", "/m/0l15bq"),
    ("Hands", "/m/0k65p"),
    ("Human_group_actions", "/t/dd00012"),
]
MID = dict(VOCABULARY)
LEAVES = {  # leaf -> propagated label list
    "Bark": ["Bark", "Dog", "Domestic_animals_and_pets", "Animal"],
    "Meow": ["Meow", "Cat", "Domestic_animals_and_pets", "Animal"],
    "Guitar": ["Guitar", "Plucked_string_instrument", "Musical_instrument", "Music"],
    "Speech": ["Speech", "Human_voice"],
    "Clapping": ["Clapping", "Hands", "Human_group_actions"],
}


def fsd50k_tree(root: Path, dev_per_leaf: int = 6, eval_per_leaf: int = 2, ontology: bool = True) -> Path:
    """The official layout with 5 leaves; clip lengths cycle 0.3-2.4 s; returns ROOT."""
    gt = root / "FSD50K.ground_truth"
    gt.mkdir(parents=True)
    with open(gt / "vocabulary.csv", "w", newline="") as handle:  # headerless: index,label,mid
        csv.writer(handle).writerows((i, label, mid) for i, (label, mid) in enumerate(VOCABULARY))
    fname = 1000
    for part, per_leaf in (("dev", dev_per_leaf), ("eval", eval_per_leaf)):
        rows = []
        for k in range(per_leaf):
            for j, (leaf, labels) in enumerate(LEAVES.items()):
                fname += 37
                extra = ["Bark", *LEAVES["Bark"][1:]] if leaf == "Speech" and k == 0 else []
                names = labels + [x for x in extra if x not in labels]
                row = [fname, ",".join(names), ",".join(MID[n] for n in names)]
                rows.append([*row, "val" if k % 3 == 2 else "train"] if part == "dev" else row)
                seconds = [0.3, 0.9, 1.5, 2.4][(k + j) % 4]
                path = root / f"FSD50K.{part}_audio" / f"{fname}.wav"
                path.parent.mkdir(exist_ok=True)
                rng = np.random.default_rng(fname)
                sf.write(path, 0.1 * rng.standard_normal(round(44100 * seconds)), 44100, subtype="PCM_16")
        with open(gt / f"{part}.csv", "w", newline="") as handle:
            writer = csv.writer(handle)  # quotes the comma-separated lists, as the official files do
            writer.writerow(["fname", "labels", "mids", "split"] if part == "dev" else ["fname", "labels", "mids"])
            writer.writerows(rows)
    if ontology:
        shutil.copy(FRAGMENT, root / "ontology.json")
    return root


def test_official_format_is_read_exactly(tmp_path: Path) -> None:
    root = fsd50k_tree(tmp_path / "FSD50K")
    first = (root / "FSD50K.ground_truth/dev.csv").read_text().splitlines()[1]
    assert first.startswith('1037,"Bark,Dog,Domestic_animals_and_pets,Animal","/m/05tny_,/m/0bt9lr,')
    manifest = load_corpus("fsd50k", root, ontology=str(root / "ontology.json"))
    assert manifest.task_type == "multilabel" and manifest.labels == [m for _, m in VOCABULARY]
    assert manifest.label_names[:2] == ["Bark", "Dog"]  # names from the ontology
    assert manifest.split_sizes() == {"train": 20, "dev": 10, "test": 10}
    clips = manifest.clips.set_index("clip_id")
    assert clips.loc["1037", "path"] == "FSD50K.dev_audio/1037.wav" and clips.loc["1037", "split"] == "train"
    assert clips["path"].str.startswith("FSD50K.eval_audio/").sum() == 10
    row = manifest.clips.index[manifest.clips["clip_id"] == "1148"][0]  # the Speech clip that also barks
    on = {manifest.labels[j] for j in manifest.targets[row].indices}
    assert on == {MID[n] for n in ["Speech", "Human_voice", "Bark", "Dog", "Domestic_animals_and_pets", "Animal"]}
    assert manifest.meta["clip_seconds"] == 10.0


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda r: _replace(r / "FSD50K.ground_truth/dev.csv", "/m/0bt9lr", "/m/zzzz"), "'/m/zzzz', not in vocabulary"),
        (lambda r: (r / "FSD50K.eval_audio/1592.wav").unlink(), "1 of 25 listed clips have no audio"),
        (lambda r: _replace(r / "FSD50K.ground_truth/dev.csv", ",val", ",validation"), "unknown value"),
        (lambda r: _replace(r / "FSD50K.ground_truth/vocabulary.csv", "/m/068hy", "/m/nope"), "not in vocabulary"),
        (lambda r: (r / "FSD50K.ground_truth/eval.csv").unlink(), "eval.csv: metadata file not found"),
    ],
)
def test_bad_input_is_a_clear_error(tmp_path: Path, edit, message: str) -> None:
    root = fsd50k_tree(tmp_path / "FSD50K", dev_per_leaf=3, eval_per_leaf=2)
    edit(root)
    with pytest.raises(UserError, match=message):
        load_corpus("fsd50k", root)


def test_vocabulary_mid_outside_the_ontology(tmp_path: Path) -> None:
    root = fsd50k_tree(tmp_path / "FSD50K", dev_per_leaf=1, eval_per_leaf=1)
    for name in ("vocabulary.csv", "dev.csv", "eval.csv"):
        _replace(root / "FSD50K.ground_truth" / name, "/m/0jbk", "/m/0notinonto")
    with pytest.raises(UserError, match=r"not in .*ontology\.json") as info:
        load_corpus("fsd50k", root, ontology=str(root / "ontology.json"))
    assert "/m/0notinonto" in info.value.message


def test_ontology_subsets_apply_to_fsd50k(tmp_path: Path) -> None:
    from audiotransfer.data.corpora.fsd50k import segment_lists

    root = fsd50k_tree(tmp_path / "FSD50K")
    onto = Ontology.load(root / "ontology.json")
    dev, evals = segment_lists(root, root / "ontology.json")
    assert len(dev) == 30 and len(evals) == 10 and dev.label_ids == [m for _, m in VOCABULARY]
    animal = build_subset("animal", SubsetSpec(categories=["Animal"]), dev, onto, eval_segments=evals)
    assert set(animal.labels) == {MID[n] for n in ["Bark", "Dog", "Domestic_animals_and_pets", "Animal", "Meow", "Cat"]}
    assert animal.split_sizes() == {"train": 13, "test": 5}  # 6 barks + 6 meows + the barking speech clip
    half = build_subset("half", SubsetSpec(fraction=0.5), dev, onto)
    assert 5 <= half.num_clips <= 25
    budget = build_subset("budget", SubsetSpec(categories=["Animal"], level=1, max_samples_per_class=2), dev, onto)
    assert budget.labels == [MID["Animal"], MID["Domestic_animals_and_pets"]] and budget.num_clips == 2


def _replace(path: Path, old: str, new: str) -> None:
    path.write_text(path.read_text().replace(old, new))


def fsd50k_study(folder: Path, root: Path, states: dict | None = None, **extra: object) -> Path:
    """A study pre-training on FSD50K ontology subsets and fine-tuning on FSD50K itself (tiny models)."""
    import yaml

    spec = {
        "name": "fsd",
        "out": "out",
        "features": "demo",
        "pretraining": {
            "corpus": "fsd50k",
            "root": str(root),
            "options": {"clip_seconds": 1.0},
            "metadata": {"ontology": str(root / "ontology.json")},
            "states": states
            or {
                "animal": {"categories": ["Animal"]},
                "half": {"fraction": 0.5, "seed": 3},
                "budget": {"max_samples_per_class": 3},
            },
        },
        "downstream": {"tags": {"corpus": "fsd50k", "root": str(root)}},
        "seeds": [1],
        "recipes": {
            "pretrain": {"model": "cnn6", "width": 0.125, "epochs": 1, "batch_size": 8},
            "finetune": {"model": "cnn6", "width": 0.125, "epochs": 1, "batch_size": 8},
        },
        **extra,
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "study.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return folder / "study.yaml"


def test_fsd50k_is_a_study_pretraining_corpus(tmp_path: Path) -> None:
    from audiotransfer.manifest import Manifest
    from audiotransfer.study.prepare import prepare_manifests
    from audiotransfer.study.spec import load_study

    root = fsd50k_tree(tmp_path / "FSD50K")
    data = prepare_manifests(load_study(fsd50k_study(tmp_path / "study", root)))
    animal = Manifest.load(data.states["animal"].manifest)
    assert animal.split_sizes() == {"train": 13, "test": 5} and animal.meta["corpus"] == "fsd50k"
    assert set(animal.label_names) == {"Bark", "Dog", "Domestic animals, pets", "Animal", "Meow", "Cat"}
    assert animal.meta["clip_seconds"] == 1.0
    assert 0 < data.states["half"].num_train < 30
    budget = Manifest.load(data.states["budget"].manifest)
    assert budget.clips_per_class()[: budget.num_classes].min() >= 1 and budget.num_clips < 40
    assert data.tasks["tags"].num_classes == 15 and data.tasks["tags"].task_type == "multilabel"
