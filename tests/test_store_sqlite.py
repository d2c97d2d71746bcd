"""The SQLite results store: round trips, resume semantics, identity checks and concurrent writers."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3
from pathlib import Path

import pytest

from audiotransfer.errors import UserError
from audiotransfer.study.store import ResultStore
from audiotransfer.training.result import RunResult


def _result(run: int, epochs: int = 3) -> dict:
    """A `metrics.json` as the training engine writes it (DESIGN.md)."""
    return {
        "status": "done",
        "kind": "finetune",
        "select_metric": "uar",
        "best_epoch": 2,
        "epochs": [
            {"epoch": e, "train_loss": 1.0 / e, "dev": {"uar": 0.1 * e + run, "accuracy": 0.5}, "seconds": 0.1}
            for e in range(1, epochs + 1)
        ],
        "test": {"accuracy": 0.5 + run, "uar": 0.25 + run, "macro_f1": 0.2},
        "num_train_clips": 10,
        "duration_s": 1.5,
    }


def _row(run_id: str, state: str = "all", seed: int = 1) -> dict:
    return {
        "run_id": run_id,
        "kind": "finetune",
        "state": state,
        "task": "scenes",
        "protocol": "linear",
        "seed": seed,
        "config": {"recipe": {"lr": 0.001}},
        "parent_run": f"pretrain/{state}",
    }


def test_round_trip_long_tables(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "results.sqlite")
    store.register([_row("a"), _row("b", seed=2)])
    store.mark_running("a")
    store.mark_done("a", RunResult.from_json(_result(0)))
    runs = store.runs().set_index("run_id")
    assert runs.loc["a", "status"] == "done" and runs.loc["b", "status"] == "pending"
    assert runs.loc["a", "attempts"] == 1 and runs.loc["a", "duration_s"] == 1.5
    test = store.test_metrics()
    assert sorted(test["metric"]) == ["accuracy", "macro_f1", "uar"]
    assert test.set_index("metric").loc["uar", "value"] == pytest.approx(0.25)
    epochs = store.epoch_metrics()
    dev_uar = epochs.query("split == 'dev' and metric == 'uar'")
    assert dev_uar["epoch"].tolist() == [1, 2, 3]
    assert dev_uar["value"].tolist() == pytest.approx([0.1, 0.2, 0.3])
    assert set(epochs.query("split == 'train'")["metric"]) == {"loss", "seconds"}
    # recording the same run again replaces its rows instead of duplicating them
    store.mark_done("a", RunResult.from_json(_result(0)))
    assert len(store.test_metrics()) == 3 and len(store.epoch_metrics()) == len(epochs)


def test_register_keeps_finished_runs_and_resets_running(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "results.sqlite")
    store.register([_row("a"), _row("b")])
    store.mark_running("a")
    store.mark_done("a", RunResult.from_json(_result(0)))
    store.mark_running("b")
    changed = {**_row("a"), "config": {"recipe": {"lr": 1.0}}}
    store.register([changed, {**_row("b"), "config": {"recipe": {"lr": 1.0}}}])
    runs = store.runs().set_index("run_id")
    assert runs.loc["a", "config"] == '{"recipe": {"lr": 0.001}}'  # a finished run keeps what it ran with
    assert runs.loc["b", "config"] == '{"recipe": {"lr": 1.0}}'
    store.reset_unfinished()
    assert store.status() == {"a": "done", "b": "pending"}
    store.mark_failed("b", "boom")
    store.mark_blocked(["a", "b"], "parent failed")
    assert store.status() == {"a": "done", "b": "blocked"}


def test_store_of_another_study_is_refused(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "results.sqlite")
    store.claim({"name": "one", "feature_recipe": "abc"}, where="one.yaml")
    store.claim({"name": "one", "feature_recipe": "abc"}, where="one.yaml")
    with pytest.raises(UserError, match=r"belongs to another study.*feature_recipe"):
        store.claim({"name": "one", "feature_recipe": "xyz"}, where="two.yaml")


def test_wal_mode_and_tables(tmp_path: Path) -> None:
    ResultStore(tmp_path / "r.sqlite")
    db = sqlite3.connect(tmp_path / "r.sqlite")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"runs", "epochs", "metrics", "states", "tasks"} <= tables


def _writer(path: str, worker: int, count: int) -> None:
    store = ResultStore(path)
    for i in range(count):
        run_id = f"w{worker}/r{i}"
        store.register([_row(run_id, state=f"s{worker}", seed=i)])
        store.mark_running(run_id)
        store.mark_done(run_id, RunResult.from_json(_result(i, epochs=4)))
        store.put_state(f"s{worker}", num_clips=i)


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "results.sqlite"
    ResultStore(path)
    workers, count = 4, 15
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(str(path), w, count)) for w in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0] * workers
    store = ResultStore(path)
    runs = store.runs()
    assert len(runs) == workers * count and set(runs["status"]) == {"done"}
    assert len(store.test_metrics()) == workers * count * 3
    assert len(store.epoch_metrics()) == workers * count * 4 * 4  # 4 epochs x (loss, seconds, dev uar, dev acc)
    assert len(store.states()) == workers
