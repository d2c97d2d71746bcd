"""`audiotransfer demo --quick` end to end: world, every run of the study, the report, the three lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from audiotransfer.cli import main
from audiotransfer.demo import demo_config
from audiotransfer.study import ResultStore


def test_quick_config_keeps_the_study_design() -> None:
    full, quick = demo_config(), demo_config(quick=True)
    states = full["study"]["pretraining"]["states"]
    assert set(states) == set(quick["study"]["pretraining"]["states"])
    assert {"all", "human", "animal", "things_nature", "music"} <= set(states)
    assert sum("fraction" in s for s in states.values()) >= 2
    budgets = [s for s in states.values() if "num_samples" in s]
    assert len({s["num_samples"] for s in budgets}) == 1 and len({s["num_classes"] for s in budgets}) >= 2
    for cfg in (full, quick):
        assert cfg["study"]["protocols"] == ["finetune", "linear"] and len(cfg["study"]["seeds"]) >= 2
    assert quick["world"]["num_pretrain"] < full["world"]["num_pretrain"]
    assert quick["study"]["recipes"]["finetune"]["model"] == full["study"]["recipes"]["finetune"]["model"]


@pytest.mark.slow
def test_demo_quick_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    runs = ResultStore(out / "results.sqlite").runs()
    states = 9 + 1  # the demo's pre-training states plus scratch
    assert len(runs) == 9 + states * 3 * 2 * 2 and set(runs["status"]) == {"done"}
    assert set(runs["task"].dropna()) == {"scenes", "birds", "commands"}
    assert not list((out / "runs").rglob("checkpoint.pt")) and len(list((out / "runs").rglob("model.pt"))) == len(runs)
    assert (out / "report" / "index.html").exists() and (out / "report" / "summary.md").exists()
    assert f"report (html): {out / 'report' / 'index.html'}" in printed
    lines = printed.split("samples vs classes vs similarity:")[1].strip().splitlines()
    assert [line.split(":")[0].strip() for line in lines[:3]] == ["samples", "classes", "similarity"]
    checks = printed.split("against the world's ground truth")[1].strip().splitlines()[1:]
    assert len(checks) == 13 and all(line.endswith((": agrees", ": DISAGREES")) for line in checks)
    assert sum("(advisor, before fine-tuning)" in line for line in checks) == 3
    advisor = printed.split("before fine-tuning (audiotransfer advise):")[1].strip().splitlines()[:3]
    assert all("the advisor would have picked" in line and "the grid's best" in line for line in advisor)
    summary = json.loads((out / "report" / "summary.json").read_text())
    (title, lines), = summary["sections"].items()
    assert title.startswith("Against the world's ground truth") and len(lines) == 13
    from audiotransfer.advise.rank import NAMES

    names = {*NAMES, "largest", "most_classes", "random"}  # estimators and the free baselines
    assert {c["estimator"] for c in summary["advisor"]["cells"]} == names
    assert len(summary["advisor"]["cells"]) == 3 * 2 * len(names)  # tasks x protocols x rankings
    assert "picking the largest pre-training set" in summary["advisor"]["verdict"]["line"]
    assert {"scores", "data_similarity", "factors"} <= set(summary)
