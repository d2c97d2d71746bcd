"""Fault injection: truncated shards, corrupt `model.pt` / `checkpoint.pt`, a full disk, and a study killed with
SIGKILL at several moments then resumed. Each asserts what the reliability page (docs/reliability.md) promises."""

from __future__ import annotations

import errno
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from audiotransfer.data.store import FeatureStore, extract_features
from audiotransfer.errors import UserError
from audiotransfer.files import write_atomic
from audiotransfer.training.checkpoint import load_checkpoint, load_model
from test_store import DEMO, audio_manifest

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}


def all_features(store: FeatureStore) -> dict[str, np.ndarray]:
    return {c: store.read(i) for i, c in enumerate(store.clip_ids)}


class Payload:
    """Unpickling this runs a shell command: what a crafted file in a received study folder could do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Callable[..., int], tuple[str]]:
        return os.system, (f"touch {self.marker}",)


# ------------------------------------------------------------------------------------------ feature shards
def test_truncated_shard_is_refused_then_reextracted_never_zero_filled(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    manifest = audio_manifest(tmp_path / "audio", 12)
    store = extract_features(manifest, tmp_path / "store", DEMO, progress=False)
    before = all_features(store)
    shard = tmp_path / "store" / "shards" / "00000.bin"
    os.truncate(shard, shard.stat().st_size * 2 // 5)
    with pytest.raises(UserError, match=r"00000.bin: shard holds .* the store's index needs"):
        FeatureStore(tmp_path / "store")
    caplog.clear()
    again = extract_features(manifest, tmp_path / "store", DEMO, progress=False)
    err = caplog.text
    assert "shorter than the index says" in err and "extracting 8" in err  # the 8 clips the cut shard lost
    after = all_features(again)
    assert after.keys() == before.keys()
    for clip, feats in before.items():
        np.testing.assert_array_equal(after[clip], feats)


def test_deleted_shard_drops_its_clips(tmp_path: Path) -> None:
    manifest = audio_manifest(tmp_path / "audio", 4)
    extract_features(manifest, tmp_path / "store", DEMO, progress=False)
    (tmp_path / "store" / "shards" / "00000.bin").unlink()
    with pytest.raises(UserError, match="shard holds 0 bytes"):
        FeatureStore(tmp_path / "store")
    assert extract_features(manifest, tmp_path / "store", DEMO, progress=False).num_clips == 4


# ------------------------------------------------------------------------------ model.pt and checkpoint.pt
def test_crafted_checkpoint_is_refused_not_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    torch.save({"model": Payload(marker), "recipe_hash": "x"}, tmp_path / "checkpoint.pt")
    with pytest.raises(UserError, match=r"unsafe resume checkpoint .*weights_only") as info:
        load_checkpoint(tmp_path / "checkpoint.pt")
    assert not marker.exists()
    assert "delete it to restart" in str(info.value.fix)


def test_resuming_from_a_crafted_checkpoint_runs_no_code(tmp_path: Path) -> None:
    from audiotransfer.training import TrainRecipe, pretrain
    from test_training import make_task

    manifest, store = make_task(tmp_path, "t", "multilabel", {"train": 8, "test": 4})
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    marker = tmp_path / "pwned"  # a study folder received from someone else, with a crafted resume file
    torch.save({"model": Payload(marker), "recipe_hash": "x"}, run_dir / "checkpoint.pt")
    recipe = TrainRecipe(model="cnn6", width=0.125, epochs=1, batch_size=4, frames=16, protocol="scratch")
    with pytest.raises(UserError, match="unsafe resume checkpoint"):
        pretrain(manifest, store, recipe, run_dir, progress=False)
    assert not marker.exists()


def test_truncated_and_crafted_model_pt_give_torch_s_whole_message(tmp_path: Path) -> None:
    from audiotransfer.models import create_model
    from audiotransfer.training.checkpoint import save_model

    save_model(tmp_path / "model.pt", create_model("cnn6", 3, width=0.125, n_mels=32), labels=["a", "b", "c"])
    data = (tmp_path / "model.pt").read_bytes()
    (tmp_path / "model.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match="not a readable PyTorch checkpoint"):
        load_model(tmp_path)
    marker = tmp_path / "pwned"
    torch.save({"model": Payload(marker)}, tmp_path / "model.pt")
    with pytest.raises(UserError) as info:
        load_model(tmp_path)
    assert not marker.exists()
    with pytest.raises(Exception) as raw:  # what torch itself says, which the UserError must carry whole
        torch.load(tmp_path / "model.pt", weights_only=True)
    assert len(str(raw.value)) > 200 and str(raw.value) in info.value.message


def test_report_lists_a_truncated_pretrained_model_as_missing(tmp_path: Path) -> None:
    from audiotransfer.analysis import write_report
    from test_analysis_report import make_study

    root = make_study(tmp_path, seeds=(1,), states=("full", "nature"))
    model = root / "runs" / "pretrain" / "nature" / "model.pt"
    model.write_bytes(model.read_bytes()[:1000])
    out = write_report(root, max_inputs=16, batch_size=8, progress=False)
    md = out["markdown"].read_text()
    assert "The model of 'nature'" in md and "could not be read and is missing" in md


# --------------------------------------------------------------------------------------------- full disk
def test_disk_full_says_so_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    def fill(tmp: Path) -> None:
        tmp.write_bytes(b"half a checkpoint")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(UserError, match=r"checkpoint.pt: disk full") as info:
        write_atomic(tmp_path / "checkpoint.pt", fill)
    assert "free disk space" in str(info.value.fix)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(KeyError):  # any other failure is not dressed up, but cleans up too
        write_atomic(tmp_path / "x.json", lambda tmp: (tmp.write_text("{"), {}["boom"]))
    assert list(tmp_path.iterdir()) == []


def test_disk_full_during_extraction_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from audiotransfer.data import store as store_module

    manifest = audio_manifest(tmp_path / "audio", 6)
    real_add = store_module.StoreWriter.add

    def add(self: store_module.StoreWriter, clip_id: str, features: np.ndarray) -> None:
        if len(self.done) >= 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_add(self, clip_id, features)

    monkeypatch.setattr(store_module.StoreWriter, "add", add)
    with pytest.raises(UserError, match="disk full"):
        extract_features(manifest, tmp_path / "store", DEMO, progress=False, commit_every=1)
    monkeypatch.setattr(store_module.StoreWriter, "add", real_add)
    assert extract_features(manifest, tmp_path / "store", DEMO, progress=False).num_clips == 6
    assert not list((tmp_path / "store").rglob("*.tmp"))


# ------------------------------------------------------------------------------------ a study, SIGKILLed
@pytest.fixture(scope="module")
def small_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from audiotransfer.data.synthetic import generate_world

    return generate_world(
        tmp_path_factory.mktemp("world"),
        num_pretrain=60,
        num_eval=20,
        num_scenes=0,
        num_birds=40,
        num_commands=0,
        num_speakers=7,
        jobs=1,
        progress=False,
    )


def study_file(folder: Path, world: Path) -> Path:
    spec = {
        "name": "faults",
        "out": "out",
        "features": "demo",
        "pretraining": {
            "corpus": "synthetic",
            "root": str(world),
            "metadata": {
                "ontology": str(world / "ontology.json"),
                "labels": str(world / "class_labels_indices.csv"),
                "train": [str(world / "train_segments.csv")],
                "eval": [str(world / "eval_segments.csv")],
            },
            "states": {"all": {}},
        },
        "downstream": {"birds": {"corpus": "synthetic_birds", "root": str(world)}},
        "seeds": [1],
        "recipes": {
            "pretrain": {"model": "cnn6", "width": 0.125, "epochs": 2, "batch_size": 8, "frames": 64},
            "finetune": {"model": "cnn6", "width": 0.125, "epochs": 1, "batch_size": 8, "frames": 64},
        },
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "study.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return folder / "study.yaml"


def study_run(path: Path, kill_when: Callable[[], bool] | None = None) -> subprocess.CompletedProcess[str]:
    """`audiotransfer study run` in a subprocess; SIGKILLed as soon as `kill_when()` holds."""
    command = [sys.executable, "-m", "audiotransfer.cli", "study", "run", str(path), "--no-progress"]
    proc = subprocess.Popen(command, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if kill_when is not None:
        deadline = time.monotonic() + 120
        while not kill_when() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
    out, err = proc.communicate(timeout=300)
    if kill_when is not None:
        assert proc.returncode == -signal.SIGKILL, f"finished before the kill point:\n{err}"
    return subprocess.CompletedProcess(command, proc.returncode, out, err)


def statuses(out: Path) -> dict[str, str]:
    with sqlite3.connect(out / "results.sqlite") as db:
        return dict(db.execute("SELECT run_id, status FROM runs").fetchall())


@pytest.mark.slow
def test_study_killed_at_several_points_resumes_to_a_whole_result(tmp_path: Path, small_world: Path) -> None:
    path = study_file(tmp_path, small_world)
    out = tmp_path / "out"
    shard = out / "stores" / "pretrain" / "shards" / "00000.bin"
    pre = out / "runs" / "pretrain" / "all"
    # 1. during feature extraction, 2. inside pre-training (its first checkpoint written), 3. between runs
    study_run(path, kill_when=lambda: shard.exists() and shard.stat().st_size > 0)
    study_run(path, kill_when=lambda: (pre / "checkpoint.pt").exists())
    assert statuses(out)["pretrain/all"] == "running"
    study_run(path, kill_when=lambda: statuses(out).get("pretrain/all") == "done")
    finished = study_run(path)
    assert finished.returncode == 0, finished.stderr
    assert set(statuses(out).values()) == {"done"} and len(statuses(out)) == 3
    with sqlite3.connect(out / "results.sqlite") as db:
        epochs = db.execute(
            "SELECT run_id, epoch, split, metric, COUNT(*) FROM epochs "
            "GROUP BY run_id, epoch, split, metric HAVING COUNT(*) > 1"
        ).fetchall()
        pre_epochs = db.execute("SELECT COUNT(DISTINCT epoch) FROM epochs WHERE run_id='pretrain/all'").fetchone()
    assert epochs == [] and pre_epochs == (2,)  # no epoch recorded twice or lost
    assert json.loads((pre / "metrics.json").read_text())["status"] == "done"
    assert not list(out.rglob("*.tmp"))
    store = FeatureStore(out / "stores" / "pretrain")
    assert all(np.any(store.read(i) != 0) for i in range(store.num_clips))

    # a shard cut behind the study's back: the next run re-extracts what it lost, reruns nothing else
    before = all_features(store)
    os.truncate(shard, shard.stat().st_size // 2)
    again = study_run(path)
    assert again.returncode == 0 and "0 runs done now, 3 done before" in again.stdout
    assert "shorter than the index says" in again.stderr
    after = all_features(FeatureStore(out / "stores" / "pretrain"))
    assert after.keys() == before.keys() and all(np.array_equal(after[c], before[c]) for c in before)
