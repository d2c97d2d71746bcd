"""A finished (or partly finished) study read back as tables: runs, test scores, states, tasks, and where
each state's pre-trained and fine-tuned models lie. What is missing is recorded in `notes` instead of failing,
so that the report and the advisor can say so and use the rest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from audiotransfer.errors import UserError
from audiotransfer.study.layout import StudyDir, pretrain_id
from audiotransfer.study.spec import SCRATCH


@dataclass
class StudyResults:
    """The tables of one study as DataFrames, plus notes on what is missing."""

    study_dir: Path
    name: str
    runs: pd.DataFrame
    test: pd.DataFrame  # finished fine-tune runs: state, task, protocol, seed, metric, value
    states: pd.DataFrame
    tasks: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    pretrain: pd.DataFrame = field(default_factory=pd.DataFrame)  # pre-training test metrics (long)
    task_stores: pd.DataFrame = field(default_factory=pd.DataFrame)  # task, frontend_hash, frontend, store_path

    def path(self, value: Any) -> Path | None:
        """A path cell of the store, resolved against the study directory when relative."""
        if value is None or (isinstance(value, float) and np.isnan(value)) or str(value) == "":
            return None
        p = Path(str(value))
        return p if p.is_absolute() else self.study_dir / p

    @property
    def dir(self) -> StudyDir:
        """The study folder's layout."""
        return StudyDir(self.study_dir)

    def __repr__(self) -> str:
        done = int((self.runs["status"] == "done").sum()) if "status" in self.runs else 0
        return (
            f"StudyResults({self.name!r}, {len(self.runs)} runs ({done} done), {len(self.test)} test scores, "
            f"{len(self.states)} states, {len(self.tasks)} tasks, {len(self.notes)} notes)"
        )


def load_results(study_dir: str | Path) -> StudyResults:
    """Read `study_dir/results.sqlite`; a missing or empty store gives empty tables and a note.

    `test` holds one row per finished fine-tuning run and metric (state, task, protocol, seed, metric,
    value); `runs`, `states` and `tasks` are the store's tables; `notes` says what is missing. A folder
    where no study has run yet (`run_study`'s example reads a finished one):

    Examples:
        >>> import tempfile
        >>> res = load_results(tempfile.mkdtemp())
        >>> res  # doctest: +ELLIPSIS
        StudyResults('tmp...', 0 runs (0 done), 0 test scores, 0 states, 0 tasks, 1 notes)
        >>> res.notes  # doctest: +ELLIPSIS
        ['.../results.sqlite does not exist: the study has not been run, so there are no results yet.']
    """
    from audiotransfer.study.store import ResultStore

    study_dir = Path(study_dir)
    if not study_dir.is_dir():
        raise UserError(
            f"{study_dir}: study directory not found",
            fix="pass the study's output folder (its 'out' field), e.g. `audiotransfer study report out/`",
        )
    empty = pd.DataFrame(columns=["state", "task", "protocol", "seed", "metric", "value"])
    db = StudyDir(study_dir).results
    if not db.exists():
        return StudyResults(
            study_dir,
            study_dir.name,
            pd.DataFrame(),
            empty,
            pd.DataFrame(),
            pd.DataFrame(),
            [f"{db} does not exist: the study has not been run, so there are no results yet."],
        )
    store = ResultStore(db, read_only=True)
    runs, states, tasks = store.runs(), store.states(), store.tasks()
    name = store.identity().get("name", study_dir.name)
    metrics = store.test_metrics()
    done = set(runs.loc[runs["status"] == "done", "run_id"]) if not runs.empty else set()
    metrics = metrics[(metrics["split"] == "test") & metrics["run_id"].isin(done)]
    test = metrics[metrics["kind"] == "finetune"].reset_index(drop=True)
    res = StudyResults(
        study_dir,
        name,
        runs,
        test,
        states,
        tasks,
        pretrain=metrics[metrics["kind"] == "pretrain"].reset_index(drop=True),
        task_stores=store.task_stores(),
    )
    _note_missing(res)
    res.notes.extend(run_notes(runs))
    res.notes.extend(store_notes(res))
    return res


def store_notes(res: StudyResults) -> list[str]:
    """Where each task's features of each front-end lie, when the states read more than one front-end."""
    stores = res.task_stores
    if stores.empty or stores["frontend_hash"].nunique() < 2:
        return []
    parts = [
        f"{frontend}: " + ", ".join(f"{t} ({p})" for t, p in zip(group["task"], group["store_path"], strict=True))
        for frontend, group in stores.groupby("frontend", sort=False)
    ]
    return ["Task feature stores by front-end: " + "; ".join(parts) + "."]


