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
    assert len(results) == 1 and results[0]["model"] == "cnn6" and results[0]["clips_per_s"] > 0
    assert 0 <= results[0]["data_wait"] <= 1 and (tmp_path / "r.json").exists()
    assert "saved clips/s" not in out  # a CPU smoke figure is never saved as a throughput
