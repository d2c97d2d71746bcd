"""Study spec validation: a good spec resolves; each bad input is one UserError naming file, field and fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from audiotransfer.errors import UserError
from audiotransfer.study.spec import load_study


def write_spec(tmp_path: Path, **changes: Any) -> Path:
    """A valid study over folders that exist; `changes` are deep-merged (None deletes a key)."""
    from audiotransfer.study.spec import deep_merge

    for sub in ("world", "scenes"):
        (tmp_path / sub).mkdir(exist_ok=True)
    for name in ("ontology.json", "labels.csv", "train.csv", "eval.csv", "panns.pth"):
        (tmp_path / "world" / name).touch()
    spec = {
        "name": "tiny",
        "out": "out",
        "features": "demo",
        "pretraining": {
            "corpus": "synthetic",
            "root": "world",
            "metadata": {
                "ontology": "world/ontology.json",
                "labels": "world/labels.csv",
                "train": ["world/train.csv"],
                "eval": ["world/eval.csv"],
            },
            "states": {
                "all": {},
                "human": {"categories": ["Human sounds"]},
                "half": {"fraction": 0.5},
                "panns": {"checkpoint": "world/panns.pth", "format": "panns"},
            },
        },
        "downstream": {"scenes": {"corpus": "folder", "root": "scenes", "recipe": {"frames": 51}}},
        "protocols": ["finetune", "linear", "freeze:2"],
        "seeds": [1, 2],
        "recipes": {"pretrain": {"model": "cnn6", "epochs": 2}, "finetune": {"epochs": 3}},
    }
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(deep_merge(spec, changes), sort_keys=False))
    return path


def test_valid_spec_resolves_paths_states_and_recipes(tmp_path: Path) -> None:
    study = load_study(write_spec(tmp_path))
    assert study.out == tmp_path / "out"
    assert study.spec.pretraining.root == tmp_path / "world"
    assert study.states == ["all", "human", "half", "panns", "scratch"]
    assert set(study.subset_states) == {"all", "human", "half"}
    assert study.subset_states["half"].fraction == 0.5
    assert study.checkpoint_states["panns"].format == "panns"
    assert study.pretrain_recipe.model == "cnn6" and study.pretrain_recipe.epochs == 2
    assert study.pretrain_recipe.batch_size == 128  # the study default is kept
    scenes = study.finetune_recipes["scenes"]
    assert list(scenes) == ["finetune", "linear", "freeze:2"]
    assert scenes["linear"].epochs == 3 and scenes["linear"].frames == 51 and scenes["linear"].protocol == "linear"
    assert study.features.n_mels == 32
    assert study.identity["feature_recipe"] == study.features.hash


def test_overrides_are_deep_merged(tmp_path: Path) -> None:
    study = load_study(
        write_spec(tmp_path),
        overrides={
            "recipes": {"finetune": {"epochs": 9}, "protocols": {"linear": {"epochs": 50, "lr": 0.01}}},
            "seeds": [5],
        },
    )
    scenes = study.finetune_recipes["scenes"]
    assert scenes["finetune"].epochs == 9 and scenes["freeze:2"].epochs == 9 and study.spec.seeds == [5]
    assert scenes["linear"].epochs == 50 and scenes["linear"].lr == 0.01
    assert study.pretrain_recipe.epochs == 2


@pytest.mark.parametrize(
    ("changes", "field", "hint"),
    [
        ({"downstream": {"scenes": {"corpus": "foldr"}}}, "downstream.scenes.corpus", "did you mean folder"),
        ({"pretraining": {"corpus": "audiost"}}, "pretraining.corpus", "did you mean audioset"),
        ({"downstream": {"scenes": {"root": "nowhere"}}}, "downstream.scenes.root", "does not exist"),
        ({"protocols": ["finetune", "linaer"]}, "protocols", "did you mean linear"),
        (
            {"pretraining": {"states": {"human": {"categoris": ["Animal"]}}}},
            "pretraining.states.human.categoris",
            "did you mean categories",
        ),
        ({"pretraining": {"states": {"half": {"fraction": 2.0}}}}, "pretraining.states.half.fraction", "1"),
        ({"recipes": {"finetune": {"learning_rate": 0.1}}}, "recipes.finetune.learning_rate", "lr"),
        ({"recipes": {"pretrain": {"epochs": 0}}}, "recipes.pretrain.epochs", "greater than or equal"),
        ({"sedes": [1]}, "sedes", "did you mean seeds"),
        ({"downstream": {"scenes": {"rooot": "x"}}}, "downstream.scenes.rooot", "did you mean root"),
        ({"features": "dem"}, "features", "did you mean demo"),
        ({"pretraining": {"states": {"scratch": {}}}}, "pretraining.states.scratch", "same folder"),
        ({"pretraining": {"states": {"Human": {}}}}, "pretraining.states", "same folder"),
        ({"seeds": [1, 1]}, "seeds", "same folder"),
        (
            {"pretraining": {"states": {"panns": {"checkpoint": "missing.pth"}}}},
            "pretraining.states.panns.checkpoint",
            "does not exist",
        ),
        ({"pretraining": {"states": {"panns": {"format": "keras"}}}}, "pretraining.states.panns.format", "panns"),
        ({"pretraining": {"states": {"x": {"subset": "speech"}}}}, "pretraining.states.x.subset", "subsets_file"),
        ({"name": None}, "name", "required"),
        ({"recipes": {"protocols": {"linaer": {"epochs": 2}}}}, "recipes.protocols.linaer", "did you mean linear"),
        ({"recipes": {"protocols": {"linear": {"epoch": 2}}}}, "recipes.protocols.linear.epoch", "epochs"),
        ({"recipes": {"pretrain": {"model": "cnn7"}}}, "recipes.pretrain.model", "cnn6, cnn10, cnn14"),
        ({"recipes": {"finetune": {"device": "tpu"}}}, "downstream.scenes.recipe.device", "cuda:N"),
        ({"seeds": [-1]}, "seeds.0", "greater than or equal to 0"),
        ({"seeds": [2**63]}, "seeds.0", "less than or equal to 9223372036854775807"),
        ({"pretraining": {"states": None}, "include_scratch": False}, "pretraining.states", "nothing to run"),
    ],
)
def test_bad_input_names_file_field_and_fix(tmp_path: Path, changes: dict, field: str, hint: str) -> None:
    path = write_spec(tmp_path, **changes)
    with pytest.raises(UserError) as info:
        load_study(path)
    text = str(info.value)
    assert str(path) in text and f"'{field}" in text and hint in text
    assert info.value.fix


def test_subsets_file_states(tmp_path: Path) -> None:
    (tmp_path / "subsets.yaml").write_text(
        yaml.safe_dump({"seed": 3, "subsets": {"speech": {"categories": ["Speech"]}, "tenth": {"fraction": 0.1}}})
    )
    study = load_study(
        write_spec(tmp_path, pretraining={"subsets_file": "subsets.yaml", "states": {"x": {"subset": "tenth"}}})
    )
    assert study.subset_states["x"].fraction == 0.1
