"""Read-side views of a study: its plan with costs, its progress, and its results as a table."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from audiotransfer.study.frontends import frontend_name
from audiotransfer.study.layout import StudyDir
from audiotransfer.study.store import ResultStore

if TYPE_CHECKING:
    from audiotransfer.data.features import FeatureRecipe, Frontend
    from audiotransfer.study.plan import Run
    from audiotransfer.study.prepare import DataIndex

RESULT_KEYS = ["run_id", "kind", "state", "task", "protocol", "seed"]


def plan(path: str | Path) -> pd.DataFrame:
    """Every run of the study in `path` with its status and cost (clip-epochs); builds manifests, no features."""
    from audiotransfer.study.runner import open_study, prepare

    study, store = open_study(path)
    data, runs = prepare(study, store, features=False, progress=False)
    status = store.status()
    seconds = {str(d.manifest): d.clip_seconds for d in [*data.states.values(), *data.tasks.values()]}
    own = {f.hash: f for f in data.frontends.values()}

    def step(run: Run) -> float:
        recipe = own.get(run.frontend or "", study.features)
        return getattr(recipe, "hop_length", 1) / recipe.sample_rate

    table = pd.DataFrame(
        [
            {
                "run_id": r.run_id,
                "kind": r.kind,
                "depends_on": r.parent or "",
                "clips": r.num_train_clips,
                "epochs": r.epochs,
                "clip_epochs": r.cost,
                "model": r.recipe.model,
                "format": r.format,
                "frontend": frontend_name(own.get(r.frontend or "", study.features)),
                "store": str(r.store),
                "crop_seconds": (r.recipe.frames - 1) * step(r)
                if r.recipe.frames
                else float(seconds.get(str(r.manifest)) or 10.0),
                "status": status.get(r.run_id, "pending"),
                # a public model's run folder (its head, or its whole network) is not a CNN's: not estimated
                "disk_bytes": None if r.format else _run_disk(r, data, study.features.n_mels),
            }
            for r in runs
        ]
    )
    table.attrs["store_bytes"] = _store_disk(data, study.features)
    table.attrs["stores"] = [
        (str(d.store), frontend_name(recipe), d.num_clips) for recipe, d in data.stores(study.features)
    ]
    return table


def _run_disk(run: Run, data: DataIndex, n_mels: int) -> int:
    from audiotransfer.study.cost import run_bytes

    dataset = data.states[run.state] if run.kind == "pretrain" else data.tasks[str(run.task)]
    return run_bytes(
        run.recipe.model,
        run.recipe.width,
        n_mels,
        dataset.num_classes,
        run.protocol == "linear",
        dataset.num_clips,
        run.keep_checkpoint,
    )


def _store_disk(data: DataIndex, features: FeatureRecipe) -> int:
    """Feature stores: the union of the states' clips (one pre-training store) and every task's clips, in
    each front-end's store (a waveform front-end: one value per sample)."""
    from audiotransfer.manifest import Manifest
    from audiotransfer.study.cost import store_bytes

    def size(clips: int, seconds: float | None, recipe: Frontend = features) -> int:
        hop, mels = getattr(recipe, "hop_length", 1), getattr(recipe, "n_mels", 1)
        return store_bytes(clips, seconds, recipe.sample_rate, hop, mels)

    states = list(data.states.values())
    union = set().union(*(set(Manifest.load(d.manifest).clips["clip_id"]) for d in states)) if states else set()
    pretrain = size(len(union), states[0].clip_seconds) if states else 0
    return pretrain + sum(size(d.num_clips, d.clip_seconds, recipe) for recipe, d in data.stores(features))


def open_store(study: str | Path) -> ResultStore:
    """The results store of a study given as its directory or its YAML file."""
    return ResultStore(StudyDir.of(study).require_results(), read_only=True)


def status_table(study: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run counts by kind and status, and the failed or blocked runs with their error line (and its fix)."""
    runs = open_store(study).runs()
    counts = runs.groupby(["kind", "status"]).size().unstack(fill_value=0) if len(runs) else pd.DataFrame()
    bad = runs[runs["status"].isin(["failed", "blocked"])][["run_id", "status", "attempts", "error"]].copy()
    from audiotransfer.study.runner import error_summary

    bad["error"] = bad["error"].fillna("").map(error_summary)
    return counts, bad


def results_table(study: str | Path, kind: str | None = "finetune") -> pd.DataFrame:
    """Final metrics, one row per finished run (wide: one column per metric)."""
    metrics = open_store(study).test_metrics()
    if kind:
        metrics = metrics[metrics["kind"] == kind]
    if metrics.empty:
        return pd.DataFrame(columns=RESULT_KEYS)
    order = {run_id: i for i, run_id in enumerate(dict.fromkeys(metrics["run_id"]))}
    keys = metrics.drop_duplicates([*RESULT_KEYS, "metric"], keep="last")
    wide = keys.set_index([*RESULT_KEYS, "metric"])["value"].unstack("metric").reset_index()
    wide = wide.sort_values("run_id", key=lambda ids: ids.map(order)).reset_index(drop=True)
    wide["seed"] = wide["seed"].astype("Int64")
    return wide.rename_axis(columns=None)


def to_markdown(frame: pd.DataFrame, digits: int = 4) -> str:
    """A GitHub-flavoured Markdown table (no extra dependency)."""

    def cell(v: object) -> str:
        if isinstance(v, float):
            return "" if pd.isna(v) else f"{v:.{digits}f}"
        return "" if v is None else str(v).replace("|", "\\|")

    head = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *rows])
