"""The contracts between packages: the study folder layout (StudyDir) and the run result (RunResult)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from audiotransfer.errors import UserError
from audiotransfer.study.layout import StudyDir, finetune_id, pretrain_id
from audiotransfer.training.result import RunResult


def test_study_dir_names_every_path_and_resolves_a_yaml_to_its_out(tmp_path: Path) -> None:
    folder = StudyDir(tmp_path / "s")
    assert folder.results == tmp_path / "s" / "results.sqlite" and folder.spec == tmp_path / "s" / "study.yaml"
    run = finetune_id("all", "scenes", "freeze:2", 3)
    assert run == "finetune/all/scenes/freeze-2/seed3" and pretrain_id("all") == "pretrain/all"
    assert folder.model(run) == tmp_path / "s" / "runs" / run / "model.pt"
    assert folder.metrics(run).name == "metrics.json" and folder.cache == tmp_path / "s" / "report" / "cache"
    assert StudyDir.of(tmp_path / "s") == folder  # a folder is taken as it is
    with pytest.raises(UserError, match="no results store"):
        folder.require_results()


def test_study_dir_of_a_study_yaml_is_its_out_folder(tmp_path: Path) -> None:
    (tmp_path / "scenes").mkdir()
    spec = {
        "name": "tiny",
        "out": "elsewhere",
        "features": "demo",
        "pretraining": {"states": {"ckpt": {"checkpoint": "scenes", "format": "audiotransfer"}}},
        "downstream": {"scenes": {"corpus": "folder", "root": "scenes"}},
        "protocols": ["linear"],
    }
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(spec))
    assert StudyDir.of(path).root == tmp_path / "elsewhere"


def test_run_result_round_trips_metrics_json_and_keeps_unknown_fields() -> None:
    data = {
        "status": "done",
        "kind": "pretrain",
        "best_epoch": 2,
        "test": {"mAP": 0.5},
        "epochs": [{"epoch": 1, "train_loss": 0.3, "dev": None}],
        "from_a_newer_version": [1, 2],
    }
    result = RunResult.from_json(data)
    assert result.kind == "pretrain" and result.test == {"mAP": 0.5}
    assert result.extra == {"from_a_newer_version": [1, 2]}
    written = json.loads(json.dumps(result.to_json()))
    assert RunResult.from_json(written) == result
    assert written["from_a_newer_version"] == [1, 2] and "checkpoint" not in written  # unset optional fields
