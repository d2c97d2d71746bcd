"""MLflow logging of a study's runs: params (identity + recipe), per-epoch and test metrics, artifacts.

Reads everything from the results store, so it serves both `study run --mlflow URI` (each run logged as it
finishes) and exporting a finished study after the fact. One MLflow experiment per study; each run is
tagged with its study run id and logged once (a run already in the experiment is skipped).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from audiotransfer.errors import UserError
from audiotransfer.study.layout import StudyDir
from audiotransfer.study.store import ResultStore

TAG = "audiotransfer.run_id"
IDENTITY = ("kind", "state", "task", "protocol", "seed", "subset_hash", "parent_run", "code_version")


def export_runs(
    study_dir: str | Path, tracking_uri: str, run_ids: Sequence[str] | None = None, experiment: str | None = None
) -> int:
    """Log the finished runs (all, or `run_ids`) of the study in `study_dir`; return how many were new."""
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise UserError("MLflow logging needs mlflow", fix="pip install 'audiotransfer[mlflow]'") from None
    if "://" not in tracking_uri or tracking_uri.startswith("file:"):
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # asked for explicitly: a local folder store
    folder = StudyDir(Path(study_dir))
    store = ResultStore(folder.results)
    name = experiment or store.identity().get("name") or folder.root.name
    client = MlflowClient(tracking_uri=tracking_uri)
    found = client.get_experiment_by_name(name)
    exp_id = found.experiment_id if found else client.create_experiment(name)
    runs = store.runs().query("status == 'done'")
    if run_ids is not None:
        runs = runs[runs["run_id"].isin(list(run_ids))]
    epochs, metrics = store.epoch_metrics(), store.test_metrics()
    logged = 0
    for row in runs.to_dict("records"):
        run_id = row["run_id"]
        if client.search_runs([exp_id], filter_string=f"tags.`{TAG}` = '{run_id}'", max_results=1):
            continue
        mlrun = client.create_run(exp_id, run_name=run_id, tags={TAG: run_id})
        key = mlrun.info.run_id
        for param, value in _params(row).items():
            client.log_param(key, param, value)
        for e in epochs[epochs["run_id"] == run_id].itertuples():
            if e.value is not None:
                client.log_metric(key, f"{e.split}_{e.metric}", float(e.value), step=int(e.epoch))
        for m in metrics[metrics["run_id"] == run_id].itertuples():
            if m.value is not None:
                client.log_metric(key, f"{m.split}_{m.metric}", float(m.value))
        if row.get("duration_s") is not None:
            client.log_metric(key, "duration_s", float(row["duration_s"]))
        for artifact in (folder.metrics(run_id), folder.model(run_id)):
            if artifact.exists():
                client.log_artifact(key, str(artifact))
        client.set_terminated(key, "FINISHED")
        logged += 1
    return logged


def _params(row: dict[str, Any]) -> dict[str, str]:
    """Identity columns plus the flattened config (`recipe.lr`, `data_hash`, ...), as MLflow strings."""
    params = {k: str(row[k]) for k in IDENTITY if row.get(k) is not None}
    config = json.loads(row["config"]) if row.get("config") else {}
    for key, value in config.items():
        if isinstance(value, dict):
            params.update({f"{key}.{k}": str(v)[:500] for k, v in value.items()})
        elif value is not None:
            params[key] = str(value)[:500]
    return params
