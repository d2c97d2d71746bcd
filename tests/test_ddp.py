"""DDP: two CPU processes (gloo) under torchrun train one run; replicas stay in sync and it finishes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from test_training import make_task


def two_process_finetune(
    tmp_path: Path, name: str, batch_size: int, timeout: int, nan_clip: bool = False
) -> subprocess.CompletedProcess:
    """`audiotransfer finetune` from scratch under torchrun: 2 gloo processes, 20 training clips, 2 epochs."""
    manifest, store = make_task(tmp_path, name, "multiclass", {"train": 20, "dev": 6, "test": 6}, nan_clip=nan_clip)
    manifest.save(tmp_path / "m")
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "audiotransfer.cli",
        "finetune",
        "--from",
        "scratch",
        "--manifest",
        str(tmp_path / "m" / name),
        "--store",
        str(store.root),
        "--model",
        "cnn6",
        "--width",
        "0.125",
        "--epochs",
        "2",
        "--batch-size",
        str(batch_size),
        "--no-progress",
        "--out",
        str(tmp_path / "run"),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_two_process_gloo_run(tmp_path: Path) -> None:
    done = two_process_finetune(tmp_path, "ddp", batch_size=8, timeout=280)
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["status"] == "done" and metrics["world_size"] == 2
    assert metrics["ddp_params_in_sync"] is True
    assert metrics["num_train_clips"] == 20 and set(metrics["test"]) >= {"accuracy", "uar"}
    assert done.stdout.count("finetune done") == 2  # both ranks finished


@pytest.mark.slow
@pytest.mark.timeout(200)
def test_nan_on_one_rank_stops_every_rank(tmp_path: Path) -> None:
    """A NaN clip reaches one rank's batch: every rank stops with the same error (before, only that rank
    raised and the others sat in the next all-reduce until the launcher killed them)."""
    done = two_process_finetune(tmp_path, "nan", batch_size=4, timeout=180, nan_clip=True)
    assert done.returncode != 0
    assert (done.stdout + done.stderr).count("loss is nan at epoch 1") == 2, done.stderr[-3000:]
