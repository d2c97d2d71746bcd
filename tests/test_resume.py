"""A run killed at any point and restarted ends with exactly the metrics of an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from audiotransfer.cli import main
from test_training import make_task

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}


def _command(manifest: Path, store: Path, out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "audiotransfer.cli",
        "finetune",
        "--from",
        "scratch",
        "--manifest",
        str(manifest),
        "--store",
        str(store),
        "--model",
        "cnn6",
        "--width",
        "0.125",
        "--epochs",
        "5",
        "--batch-size",
        "4",
        "--seed",
        "7",
        "--checkpoint-every",
        "3",
        "--no-progress",
        "--out",
        str(out),
    ]


def _in_process(command: list[str]) -> None:
    """Run the same command in this process, single-threaded like the subprocesses."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(command[3:]) == 0
    finally:
        torch.set_num_threads(threads)


def _kill_when(command: list[str], ready: callable) -> None:
    """Start the run and SIGKILL it as soon as `ready()` holds; it must not have finished by then."""
    proc = subprocess.Popen(command, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not ready() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate()
    assert proc.returncode == -signal.SIGKILL, err.decode()


def _comparable(run: Path) -> tuple[dict, dict]:
    metrics = json.loads((run / "metrics.json").read_text())
    for epoch in metrics["epochs"]:
        epoch.pop("seconds"), epoch.pop("data_wait_s")
    kept = {k: metrics[k] for k in ("status", "best_epoch", "epochs", "test")}
    return kept, torch.load(run / "model.pt", weights_only=True)["model"]


@pytest.mark.slow
def test_killed_run_resumes_to_identical_metrics(tmp_path: Path) -> None:
    manifest, store = make_task(tmp_path, "res", "multiclass", {"train": 48, "dev": 12, "test": 12})
    manifest.save(tmp_path / "m")
    m = tmp_path / "m" / "res"
    ref, run = tmp_path / "ref", tmp_path / "run"
    _in_process(_command(m, store.root, ref))

    def epochs_done() -> int:
        try:
            return len(json.loads((run / "metrics.json").read_text())["epochs"])
        except (FileNotFoundError, json.JSONDecodeError):
            return 0

    # first kill: right after the first mid-epoch checkpoint; second: once two epochs are recorded
    _kill_when(_command(m, store.root, run), lambda: (run / "checkpoint.pt").exists())
    assert epochs_done() == 0
    _kill_when(_command(m, store.root, run), lambda: epochs_done() >= 2)
    assert 2 <= epochs_done() < 5
    _in_process(_command(m, store.root, run))

    (ref_metrics, ref_state), (metrics, state) = _comparable(ref), _comparable(run)
    assert metrics == ref_metrics
    assert all(torch.equal(state[k], ref_state[k]) for k in ref_state)
