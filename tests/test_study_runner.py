"""The runner with a trivial injected run function: order, failure isolation, retries, resume after a kill."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from audiotransfer.study.backends import LocalBackend
from audiotransfer.study.layout import StudyDir
from audiotransfer.study.plan import Plan, Run
from audiotransfer.study.runner import execute
from audiotransfer.study.store import ResultStore
from audiotransfer.training.recipe import TrainRecipe
from audiotransfer.training.result import RunResult

HERE = Path(__file__).resolve().parent


def make_plan(
    root: Path,
    states: tuple[str, ...] = ("a", "b"),
    tasks: tuple[str, ...] = ("t1", "t2"),
    seeds: tuple[int, ...] = (1, 2),
) -> Plan:
    """A study-shaped plan (pretrain per state, fine-tunes depending on it) without real data."""
    plan = Plan(SimpleNamespace(path=root / "study.yaml"))  # type: ignore[arg-type]
    folder = StudyDir(root)
    for state in states:
        pre = Run.pretrain(
            folder=folder,
            state=state,
            recipe=TrainRecipe(epochs=2),
            manifest=root / "m",
            store=root / "s",
            data_hash="h",
            num_train_clips=10,
        )
        plan.runs[pre.run_id] = pre
        for task in tasks:
            for seed in seeds:
                run = Run.finetune(
                    folder=folder,
                    state=state,
                    task=task,
                    protocol="linear",
                    seed=seed,
                    recipe=TrainRecipe(epochs=3),
                    manifest=root / "m",
                    store=root / "s",
                    data_hash="h",
                    num_train_clips=5,
                    init="ckpt",
                    parent=pre.run_id,
                    subset_hash="h",
                )
                plan.runs[run.run_id] = run
    return plan


def fake_train(run: Run) -> RunResult:
    """Stands in for the engine: idempotent per run dir (a finished dir returns its metrics), logs trainings.

    A state named `bad` always fails; a run dir holding `flaky` fails once; `SLOW` env makes runs last.
    """
    metrics = run.out_dir / "metrics.json"
    if metrics.exists():
        return RunResult.from_json(json.loads(metrics.read_text()))
    if run.state == "bad":
        raise ValueError(f"cannot train {run.run_id}")
    flaky = run.out_dir / "flaky"
    if flaky.exists():
        flaky.unlink()
        raise RuntimeError("transient failure")
    time.sleep(float(os.environ.get("SLOW", "0")))
    runs_dir = run.out_dir.parents[len(Path(run.run_id).parts) - 1]
    if run.parent:
        assert (runs_dir / run.parent / "metrics.json").exists(), "parent not finished"
    result = {
        "status": "done",
        "epochs": [{"epoch": 1, "train_loss": 0.5, "dev": {"uar": 0.4}}],
        "test": {"uar": 0.5 + (run.seed or 0) / 10},
        "duration_s": 0.01,
    }
    run.out_dir.mkdir(parents=True, exist_ok=True)
    with open(runs_dir / "trained.log", "a") as log:
        log.write(run.run_id + "\n")
    metrics.write_text(json.dumps(result))
    return RunResult.from_json(result)


def _register(plan: Plan, store: ResultStore) -> None:
    store.register([r.record("test") for r in plan])


def test_runs_everything_in_dependency_order_in_processes(tmp_path: Path) -> None:
    plan = make_plan(tmp_path)
    store = ResultStore(tmp_path / "results.sqlite")
    _register(plan, store)
    outcome = execute(plan, store, LocalBackend(jobs=2), jobs=2, run_fn=fake_train, progress=False)
    assert outcome.ok and sorted(outcome.done) == sorted(plan.runs)
    assert set(store.status().values()) == {"done"}
    trained = (tmp_path / "runs" / "trained.log").read_text().split()
    assert sorted(trained) == sorted(plan.runs)  # each trained once
    assert len(store.test_metrics()) == len(plan)
    again = execute(plan, store, LocalBackend(jobs=2), jobs=2, run_fn=fake_train, progress=False)
    assert again.done == [] and sorted(again.skipped) == sorted(plan.runs)


def test_failure_is_isolated_and_blocks_only_dependents(tmp_path: Path) -> None:
    plan = make_plan(tmp_path, states=("a", "bad"))
    store = ResultStore(tmp_path / "results.sqlite")
    _register(plan, store)
    outcome = execute(plan, store, LocalBackend(jobs=2), jobs=2, run_fn=fake_train, progress=False)
    assert list(outcome.failed) == ["pretrain/bad"]
    assert "ValueError: cannot train pretrain/bad" in outcome.failed["pretrain/bad"]
    assert sorted(outcome.blocked) == sorted(r for r in plan.runs if r.startswith("finetune/bad/"))
    assert sorted(outcome.done) == sorted(r for r in plan.runs if "/a" in r)
    runs = store.runs().set_index("run_id")
    assert runs.loc["pretrain/bad", "status"] == "failed"
    assert "cannot train" in runs.loc["pretrain/bad", "error"]
    assert set(runs.loc[outcome.blocked, "status"]) == {"blocked"}


def test_retries_recover_a_transient_failure(tmp_path: Path) -> None:
    plan = make_plan(tmp_path, states=("a",), tasks=("t1",), seeds=(1,))
    flaky = plan.runs["finetune/a/t1/linear/seed1"].out_dir
    flaky.mkdir(parents=True)
    (flaky / "flaky").touch()
    store = ResultStore(tmp_path / "results.sqlite")
    _register(plan, store)
    outcome = execute(plan, store, LocalBackend(jobs=1), jobs=1, retries=1, run_fn=fake_train, progress=False)
    assert outcome.ok and len(outcome.done) == 2
    assert store.runs().set_index("run_id").loc["finetune/a/t1/linear/seed1", "attempts"] == 2


SCRIPT = """
import sys
sys.path.insert(0, {here!r})
from pathlib import Path
from test_study_runner import fake_train, make_plan
from audiotransfer.study.backends import LocalBackend
from audiotransfer.study.runner import execute
from audiotransfer.study.store import ResultStore
root = Path({root!r})
plan = make_plan(root, states=("a", "b"), tasks=("t1", "t2"), seeds=(1, 2))
store = ResultStore(root / "results.sqlite")
store.register([r.record("test") for r in plan])
store.reset_unfinished()
execute(plan, store, LocalBackend(jobs=2), jobs=2, run_fn=fake_train, progress=False)
"""


def _group_gone(pgid: int, within_s: float) -> bool:
    deadline = time.time() + within_s
    while time.time() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


@pytest.mark.slow
def test_killed_study_resumes_without_repeating_or_losing_runs(tmp_path: Path) -> None:
    script = SCRIPT.format(here=str(HERE), root=str(tmp_path))
    env = {**os.environ, "SLOW": "0.3"}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, start_new_session=True)
    store_path = tmp_path / "results.sqlite"
    deadline = time.time() + 60
    while time.time() < deadline:
        time.sleep(0.2)
        if store_path.exists() and sum(s == "done" for s in ResultStore(store_path).status().values()) >= 3:
            break
    proc.kill()  # only the driver: its workers must notice and exit by themselves
    proc.wait()
    assert _group_gone(proc.pid, within_s=10), "workers of the killed study live on"

    status = ResultStore(store_path).status()
    finished_before = {r for r, s in status.items() if s == "done"}
    assert 3 <= len(finished_before) < 10, "the kill should land mid-study"
    done = subprocess.run([sys.executable, "-c", script], env={**os.environ, "SLOW": "0"}, timeout=120)
    assert done.returncode == 0
    store = ResultStore(store_path)
    assert set(store.status().values()) == {"done"} and len(store.status()) == 10
    trained = (tmp_path / "runs" / "trained.log").read_text().split()
    assert sorted(trained) == sorted(store.status())  # no run trained twice, none lost
    metrics = store.test_metrics()
    assert len(metrics) == 10 and not metrics.duplicated(["run_id", "metric"]).any()