def run_notes(runs: pd.DataFrame) -> list[str]:
    """The finished runs' own notes (what a run did other than its recipe says) and best-epoch rules, each
    once with the number of runs it applies to; a rule every run shares is not repeated."""
    if runs.empty or "notes" not in runs:
        return []
    done = runs[runs["status"] == "done"]
    counts: dict[str, int] = {}
    for cell in done["notes"].dropna():
        for note in dict.fromkeys(json.loads(cell)):
            counts[note] = counts.get(note, 0) + 1
    lines = [f"Run note ({n} of {len(done)} finished runs): {note}" for note, n in counts.items()]
    rules = done["best_epoch_rule"].dropna().value_counts()
    if len(rules) > 1 or (len(rules) == 1 and rules.iloc[0] < len(done)):
        lines += [f"Best epoch ({n} of {len(done)} finished runs): {rule}" for rule, n in rules.items()]
    return lines


def _note_missing(res: StudyResults) -> None:
    ft = res.runs[res.runs["kind"] == "finetune"] if not res.runs.empty else pd.DataFrame()
    if ft.empty:
        res.notes.append("The store holds no fine-tuning runs yet.")
        return
    for task in sorted(ft["task"].dropna().unique()):
        if task not in set(res.test["task"]):
            res.notes.append(f"Task '{task}' has no finished runs: it is left out of the scores and factors.")
    for state in sorted(ft["state"].unique()):
        if state not in set(res.test["state"]):
            res.notes.append(f"State '{state}' has no finished fine-tuning runs.")
    known = set(res.states["state"]) if not res.states.empty else set()
    for state in sorted(set(res.test["state"]) - known - {SCRATCH}):
        res.notes.append(
            f"State '{state}' is missing from the store's states table: its samples and classes "
            "are unknown, so it is left out of the factor analysis."
        )
    unfinished = ft[ft["status"] != "done"]
    if len(unfinished):
        counts = unfinished["status"].value_counts().to_dict()
        res.notes.append(f"{len(unfinished)} of {len(ft)} fine-tuning runs are not finished ({counts}).")


def pretrained_dir(res: StudyResults, state: str) -> Path | None:
    """The run folder holding a state's pre-trained `model.pt`, or None (scratch, imported, missing, or its
    pre-training run is not finished: a half-trained model would distort every measure)."""
    if not res.runs.empty:
        run = res.runs[res.runs["run_id"] == pretrain_id(state)]
        if len(run) and run["status"].iloc[0] != "done":
            return None
    candidates = [res.dir.run_dir(pretrain_id(state))]
    if not res.states.empty and "checkpoint" in res.states and state in set(res.states["state"]):
        ckpt = res.path(res.states.set_index("state").loc[state, "checkpoint"])
        if ckpt is not None:
            candidates.append(ckpt if ckpt.is_dir() else ckpt.parent)
    return next((c for c in candidates if (c / "model.pt").exists()), None)


def public_states(res: StudyResults) -> dict[str, tuple[Path, str]]:
    """State -> (checkpoint, format) of the study's public pre-trained models: the states whose runs read
    them in a public family's format (a model folder or file, or a name its family ships, e.g. CREPE's
    `tiny`)."""
    if res.runs.empty or res.states.empty:
        return {}
    formats: dict[str, str] = {}
    for state, config in res.runs.loc[res.runs["kind"] == "finetune", ["state", "config"]].itertuples(index=False):
        found = json.loads(config).get("format")
        if found:
            formats[str(state)] = str(found)
    checkpoints = res.states.set_index("state")["checkpoint"] if "checkpoint" in res.states else pd.Series()
    found_states = {}
    for state, fmt in formats.items():
        cell = checkpoints.get(state)
        path = res.path(cell)
        if path is not None:
            found_states[state] = (path if path.exists() else Path(str(cell)), fmt)
    return found_states


def finetuned_dir(res: StudyResults, state: str, task: str, protocol: str) -> Path | None:
    """The run folder of the lowest finished seed of (state, task, protocol), or None."""
    if res.runs.empty:
        return None
    r = res.runs
    hits = r[
        (r["kind"] == "finetune")
        & (r["state"] == state)
        & (r["task"] == task)
        & (r["protocol"] == protocol)
        & (r["status"] == "done")
    ].sort_values("seed")
    for run_id in hits["run_id"]:
        if res.dir.model(run_id).exists():
            return res.dir.run_dir(run_id)
    return None
