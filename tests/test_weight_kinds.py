"""The report's weight distances compare only states of one architecture and one front-end, and name the rest."""

from __future__ import annotations

from pathlib import Path

import torch

from audiotransfer.analysis.gather import weight_similarity
from audiotransfer.models import create_model
from audiotransfer.study.layout import StudyDir
from audiotransfer.study.results import load_results
from audiotransfer.study.store import ResultStore
from audiotransfer.training.checkpoint import save_model


def test_weights_of_another_architecture_or_front_end_are_left_out_and_named(tmp_path: Path) -> None:
    store = ResultStore(StudyDir(tmp_path).results)
    kinds = {"a": ("cnn6", "demo"), "b": ("cnn6", "demo"), "c": ("cnn6", "panns32k"), "d": ("cnn10", "demo")}
    for seed, (state, (name, frontend)) in enumerate(kinds.items()):
        torch.manual_seed(seed)
        path = tmp_path / "models" / state / "model.pt"
        path.parent.mkdir(parents=True)
        save_model(path, create_model(name, 3, width=0.125, n_mels=32), labels=["x", "y", "z"])
        store.put_state(state, checkpoint=str(path), frontend=frontend, frontend_hash=frontend)
    res = load_results(tmp_path)
    matrix, blocks = weight_similarity(res, list(kinds))
    assert list(matrix.index) == ["a", "b"] and matrix.loc["a", "b"] > 0
    assert set(blocks["a"]) | set(blocks["b"]) == {"a", "b"}
    note = next(n for n in res.notes if n.startswith("Weight distances compare"))
    assert "(cnn6 width 0.125 on demo)" in note
    assert "c (cnn6 width 0.125 on panns32k)" in note and "d (cnn10 width 0.125 on demo)" in note
