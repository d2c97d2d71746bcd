"""The Python API as a user finds it: `import audiotransfer` is fast and names the entry points, the
docstrings' examples run (doctests), reprs are short, every recipe and spec field is described in help()."""

from __future__ import annotations

import doctest
import importlib
import json
import pydoc
import subprocess
import sys
from pathlib import Path

import pytest

import audiotransfer

REPO = Path(__file__).resolve().parents[1]
# modules whose docstrings hold runnable examples (each example builds its own tiny data in a temp folder)
DOCTESTED = [
    "audiotransfer.manifest",
    "audiotransfer.fields",
    "audiotransfer.progress",
    "audiotransfer.data.store_reader",
    "audiotransfer.ontology.subsets",
    "audiotransfer.training.recipe",
    "audiotransfer.training.checkpoint",
    "audiotransfer.models.load",
    "audiotransfer.study.spec",
    "audiotransfer.study.results",
    "audiotransfer.advise.driver",
]
SLOW_DOCTESTED = ["audiotransfer.study.runner"]  # runs a one-run study (about 20 s)


def test_import_is_lazy_and_names_the_entry_points() -> None:
    code = (
        "import sys, json, time; t = time.perf_counter(); import audiotransfer; "
        "s = time.perf_counter() - t; print(json.dumps([s, 'torch' in sys.modules, 'pandas' in sys.modules, "
        "audiotransfer.__all__])); audiotransfer.TrainRecipe; print('torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={"PYTHONPATH": str(REPO / "src")}
    ).stdout.splitlines()
    seconds, torch_loaded, pandas_loaded, names = json.loads(out[0])
    assert not torch_loaded and not pandas_loaded and seconds < 0.5
    assert out[1] == "True"  # TrainRecipe's module imports the models registry on first use
    for name in (
        "load_model",
        "load_results",
        "Study",
        "run_study",
        "advise",
        "FeatureStore",
        "Manifest",
        "TrainRecipe",
        "build_subset",
        "build_subsets",
        "SubsetSpec",
        "load_study",
    ):
        assert name in names


def test_every_public_name_resolves_to_the_object_of_its_module() -> None:
    from audiotransfer.advise.driver import advise
    from audiotransfer.models.load import load_model
    from audiotransfer.study.runner import run

    for name in audiotransfer.__all__:
        assert getattr(audiotransfer, name) is not None, name
        assert name in dir(audiotransfer)
    assert audiotransfer.run_study is run and audiotransfer.load_model is load_model
    assert audiotransfer.advise.advise is advise and callable(audiotransfer.advise)  # the package, callable
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        _ = audiotransfer.nothing


@pytest.mark.parametrize("module", DOCTESTED)
def test_docstring_examples_run(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.slow
@pytest.mark.parametrize("module", SLOW_DOCTESTED)
def test_slow_docstring_examples_run(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_entry_points_have_an_example() -> None:
    for name in (
        "Manifest",
        "FeatureStore",
        "TrainRecipe",
        "build_subset",
        "build_subsets",
        "load_model",
        "load_results",
        "load_study",
        "run_study",
        "advise",
    ):
        obj = getattr(audiotransfer, name)
        doc = obj.advise.__doc__ if name == "advise" else obj.__doc__
        assert ">>> " in (doc or ""), name


def test_every_recipe_and_spec_field_is_described_in_help() -> None:
    from audiotransfer.data.features import FeatureRecipe
    from audiotransfer.ontology.subsets import SubsetSpec
    from audiotransfer.study import spec
    from audiotransfer.training.recipe import TrainRecipe

    for model in (
        FeatureRecipe,
        TrainRecipe,
        SubsetSpec,
        spec.StudySpec,
        spec.Pretraining,
        spec.Metadata,
        spec.Task,
        spec.Recipes,
        spec.Resources,
    ):
        text = pydoc.render_doc(model, renderer=pydoc.plaintext)
        for name, info in model.model_fields.items():
            assert info.description, f"{model.__name__}.{name} has no description"
            assert f"{name} (" in text and info.description.rstrip(".") in " ".join(text.split()), name


def test_reprs_are_short() -> None:
    import numpy as np
    import pandas as pd

    from audiotransfer.manifest import from_label_lists
    from audiotransfer.study.results import StudyResults

    n = 5000
    clips = pd.DataFrame({"clip_id": [f"c{i}" for i in range(n)], "split": ["train"] * (n - 10) + ["test"] * 10})
    m = from_label_lists("big", clips, [[str(i % 7)] for i in range(n)], task_type="multiclass")
    assert repr(m) == "Manifest('big', 5000 clips x 7 labels, multiclass, splits train 4990 / test 10)"
    frame = pd.DataFrame({"status": ["done"] * 300, "x": np.arange(300)})
    res = StudyResults(Path("s"), "s", frame, frame, frame.head(3), frame.head(2), notes=["a"])
    assert repr(res) == "StudyResults('s', 300 runs (300 done), 300 test scores, 3 states, 2 tasks, 1 notes)"
