"""A whole study on a tiny synthetic world through `run()`: data preparation, plan, store, resume, refusals,
the Ray backend and MLflow export. Training is a fast stand-in that reads the real manifests and stores."""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from audiotransfer.cli import main
from audiotransfer.errors import UserError
from audiotransfer.study import ResultStore, plan, run
from audiotransfer.study.plan import Run
from audiotransfer.training.result import RunResult

HERE = Path(__file__).resolve().parent


def fast_train(run: Run) -> RunResult:
    """Reads the run's real inputs, writes `model.pt` + `metrics.json` like the engine (idempotent per dir)."""
    from audiotransfer.data.store import FeatureStore
    from audiotransfer.manifest import Manifest

    metrics = run.out_dir / "metrics.json"
    if metrics.exists():
        return RunResult.from_json(json.loads(metrics.read_text()))
    manifest, store = Manifest.load(run.manifest), FeatureStore(run.store)
    train = manifest.split("train")
    batch = store.read_batch(store.rows(train.clips["clip_id"][:4]), 20, crop="center")
    assert batch.shape == (min(4, train.num_clips), 20, store.recipe.n_mels)
    if run.init is not None:
        assert Path(run.init).exists(), f"{run.run_id}: its starting state {run.init} is missing"
    run.out_dir.mkdir(parents=True, exist_ok=True)
    (run.out_dir / "model.pt").write_bytes(b"weights")
    score = float(np.mean(batch)) % 1.0
    result = {
        "status": "done",
        "kind": run.kind,
        "num_train_clips": train.num_clips,
        "duration_s": 0.01,
        "epochs": [{"epoch": e, "train_loss": 1.0 / e, "dev": {"uar": score}} for e in (1, 2)],
        "test": {"uar": score, "accuracy": score},
    }
    metrics.write_text(json.dumps(result))
    return RunResult.from_json(result)


def recording_train(run: Run) -> RunResult:
    """`fast_train` that first writes which store the run read and its crop length (`RUN/read.json`)."""
    from audiotransfer.data.store import FeatureStore
    from audiotransfer.manifest import Manifest

    store = FeatureStore(run.store)
    frames = store.recipe.frames_for(Manifest.load(run.manifest).meta.get("clip_seconds"))
    run.out_dir.mkdir(parents=True, exist_ok=True)
    (run.out_dir / "read.json").write_text(json.dumps({"recipe": store.recipe.hash, "frames": frames}))
    return fast_train(run)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from audiotransfer.data.synthetic import generate_world

    root = tmp_path_factory.mktemp("world")
    return generate_world(
        root,
        num_pretrain=120,
        num_eval=40,
        num_scenes=42,
        num_birds=42,
        num_commands=56,
        num_speakers=7,
        jobs=1,
        progress=False,
    )


def write_study(folder: Path, world: Path, **changes: Any) -> Path:
    from audiotransfer.study.spec import deep_merge

    spec = {
        "name": "tiny",
        "out": "out",
        "features": "demo",
        "pretraining": {
            "corpus": "synthetic",
            "root": str(world),
            "metadata": {
                "ontology": str(world / "ontology.json"),
                "labels": str(world / "class_labels_indices.csv"),
                "train": [str(world / "train_segments.csv")],
                "eval": [str(world / "eval_segments.csv")],
            },
            "states": {"all": {}, "animal": {"categories": ["Animal"]}, "half": {"fraction": 0.5}},
        },
        "downstream": {
            "birds": {"corpus": "synthetic_birds", "root": str(world)},
            "commands": {"corpus": "synthetic_commands", "root": str(world)},
        },
        "protocols": ["finetune", "linear"],
        "seeds": [1],
        "recipes": {
            "pretrain": {"model": "cnn6", "width": 0.125, "epochs": 2},
            "finetune": {"model": "cnn6", "width": 0.125, "epochs": 3},
        },
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump(deep_merge(spec, changes), sort_keys=False))
    return path


NUM_RUNS = 3 + 4 * 2 * 2  # pre-trainings + (3 states + scratch) x 2 tasks x 2 protocols


