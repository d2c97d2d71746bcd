"""A run's notes and best-epoch rule: kept in the results store (migrating an older one) and in the report."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from audiotransfer.study.layout import StudyDir
from audiotransfer.study.results import load_results
from audiotransfer.study.store import SCHEMA_VERSION, ResultStore
from audiotransfer.training.result import RunResult

NO_DEV = "the task has no dev split: the last epoch is kept"
OTHER_ARCH = "the starting state is a cnn10: that architecture is trained and recorded"


def _row(run_id: str) -> dict:
    return {"run_id": run_id, "kind": "finetune", "state": "s", "task": "t", "protocol": "linear", "seed": 1}


def _version_2_store(path: Path) -> None:
    """A results database as schema version 2 wrote it: no run notes or best-epoch rule."""
    ResultStore(path)
    with sqlite3.connect(path) as db:
        db.execute("ALTER TABLE runs DROP COLUMN notes")
        db.execute("ALTER TABLE runs DROP COLUMN best_epoch_rule")
        db.execute("PRAGMA user_version=2")


def test_notes_and_rule_are_stored_after_migrating_a_version_2_database(tmp_path: Path) -> None:
    path = StudyDir(tmp_path).results
    _version_2_store(path)
    store = ResultStore(path)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
    store.register([{**_row(f"r{i}"), "config": {}} for i in range(3)])
    rule = "last epoch (no dev split)"
    store.mark_done("r0", RunResult(test={"uar": 0.5}, best_epoch_rule=rule, notes=[NO_DEV, OTHER_ARCH]))
    store.mark_done("r1", RunResult(test={"uar": 0.6}, best_epoch_rule=rule, notes=[NO_DEV]))
    store.mark_done("r2", RunResult(test={"uar": 0.7}, best_epoch_rule="best dev uar"))
    runs = store.runs().set_index("run_id")
    assert json.loads(runs.loc["r0", "notes"]) == [NO_DEV, OTHER_ARCH] and json.loads(runs.loc["r2", "notes"]) == []
    assert runs.loc["r1", "best_epoch_rule"] == rule

    notes = load_results(tmp_path).notes
    assert f"Run note (2 of 3 finished runs): {NO_DEV}" in notes
    assert f"Run note (1 of 3 finished runs): {OTHER_ARCH}" in notes
    assert f"Best epoch (2 of 3 finished runs): {rule}" in notes
    assert "Best epoch (1 of 3 finished runs): best dev uar" in notes


def test_a_rule_every_run_shares_is_not_repeated(tmp_path: Path) -> None:
    store = ResultStore(StudyDir(tmp_path).results)
    store.register([{**_row(f"r{i}"), "config": {}} for i in range(2)])
    for i in range(2):
        store.mark_done(f"r{i}", RunResult(test={"uar": 0.5}, best_epoch_rule="best dev uar"))
    assert not [n for n in load_results(tmp_path).notes if n.startswith(("Best epoch", "Run note"))]
