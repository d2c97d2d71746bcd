"""benchmarks/bench_gpu.py: on a machine without CUDA its smoke configuration trains through the real loader
from a real store and says that GPU figures need a GPU."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_gpu.py"


@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU the script measures the real configuration")
def test_cpu_smoke_run(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("bench_gpu", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)  # type: ignore[union-attr]
    results = bench.main(["--json", str(tmp_path / "r.json"), "--save"])
    out = capsys.readouterr().out
    assert "GPU figures need a GPU" in out
    assert [(r["model"], r["fused"]) for r in results] == [("cnn6", 1), ("cnn6", 2)]  # alone, then 2 fused runs
    assert all(r["clips_per_s"] > 0 for r in results)
    assert "runs per hour" in out and "device-hours" in out
    assert 0 <= results[0]["data_wait"] <= 1 and (tmp_path / "r.json").exists()
    assert "saved clips/s" not in out  # a CPU smoke figure is never saved as a throughput