def _check_cli(path: Path, out: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`study plan|status|results` print what the store holds."""
    capsys.readouterr()
    assert main(["study", "plan", str(path)]) == 0
    assert f"{NUM_RUNS} runs (3 pre-training), {NUM_RUNS} done" in capsys.readouterr().out
    assert main(["study", "status", str(out)]) == 0
    assert "| finetune | 16 |" in capsys.readouterr().out
    assert main(["study", "results", str(path), "--format", "csv"]) == 0
    table = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert len(table) == NUM_RUNS - 3 and {"uar", "accuracy", "state", "seed"} <= set(table.columns)
    assert main(["study", "results", str(out), "--format", "parquet", "--out", str(out / "r.parquet")]) == 0
    assert len(pd.read_parquet(out / "r.parquet")) == NUM_RUNS - 3
    assert main(["study", "status", str(out / "nowhere")]) == 2  # a user error, no traceback
    assert "no results store" in capsys.readouterr().err


@pytest.mark.slow
def test_study_runs_records_and_resumes(tmp_path: Path, world: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_study(tmp_path, world)
    table = plan(path)
    assert len(table) == NUM_RUNS and set(table["status"]) == {"pending"}
    assert not (tmp_path / "out" / "stores").exists()  # planning extracts nothing
    pre = table.set_index("run_id").loc["pretrain/animal"]
    assert pre["clip_epochs"] == pre["clips"] * 2 and pre["depends_on"] == ""
    ft = table.set_index("run_id").loc["finetune/animal/birds/linear/seed1"]
    assert ft["depends_on"] == "pretrain/animal" and ft["clip_epochs"] == ft["clips"]  # a probe: one pass
    full = table.set_index("run_id").loc["finetune/animal/birds/finetune/seed1"]
    assert full["clip_epochs"] == full["clips"] * 3
    assert table.set_index("run_id").loc["finetune/scratch/birds/finetune/seed1", "depends_on"] == ""

    outcome = run(path, jobs=1, run_fn=fast_train, progress=False)
    assert outcome.ok and len(outcome.done) == NUM_RUNS
    out = tmp_path / "out"
    assert (out / "study.yaml").exists() and (out / "manifests" / "states" / "animal.json").exists()
    store = ResultStore(out / "results.sqlite")
    states = store.states().set_index("state")
    assert set(states.index) == {"all", "animal", "half", "scratch"}
    assert states.loc["animal", "num_classes"] < states.loc["all", "num_classes"]
    assert states.loc["half", "num_clips"] < states.loc["all", "num_clips"]
    tasks = store.tasks().set_index("task")
    assert tasks.loc["birds", "task_type"] == "binary" and tasks.loc["commands", "num_classes"] >= 10
    assert tasks.loc["commands", "frames"] < tasks.loc["birds", "frames"]  # 1 s words vs 2 s clips
    runs = store.runs().set_index("run_id")
    assert runs.loc["finetune/half/birds/finetune/seed1", "parent_run"] == "pretrain/half"
    assert runs.loc["finetune/half/birds/finetune/seed1", "subset_hash"] == states.loc["half", "subset_hash"]
    assert len(store.test_metrics()) == 2 * NUM_RUNS

    again = run(path, jobs=1, run_fn=fast_train, progress=False)
    assert again.done == [] and len(again.skipped) == NUM_RUNS
    assert set(plan(path)["status"]) == {"done"}
    _check_cli(path, out, capsys)

    changed = write_study(tmp_path, world, recipes={"finetune": {"epochs": 4}})
    with pytest.raises(UserError, match="used another configuration"):
        run(changed, run_fn=fast_train, progress=False)
    other_features = write_study(tmp_path, world, features="panns16k")
    with pytest.raises(UserError, match="belongs to another study"):
        run(other_features, run_fn=fast_train, progress=False)


def test_unknown_class_fails_before_anything_runs(tmp_path: Path, world: Path) -> None:
    path = write_study(tmp_path, world, pretraining={"states": {"animal": {"categories": ["Animl"]}}})
    with pytest.raises(UserError) as info:
        run(path, run_fn=fast_train, progress=False)
    assert "pretraining.states.animal" in str(info.value) and "Animal" in str(info.value)
    assert not (tmp_path / "out" / "runs").exists() and not (tmp_path / "out" / "stores").exists()


@pytest.mark.slow
def test_ray_backend_and_mlflow_export(tmp_path: Path, world: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ray
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))
    path = write_study(
        tmp_path, world, pretraining={"states": {"all": None, "half": None}}, downstream={"commands": None}, seeds=[1]
    )
    uri = (tmp_path / "mlruns").as_uri()
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)  # not a test cluster
    try:
        outcome = run(path, jobs=2, backend="ray", run_fn=fast_train, progress=False, mlflow=uri)
    finally:
        ray.shutdown()
    assert outcome.ok and len(outcome.done) == 1 + 2 * 2  # animal pre-training; (animal, scratch) x 2 protocols
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("tiny")
    logged = client.search_runs([exp.experiment_id])
    assert len(logged) == 5
    ft = next(r for r in logged if r.info.run_name == "finetune/animal/birds/linear/seed1")
    assert ft.data.params["state"] == "animal" and ft.data.params["recipe.protocol"] == "linear"
    assert ft.data.params["init"] == "pretrain/animal"
    assert "test_uar" in ft.data.metrics and "dev_uar" in ft.data.metrics
    history = client.get_metric_history(ft.info.run_id, "dev_uar")
    assert [m.step for m in history] == [1, 2]
    assert {a.path for a in client.list_artifacts(ft.info.run_id)} == {"metrics.json", "model.pt"}
    from audiotransfer.study import export_runs

    assert export_runs(tmp_path / "out", uri) == 0  # already logged: nothing twice


@pytest.mark.slow
def test_a_checkpoint_state_of_another_front_end_gets_task_stores_of_its_own(
    tmp_path: Path, world: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from audiotransfer.advise.driver import study_tasks, task_for
    from audiotransfer.advise.embed import Candidate
    from audiotransfer.analysis.gather import own_frontend_states
    from audiotransfer.analysis.report_model import frontend_note
    from audiotransfer.data.features import get_recipe
    from audiotransfer.data.store import FeatureStore
    from audiotransfer.manifest import Manifest
    from audiotransfer.models import create_model
    from audiotransfer.study.results import load_results
    from audiotransfer.training.checkpoint import save_model

    demo = get_recipe("demo")
    mine = demo.model_copy(update={"n_mels": 48, "hop_length": 160})  # another front-end than the study's
    net = create_model("cnn6", 2, width=0.125, n_mels=mine.n_mels)
    save_model(tmp_path / "mine.pt", net, labels=["a", "b"], task_type="multiclass", frontend=mine.model_dump())
    states = {"animal": {"categories": ["Animal"]}, "mine": {"checkpoint": str(tmp_path / "mine.pt")}}
    path = write_study(tmp_path, world, protocols=["finetune"], include_scratch=False)
    spec = yaml.safe_load(path.read_text())
    spec["pretraining"]["states"] = states
    del spec["downstream"]["commands"]  # one task is enough
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    assert main(["study", "plan", str(path)]) == 0
    printed = capsys.readouterr().out
    assert f"stores/{mine.hash}/birds" in printed and "front-end demo" in printed and "48 mels" in printed
    assert re.search(r"\| finetune/mine/birds/finetune/seed1 \|.*48 mels", printed)  # each run's front-end
    outcome = run(path, jobs=1, run_fn=recording_train, progress=False)
    assert outcome.ok and len(outcome.done) == 1 + 2  # animal's pre-training + 2 states x 1 task
    out = tmp_path / "out"
    for task in ["birds"]:  # one store per front-end, each read by its own state's runs
        assert FeatureStore(out / "stores" / task).recipe.hash == demo.hash
        assert FeatureStore(out / "stores" / mine.hash / task).recipe.hash == mine.hash
        seconds = Manifest.load(out / "manifests" / "tasks" / task).meta.get("clip_seconds")
        for state, recipe in (("mine", mine), ("animal", demo)):  # its store, crops of its front-end's frames
            read = json.loads(
                (out / "runs" / "finetune" / state / task / "finetune" / "seed1" / "read.json").read_text()
            )
            assert read == {"recipe": recipe.hash, "frames": recipe.frames_for(seconds)}
    states = ResultStore(out / "results.sqlite").states().set_index("state")
    assert states.loc["animal", "frontend"] == "demo" and states.loc["animal", "frontend_hash"] == demo.hash
    assert "48 mels" in states.loc["mine", "frontend"] and states.loc["mine", "frontend_hash"] == mine.hash
    (note,) = frontend_note(states.reset_index())  # the report's line
    assert own_frontend_states(load_results(out)) == {"mine"}  # left out of the shared-input CKA
    assert f"animal: demo (recipe {demo.hash})" in note and f"mine: {mine.describe()}" in note
    res = load_results(out)  # every (task, front-end) store is recorded, and the advisor reads its own
    recorded = res.task_stores.set_index("frontend_hash")["store_path"].to_dict()
    assert recorded == {demo.hash: str(out / "stores" / "birds"), mine.hash: str(out / "stores" / mine.hash / "birds")}
    (task,) = study_tasks(res)
    assert task_for(Candidate("mine", tmp_path / "mine.pt"), task).store.recipe.hash == mine.hash
