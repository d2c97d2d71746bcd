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
    assert not list((out / "world").rglob("*.wav"))  # extracted: the audio can be rendered again from the seed
    assert f"report (html): {out / 'report' / 'index.html'}" in printed
    lines = printed.split("samples vs classes vs similarity:")[1].strip().splitlines()
    assert [line.split(":")[0].strip() for line in lines[:3]] == ["samples", "classes", "similarity"]
    checks = printed.split("against the world's ground truth")[1].strip().splitlines()[1:]
    assert len(checks) == 13 and all(line.endswith((": agrees", ": DISAGREES")) for line in checks)
    assert sum("(advisor, before fine-tuning)" in line for line in checks) == 3
    advisor = printed.split("before fine-tuning (audiotransfer advise):")[1].strip().splitlines()[:3]
    assert all("the advisor would have picked" in line and "the grid's best" in line for line in advisor)
    summary = json.loads((out / "report" / "summary.json").read_text())
    ((title, lines),) = summary["sections"].items()
    assert title.startswith("Against the world's ground truth") and len(lines) == 13
    from audiotransfer.advise.rank import NAMES

    names = {*NAMES, "largest", "most_classes", "random"}  # estimators and the free baselines
    assert {c["estimator"] for c in summary["advisor"]["cells"]} == names
    assert len(summary["advisor"]["cells"]) == 3 * 2 * len(names)  # tasks x protocols x rankings
    assert "picking the largest pre-training set" in summary["advisor"]["verdict"]["line"]
    assert {"scores", "data_similarity", "factors"} <= set(summary)


@pytest.mark.slow
def test_demo_removes_the_world_audio_and_resumes_without_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A tiny demo spec: the world's audio goes once the features are extracted; a rerun of the same study
    neither renders it again nor retrains (the report is left out: it needs the demo's full design)."""
    import yaml

    import audiotransfer.demo.run as demo_run
    from audiotransfer.demo import run_demo

    raw = yaml.safe_load(demo_run.DEMO_SPEC.read_text())
    raw["world"] = {
        "seed": 0,
        "num_pretrain": 60,
        "num_eval": 20,
        "num_scenes": 60,
        "num_birds": 20,
        "num_commands": 24,
        "num_speakers": 8,
    }
    raw["study"].update(
        seeds=[1],
        protocols=["finetune"],
        include_scratch=False,
        downstream={"scenes": raw["study"]["downstream"]["scenes"]},
    )
    raw["study"]["pretraining"]["states"] = {"all": {"description": "every clip"}}
    raw["study"]["recipes"] = {
        "pretrain": {"model": "cnn6", "width": 0.125, "steps": 2, "batch_size": 16},
        "finetune": {"model": "cnn6", "width": 0.125, "epochs": 1, "batch_size": 16},
    }
    spec = tmp_path / "tiny.yaml"
    spec.write_text(yaml.safe_dump(raw))
    monkeypatch.setattr(demo_run, "_report", lambda *args: ({}, [], []))
    out = tmp_path / "demo"
    first = run_demo(out, jobs=1, progress=False, spec=spec)
    assert first.outcome.ok and len(first.outcome.done) == 2
    assert not list((out / "world").rglob("*.wav")) and (out / "world" / "train_segments.csv").exists()
    again = run_demo(out, jobs=1, progress=False, spec=spec)
    assert len(again.outcome.skipped) == 2 and not again.outcome.done
    assert not list((out / "world").rglob("*.wav"))
    kept = run_demo(out, jobs=1, progress=False, spec=spec, keep_audio=True)  # asked for: rendered again
    assert len(list((out / "world").rglob("*.wav"))) == 60 + 20 + 60 + 20 + 24 and kept.outcome.ok
