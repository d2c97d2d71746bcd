"""`audiotransfer advise` end to end on small written data: csv and folder tasks, checkpoints, a study, the
embedding cache, bad input, the tagger's subset spec and the report's validation section."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from audiotransfer.advise import DEFAULT, embed
from audiotransfer.advise.baselines import BASELINES
from audiotransfer.advise.rank import NAMES
from audiotransfer.analysis.advisor import compare
from audiotransfer.cli import main
from audiotransfer.errors import UserError
from audiotransfer.models import create_model
from audiotransfer.training.checkpoint import save_model
from audiotransfer.training.result import RunResult

SR = 16000
# real AudioSet ids: Speech (Human sounds), Dog (Animal), Guitar (Music), Engine (Sounds of things)
TAG_LABELS = ["/m/09x0r", "/m/0bt9lr", "/m/0342h", "/m/02mk9"]


def _wavs(root: Path, per_class: int = 6, classes: int = 3) -> list[tuple[str, str]]:
    """Short tones, one pitch per class, with noise; returns (relative path, label) rows."""
    rng = np.random.default_rng(0)
    rows = []
    t = np.arange(int(0.5 * SR)) / SR
    for c in range(classes):
        for i in range(per_class):
            rel = f"c{c}/clip{i}.wav"
            (root / f"c{c}").mkdir(parents=True, exist_ok=True)
            wave = 0.3 * np.sin(2 * np.pi * (300 + 500 * c) * t) + 0.05 * rng.normal(size=len(t))
            sf.write(root / rel, wave.astype(np.float32), SR)
            rows.append((rel, f"c{c}"))
    return rows


def _model(path: Path, seed: int, labels: list[str], nan: bool = False) -> Path:
    torch.manual_seed(seed)
    model = create_model("cnn6", len(labels), width=0.125, n_mels=64)
    if nan:
        with torch.no_grad():
            model.fc1.weight.fill_(float("nan"))
    path.mkdir(parents=True, exist_ok=True)
    save_model(path / "model.pt", model, labels=labels, kind="pretrain")
    return path


@pytest.fixture(scope="module")
def task(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("task")
    rows = _wavs(root)
    pd.DataFrame(rows, columns=["path", "label"]).to_csv(root / "labels.csv", index=False)
    return root


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    return {
        "a": _model(root / "a", 0, TAG_LABELS),
        "b": _model(root / "b", 1, TAG_LABELS[:2]),
        "nan": _model(root / "nan", 2, TAG_LABELS, nan=True),
    }


def test_advise_csv_task_ranks_checkpoints_and_caches(task, models, tmp_path, capsys, monkeypatch):
    out = tmp_path / "advice"
    args = [
        "advise",
        "--task",
        "csv",
        "--root",
        str(task),
        "--checkpoint",
        f"a={models['a']}",
        "--checkpoint",
        f"b={models['b'] / 'model.pt'}:audiotransfer",
        "--checkpoint",
        f"nan={models['nan']}",
        "--checkpoint",
        f"gone={tmp_path / 'missing.pth'}:panns",
        "--out",
        str(out),
        "--no-progress",
    ]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "3 forward pass(es)" in text and "csv: start from '" in text
    assert "gone: " in text and "not loaded: candidate 'gone'" in text
    assert "nan: " in text and "NaN or infinite" in text  # estimators skipped, with the reason
    saved = json.loads((out / "advice.json").read_text())
    table = pd.DataFrame(saved["tables"]["csv"]).set_index("candidate")
    assert table.index[0] in ("a", "b") and set(table.index) == {"a", "b", "nan", "gone"}
    assert table.loc["a", ["logme", "leep", "nce", "hscore", "knn", "probe"]].notna().all()
    assert table.loc["nan", ["logme", "knn"]].isna().all()
    assert (out / "advice.csv").exists()
    # a second advice on the same inputs reads every embedding from the cache: no forward pass at all
    monkeypatch.setattr(embed, "forward", lambda *a, **k: pytest.fail("forward pass on a cached candidate"))
    assert main(args) == 0
    again = json.loads((out / "advice.json").read_text())
    assert again["forward_passes"] == 0 and again["tables"]["csv"][0]["candidate"] == table.index[0]


def test_advise_folder_task_and_bad_input(task, models, tmp_path, capsys):
    assert (
        main(
            [
                "advise",
                "--task",
                "folder",
                "--root",
                str(task),
                "--checkpoint",
                f"a={models['a']}",
                "--estimators",
                "knn",
                "logme",
                "--out",
                str(tmp_path / "f"),
                "--no-progress",
            ]
        )
        == 0
    )
    assert "start from 'a' (knn" in capsys.readouterr().out
    one = tmp_path / "one"
    rows = _wavs(one, per_class=4, classes=1)
    pd.DataFrame(rows, columns=["path", "label"]).to_csv(one / "labels.csv", index=False)
    assert (
        main(
            [
                "advise",
                "--task",
                "csv",
                "--root",
                str(one),
                "--checkpoint",
                f"a={models['a']}",
                "--out",
                str(tmp_path / "o"),
                "--no-progress",
            ]
        )
        == 0
    )
    assert "only one class" in capsys.readouterr().out  # every estimator skipped with the reason
    assert main(["advise", "--task", "csv", "--root", str(task), "--checkpoint", "a", "--out", str(tmp_path)]) == 2
    assert "expected NAME=PATH" in capsys.readouterr().err
    assert (
        main(
            [
                "advise",
                "--task",
                "csv",
                "--root",
                str(task),
                "--checkpoint",
                f"a={models['a']}",
                "--estimators",
                "magic",
                "--out",
                str(tmp_path / "m"),
            ]
        )
        == 2
    )
    assert not (tmp_path / "m").exists()  # refused before any extraction
    assert "unknown estimator" in capsys.readouterr().err


def test_tagger_writes_a_subset_spec_that_subsets_build_accepts(task, tmp_path, capsys, audioset_dir):
    torch.manual_seed(0)
    tagger = create_model("cnn6", len(TAG_LABELS), width=0.125, n_mels=64)
    with torch.no_grad():  # a tagger that hears dogs everywhere: the task resembles Animal
        tagger.fc_audioset.weight.zero_()
        tagger.fc_audioset.bias.copy_(torch.tensor([-6.0, 8.0, -6.0, -6.0]))
    (tmp_path / "tagger").mkdir()
    save_model(tmp_path / "tagger" / "model.pt", tagger, labels=TAG_LABELS)
    out = tmp_path / "advice"
    assert (
        main(
            [
                "advise",
                "--task",
                "csv",
                "--root",
                str(task),
                "--tagger",
                str(tmp_path / "tagger"),
                "--metadata",
                str(audioset_dir),
                "--budget",
                "50",
                "--out",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "csv: most like Animal;" in text
    spec = out / "subset_like_csv.yaml"
    assert (
        main(
            [
                "subsets",
                "build",
                str(spec),
                "--metadata",
                str(audioset_dir),
                "--segments",
                str(audioset_dir / "balanced_train_segments.csv"),
                "--out",
                str(tmp_path / "m"),
                "--quiet",
            ]
        )
        == 0
    )
    meta = json.loads((tmp_path / "m" / "like_csv.json").read_text())
    assert meta["num_clips"] == 50
    # a tagger whose labels are not AudioSet ids: a clear error naming the file
    save_model(tmp_path / "tagger" / "model.pt", tagger, labels=["0", "1", "2", "3"])
    assert (
        main(
            [
                "advise",
                "--task",
                "csv",
                "--root",
                str(task),
                "--tagger",
                str(tmp_path / "tagger"),
                "--metadata",
                str(audioset_dir),
                "--out",
                str(out),
                "--no-progress",
            ]
        )
        == 2
    )
    assert "labels are not AudioSet ids" in capsys.readouterr().err


def test_compare_tau_and_top1():
    states = ["s1", "s2", "s3", "s4"]
    scores = pd.DataFrame(
        dict(
            state=states,
            task="t",
            protocol="finetune",
            mean=[0.9, 0.8, 0.7, 0.6],
            ci_low=[0.85, 0.75, 0.65, 0.55],
            ci_high=[0.95, 0.85, 0.75, 0.65],
        )
    )
    long = pd.DataFrame(
        dict(
            task="t",
            candidate=states * 2,
            estimator=["up"] * 4 + ["down"] * 4,
            score=[4, 3, 2, 1, 1, 2, 3, 4],
            seconds=0.5,
            note="",
        )
    )
    embed_s = pd.DataFrame(dict(task="t", candidate=states, seconds=1.0))
    cells = compare(long, embed_s, scores).set_index("estimator")
    assert cells.loc["up", "tau_w"] == pytest.approx(1.0) and cells.loc["up", "rho"] == pytest.approx(1.0)
    assert cells.loc["down", "tau_w"] == pytest.approx(-1.0) and cells.loc["down", "rho"] == pytest.approx(-1.0)
    assert cells.loc["up", "top1_is_best"] and not cells.loc["down", "top1_is_best"]
    assert not cells.loc["down", "within_best_ci"] and cells.loc["up", "seconds"] == pytest.approx(6.0)


def make_study(root: Path) -> Path:
    """A finished study without audio: three pre-trained states, one task, planted fine-tuning scores."""
    from scipy import sparse

    from audiotransfer.data.features import RECIPES
    from audiotransfer.data.store import write_store
    from audiotransfer.manifest import Manifest
    from audiotransfer.study.store import ResultStore

    rng = np.random.default_rng(0)
    recipe, n = RECIPES["panns16k"], 60
    y = np.arange(n) % 3
    ids = [f"clip{i}" for i in range(n)]
    shapes = rng.normal(scale=3, size=(3, 64))
    spath = root / "stores" / "scenes"
    write_store(
        spath,
        recipe,
        "scenes",
        {c: (rng.normal(size=(21, 64)) + shapes[k]).astype(np.float32) for c, k in zip(ids, y, strict=True)},
    )
    targets = sparse.csr_matrix((np.ones(n, bool), (np.arange(n), y)), shape=(n, 3))
    splits = ["test" if i % 4 == 0 else "train" for i in range(n)]
    mpath = Manifest(
        "scenes",
        pd.DataFrame({"clip_id": ids, "split": splits}),
        ["a", "b", "c"],
        targets,
        task_type="multiclass",
        meta={"clip_seconds": 0.2},
    ).save(root / "manifests")
    store = ResultStore(root / "results.sqlite")
    store.claim({"name": "tiny"}, str(root / "study.yaml"))
    store.put_task(
        "scenes", corpus="csv", task_type="multiclass", num_classes=3, manifest_path=mpath, store_path=spath, frames=21
    )
    runs = [dict(run_id=f"pretrain/s{k}", kind="pretrain", state=f"s{k}", config={}) for k in range(3)]
    runs += [
        dict(
            run_id=f"finetune/s{k}/scenes/finetune/seed{s}",
            kind="finetune",
            state=f"s{k}",
            task="scenes",
            protocol="finetune",
            seed=s,
            config={},
        )
        for k in range(3)
        for s in (1, 2)
    ]
    store.register(runs)
    for k in range(3):
        _model(root / "runs" / "pretrain" / f"s{k}", k, TAG_LABELS)
        store.put_state(
            f"s{k}",
            corpus="synthetic",
            num_clips=100 * (k + 1),
            num_classes=4 + k,
            labels=TAG_LABELS,
            checkpoint=root / "runs" / "pretrain" / f"s{k}" / "model.pt",
        )
        store.mark_done(f"pretrain/s{k}", RunResult(test={"mAP": 0.3}, duration_s=5.0))
        for s in (1, 2):
            store.mark_done(
                f"finetune/s{k}/scenes/finetune/seed{s}",
                RunResult(test={"uar": 0.5 + 0.1 * k + 0.01 * s}, duration_s=10.0),
            )
    return root


def test_advise_a_study_and_its_report_section(tmp_path, capsys):
    from audiotransfer.analysis import analyse, write_analysis
    from audiotransfer.analysis.advisor import TITLE

    root = make_study(tmp_path / "study")
    assert main(["advise", str(root), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "scenes: start from 's" in text and (root / "advise" / "advice.json").exists()
    row = json.loads((root / "advise" / "advice.json").read_text())["tables"]["scenes"][0]
    assert row[f"{DEFAULT}_low"] <= row[DEFAULT] <= row[f"{DEFAULT}_high"] and row["largest_rank"] in (1, 2, 3)
    assert "free baselines would pick: largest 's2'" in text
    a = analyse(root, max_inputs=16, batch_size=8, progress=False)
    cells = a.advisor.cells
    assert set(cells["estimator"]) == {*NAMES, "largest", "most_classes", "random"}
    assert (cells["best"] == "s2").all() and cells["n_states"].eq(3).all()
    assert cells.loc[~cells["estimator"].isin(BASELINES), "seconds"].gt(0).all()
    largest = cells.set_index("estimator").loc["largest"]  # the planted scores grow with the clip count
    assert largest["tau_w"] == pytest.approx(1.0) and largest["regret"] == 0 and largest["top1_is_best"]
    rand = cells.set_index("estimator").loc["random"]
    assert rand["top1_is_best"] == pytest.approx(1 / 3, abs=0.05) and rand["regret"] == pytest.approx(0.1, abs=0.01)
    assert a.advisor.verdict is not None and a.advisor.verdict.baseline == "largest"
    assert a.advisor.table.loc["largest", "tau_w"] == pytest.approx(1.0)
    assert a.advisor.picks.iloc[0]["grid_seconds"] == pytest.approx(60.0)
    out = write_analysis(a)
    assert (root / "report" / "figures" / "advisor_scatter.png").exists()
    assert f"## {TITLE}" in out["markdown"].read_text() and TITLE.replace("?", "") in out["html"].read_text()
    assert (root / "report" / "cache" / "advisor_scores.json").exists()  # the next report reuses it
    summary = json.loads(out["json"].read_text())["advisor"]
    assert summary["default"] == DEFAULT and len(summary["cells"]) == len(NAMES) + 3
    assert summary["verdict"]["baseline"] == "largest"
    assert {r["estimator"] for r in summary["table"]} >= {"largest", "most_classes", "random"}
    assert (summary["verdict"]["line"] in summary["lines"] and "'largest'" in summary["verdict"]["line"]) or (
        "picking the largest pre-training set" in summary["verdict"]["line"]
    )
    assert "scenes: the advisor would have picked s" in summary["lines"][0]


DAG = {"r1": [], "r2": [], "a": ["r1"], "b": ["r2"], "c": ["r2"], "x": ["a", "b"]}  # child -> parents


class _Onto:
    """A tiny DAG: r1 -> a -> x, r2 -> b -> x (x has two parents), r2 -> c."""

    parents = DAG

    def ancestors(self, cid: str) -> set[str]:
        out = set()
        for p in self.parents[cid]:
            out |= {p, *self.ancestors(p)}
        return out

    def depth(self, cid: str) -> int:
        return 0 if not self.parents[cid] else 1 + min(self.depth(p) for p in self.parents[cid])

    def name(self, cid: str) -> str:
        return cid.upper()


def test_category_mass_goes_to_every_ancestor():
    from audiotransfer.advise.categories import category_mass, label_mass, top_categories

    logits = np.log(np.array([[0.6, 0.4], [0.6, 0.4]]) / (1 - np.array([[0.6, 0.4]] * 2)))
    assert label_mass(logits, ["x", "c"], soft=True).to_dict() == pytest.approx({"x": 0.6, "c": 0.4})
    mass = label_mass(np.array([[2.0, 1.0], [2.0, 1.0], [0.0, 1.0], [3.0, 0.0], [3.0, 0.0]]), ["x", "c"])
    assert mass.to_dict() == pytest.approx({"x": 0.8, "c": 0.2})  # top-1 label per clip
    mass = mass * 0 + pd.Series({"x": 0.6, "c": 0.4})
    cmass = category_mass(mass, _Onto())
    assert cmass.to_dict() == pytest.approx({"x": 0.6, "a": 0.6, "b": 0.6, "r1": 0.6, "r2": 1.0, "c": 0.4})
    top = top_categories(cmass, _Onto(), level=0, cover=0.5)
    assert list(top["category"]) == ["R2", "R1"] and list(top["chosen"]) == [True, False]
    assert list(top_categories(cmass, _Onto(), level=0, cover=0.9)["chosen"]) == [True, True]


def test_multilayer_scores_every_stage_and_its_embedding_matches_the_advisor(tmp_path):
    from audiotransfer.advise.driver import study_candidates, study_tasks
    from audiotransfer.advise.embed import class_labels, embed_task, labelled_rows
    from audiotransfer.advise.layers import best_layer, layer_embeddings
    from audiotransfer.study.results import load_results

    res = load_results(make_study(tmp_path / "study"))
    task, cand = study_tasks(res)[0], study_candidates(res)[0]
    layers = layer_embeddings(cand, task.manifest, task.store, task.frames, tmp_path / "cache")
    assert [k for k in layers if not k.startswith("_")] == [
        "conv_block1",
        "conv_block2",
        "conv_block3",
        "conv_block4",
        "embedding",
    ]
    plain = embed_task(cand, task.manifest, task.store, task.frames, tmp_path / "cache").embeddings
    assert np.allclose(layers["embedding"], plain, atol=1e-5)  # the same whole-clip pass as the advisor's
    again = layer_embeddings(cand, task.manifest, task.store, task.frames, tmp_path / "cache")
    assert float(again["_seconds"]) == float(layers["_seconds"])  # read back from the cache
    y = class_labels(task.manifest, labelled_rows(task.manifest))
    got = best_layer("logme", layers, y, cand.name)
    assert len(got.scores) == 5 and got.score == got.scores.max() and got.layer in layers
    with pytest.raises(UserError, match="reads embeddings"):
        best_layer("leep", layers, y)


def test_heat_map_marks_the_advisor_pick_and_the_grid_best(tmp_path):
    from audiotransfer.analysis.advisor import AdvisorCheck
    from audiotransfer.analysis.advisor_plots import mark_advisor
    from audiotransfer.analysis.overview import gain_heatmap
    from audiotransfer.analysis.plots import save

    states, tasks = ["s0", "s1", "s2"], ["birds", "scenes"]
    gains = pd.DataFrame(
        [
            dict(state=s, task=t, protocol="finetune", gain=0.01 * i, ci_low=-0.01, ci_high=0.03)
            for i, s in enumerate(states)
            for t in tasks
        ]
    )
    cells = pd.DataFrame(
        [
            dict(task="birds", protocol="finetune", estimator="knn", best="s2"),
            dict(task="scenes", protocol="finetune", estimator="knn", best="s1"),
        ]
    )
    check = AdvisorCheck("knn", cells, pd.DataFrame(dict(task=tasks, pick=["s0", "s1"])))
    fig = mark_advisor(gain_heatmap(gains, "uar", "finetune"), gains, check, "finetune")
    marks = {(line.get_marker(), *np.round(line.get_xydata()[0], 2)) for line in fig.axes[0].lines}
    # birds is column 0, scenes column 1; rows in state order; pick left (v), best right (*)
    assert marks == {("v", -0.36, -0.3), ("*", 0.36, 1.7), ("v", 0.64, 0.7), ("*", 1.36, 0.7)}
    assert "advisor's top-1 (knn" in fig.axes[0].get_xlabel()
    assert save(fig, tmp_path, "heat")["png"].exists()


def test_no_loadable_candidate_skips_the_task_with_the_reasons(tmp_path):
    from audiotransfer.advise.driver import Task, advise
    from audiotransfer.advise.embed import Candidate
    from audiotransfer.data.features import RECIPES
    from audiotransfer.data.store import write_store
    from audiotransfer.manifest import from_label_lists

    rng = np.random.default_rng(0)
    ids, labels = [f"c{i}" for i in range(12)], ["low", "high"] * 6
    manifest = from_label_lists(
        "toy", pd.DataFrame({"clip_id": ids, "split": "train"}), [[x] for x in labels], task_type="multiclass"
    )
    store = write_store(
        tmp_path / "store", RECIPES["demo"], "toy", {i: rng.normal(size=(40, 32)).astype("float32") for i in ids}
    )
    (tmp_path / "broken.pt").write_bytes(b"not a checkpoint")
    candidates = [Candidate("gone", tmp_path / "gone.pt"), Candidate("broken", tmp_path / "broken.pt")]
    advice = advise(candidates, [Task("toy", manifest, store, 40)], tmp_path / "cache", progress=False)
    line = advice.lines["toy"]
    assert line.startswith("toy: skipped (no candidate could be used:") and "gone:" in line and "broken:" in line
    assert "toy" not in advice.tables
