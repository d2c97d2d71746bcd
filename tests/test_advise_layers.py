"""`advise --layers`: every candidate scored at several layers, each estimator at its best one, the winning
layer in the table and advice.json; on a study's CNN states and on a tiny random-weight wav2vec2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import audiotransfer.advise.estimators as est
from audiotransfer.advise.driver import study_candidates, study_tasks
from audiotransfer.advise.embed import class_labels, labelled_rows
from audiotransfer.advise.layers import layer_embeddings
from audiotransfer.cli import main
from audiotransfer.study.results import load_results
from test_advise import make_study


def _table(out: Path, task: str) -> tuple[pd.DataFrame, dict]:
    saved = json.loads((out / "advice.json").read_text())
    return pd.DataFrame(saved["tables"][task]).set_index("candidate"), saved


def test_advise_layers_on_cnn_states_picks_each_estimators_best_stage(tmp_path: Path, capsys) -> None:
    root = make_study(tmp_path / "study")
    args = ["advise", str(root), "--estimators", "knn", "logme", "leep", "ensemble", "--no-progress"]
    assert main([*args, "--out", str(tmp_path / "plain")]) == 0
    assert main([*args, "--out", str(tmp_path / "layers"), "--layers", "all"]) == 0
    # per state only the stages' pass: the usual embeddings are in the study's shared cache since the first call
    assert "3 forward pass(es)" in capsys.readouterr().out
    plain, _ = _table(tmp_path / "plain", "scenes")
    table, saved = _table(tmp_path / "layers", "scenes")
    res = load_results(root)
    task = study_tasks(res)[0]
    y = class_labels(task.manifest, labelled_rows(task.manifest))
    chose_inner = False
    for cand in study_candidates(res):
        stages = layer_embeddings(cand, task.manifest, task.store, task.frames, tmp_path / "mine")
        knn = {k: est.knn_loo(v, y) for k, v in stages.items() if not k.startswith("_")}  # computed here
        best = max(knn, key=lambda k: (knn[k], k == "embedding"))
        assert table.loc[cand.name, "knn"] == pytest.approx(knn[best])
        assert knn[table.loc[cand.name, "layer"]] == pytest.approx(knn[best])
        assert plain.loc[cand.name, "knn"] == pytest.approx(knn["embedding"])  # without --layers: the last only
        assert saved["layers"]["scenes"][cand.name]["logme"] in knn
        chose_inner |= table.loc[cand.name, "layer"] != "embedding"
        assert table.loc[cand.name, "leep"] == pytest.approx(plain.loc[cand.name, "leep"])  # the head: no layers
    assert chose_inner  # an inner stage won somewhere: the option changed the answer
    assert table["ensemble"].notna().all() and table["knn_low"].le(table["knn"]).all()
    assert main([*args, "--out", str(tmp_path / "layers"), "--layers", "all"]) == 0
    assert "0 forward pass(es)" in capsys.readouterr().out  # every layer from the cache
    assert main([*args, "--out", str(tmp_path / "two"), "--layers", "2,3"]) == 0
    two, _ = _table(tmp_path / "two", "scenes")
    assert set(two["layer"]) <= {"conv_block2", "conv_block3", "embedding"}
    assert main([*args, "--out", str(tmp_path / "nine"), "--layers", "9"]) == 0
    assert "has no conv_block9" in capsys.readouterr().out
    assert main([*args, "--out", str(tmp_path / "bad"), "--layers", "last"]) != 0
    assert "neither 'all' nor layer numbers" in capsys.readouterr().err and not (tmp_path / "bad").exists()


def test_advise_layers_on_a_public_model_reads_every_hidden_state_in_one_pass(tmp_path: Path, capsys) -> None:
    pytest.importorskip("transformers")
    from test_public_models import _family, _tones

    _tones(tmp_path / "clips")
    torch.manual_seed(0)
    model, extractor, _ = _family("wav2vec2")
    model.save_pretrained(tmp_path / "w2v")
    extractor.save_pretrained(tmp_path / "w2v")
    out = tmp_path / "advice"
    args = ["advise", "--task", "folder", "--root", str(tmp_path / "clips"), "--out", str(out), "--no-progress"]
    args += ["--checkpoint", f"w2v={tmp_path / 'w2v'}:hf", "--estimators", "knn", "logme", "--layers", "all"]
    assert main(args) == 0
    assert "1 forward pass(es)" in capsys.readouterr().out
    table, saved = _table(out, "folder")
    assert table.loc["w2v", "layer"] in ("0", "1", "last")
    cached = sorted(p.name.split("-")[2] for p in (out / "cache").glob("public-*.npz"))
    assert cached == ["L0", "L1", "last"]  # the two-layer model's every hidden state
    per = {}
    for tag in cached:
        with np.load(next((out / "cache").glob(f"public-*-{tag}-*.npz"))) as data:
            y = np.repeat(np.arange(3), len(data["embeddings"]) // 3)
            per[tag] = est.knn_loo(data["embeddings"], y)
    assert table.loc["w2v", "knn"] == pytest.approx(max(per.values()))
    assert set(saved["layers"]["folder"]["w2v"]) == {"knn", "logme"}
