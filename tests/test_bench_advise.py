"""benchmarks/bench_advise.py: the rule that chooses the default from its table, and the reuse of finished
demo folders (never re-run)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

import audiotransfer.demo
from audiotransfer.demo.run import demo_config
from audiotransfer.study.store import ResultStore
from audiotransfer.training.result import RunResult

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_advise.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_advise", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _table(rows: dict[str, tuple[float, float, float]]) -> pd.DataFrame:
    """estimator -> (mean tau vs fine-tuned, paired interval low vs largest, seconds); 6 cells each."""
    table = pd.DataFrame(rows, index=["tau_finetune", "vs_largest_low", "seconds"]).T
    return table.assign(vs_largest_cells=6)


def test_the_rule_picks_the_best_that_beats_largest_or_a_cheap_near_tie(bench) -> None:
    table = _table(
        {
            "probe": (0.70, 0.10, 100.0),
            "logme": (0.69, 0.05, 60.0),  # within 0.02 but not 2x cheaper
            "knn": (0.68, 0.08, 40.0),  # within 0.02 and 2.5x cheaper: it wins
            "hscore": (0.75, -0.01, 1.0),  # the highest tau, but its interval vs largest reaches zero
            "largest": (0.72, float("nan"), 0.0),  # a baseline is never chosen
        }
    )
    assert bench.choose_default(table)[0] == "knn"
    assert bench.choose_default(table.drop(index="knn"))[0] == "probe"
    cheap_but_far = table.drop(index="knn").copy()
    cheap_but_far.loc["gbc"] = (0.67, 0.2, 1.0, 6)  # 100x cheaper but 0.03 below
    assert bench.choose_default(cheap_but_far)[0] == "probe"
    few = table.assign(vs_largest_cells=3)  # too few cells for a paired interval
    assert bench.choose_default(few)[0] is None and "no estimator beat" in bench.choose_default(few)[1]


def _finished_demo(folder: Path, seed: int) -> Path:
    (folder / "world").mkdir(parents=True)
    (folder / "world" / "world.json").write_text(json.dumps({"params": {"seed": seed}, "complete": True}))
    (folder / "study.yaml").write_text(yaml.safe_dump({**demo_config(False)["study"], "out": "."}, sort_keys=False))
    store = ResultStore(folder / "results.sqlite")
    store.claim({"name": "demo"}, str(folder / "study.yaml"))
    store.register([dict(run_id="pretrain/all", kind="pretrain", state="all", config={})])
    store.mark_done("pretrain/all", RunResult(test={"mAP": 0.3}, duration_s=1.0))
    return folder


def test_finished_demos_are_reused_without_running_them(bench, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(audiotransfer.demo, "run_demo", lambda *a, **k: pytest.fail("a finished demo was run"))
    root = tmp_path / "demos"
    _finished_demo(root / "world0", 0)
    _finished_demo(root / "audiotransfer-demo-world1", 1)
    assert bench.demo_folders([0, 1], root, False, 1, True) == {
        0: root / "world0",
        1: root / "audiotransfer-demo-world1",
    }
    monkeypatch.chdir(root)
    assert bench.demo_folders([1], None, False, 1, True) == {1: Path("audiotransfer-demo-world1")}
    assert not bench.finished_demo(root / "world0", 1, False)  # another world's folder
    assert not bench.finished_demo(root / "world0", 0, True)  # the quick demo is another study
    with pytest.raises(SystemExit, match="no finished demo"):
        bench.demo_folders([2], root, False, 1, True)
    ResultStore(root / "world0" / "results.sqlite").register(
        [dict(run_id="pretrain/x", kind="pretrain", state="x", config={})]
    )
    assert not bench.finished_demo(root / "world0", 0, False)  # a run still to do: run_demo would resume it


def test_validate_prints_the_rule_and_its_pick_after_the_design_table(bench, tmp_path: Path, capsys) -> None:
    from test_advise import make_study

    bench.validate([make_study(tmp_path / "study")], [], "knn")
    text = capsys.readouterr().out
    table, rule = text.index("4. design: 1 studies"), text.index("default by the rule: ")
    assert table < text.index("largest       +1.00") < rule  # the planted scores grow with the clip count
    assert "no estimator beat `largest`" in text[rule:] and "held-out" not in text
