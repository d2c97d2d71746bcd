"""Hostile and careless input, round 2: each case is a clear error (or a warning) within seconds, and every
user file is left as it was (hashes before and after)."""

from __future__ import annotations

import hashlib
import json
import os
import resource
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from audiotransfer.cli import main
from audiotransfer.data.audio import AudioError, audio_info, load_audio
from audiotransfer.data.corpora import load_corpus
from audiotransfer.data.features import RECIPES
from audiotransfer.data.store import FeatureStore, extract_features
from audiotransfer.errors import UserError
from audiotransfer.files import load_yaml, make_output_folder
from audiotransfer.manifest import Manifest
from audiotransfer.models.cnn import create_model
from audiotransfer.study.spec import deep_merge, load_study
from audiotransfer.study.store import ResultStore
from audiotransfer.training.checkpoint import save_model
from test_study_spec import write_spec


def hashes(*roots: Path) -> dict[str, str]:
    """sha256 of every file under (or at) `roots`."""
    files = [p for r in roots for p in ([r] if r.is_file() else sorted(r.rglob("*"))) if p.is_file()]
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def noise(path: Path, seconds: float = 0.3, rate: int = 16000, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, 0.1 * np.random.default_rng(seed).standard_normal(round(rate * seconds)), rate)


def fails(argv: list[str], capsys: pytest.CaptureFixture[str], *needles: str) -> str:
    """Run the CLI, expect exit status 2 with a message (no traceback) holding every needle."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "fix:" in err, err
    for needle in needles:
        assert needle in err, err
    return err


# ------------------------------------------------------------------------------------------------- losses
def test_results_out_never_overwrites_the_database_or_the_yaml(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write_spec(tmp_path)
    out = tmp_path / "out"
    ResultStore(out / "results.sqlite")
    other = tmp_path / "notes.csv"
    other.write_text("my,own\nfile,1\n")
    before = hashes(tmp_path)
    for target in (out / "results.sqlite", spec):
        fails(
            ["study", "results", str(spec), "--format", "csv", "--out", str(target)], capsys, "would overwrite an input"
        )
        fails(
            ["study", "results", str(spec), "--format", "csv", "--out", str(target), "--force"],
            capsys,
            "would overwrite an input",
        )
    fails(["study", "results", str(out), "--format", "csv", "--out", str(other)], capsys, "--force")
    fails(["study", "results", str(out), "--out", str(tmp_path)], capsys, "is a folder")
    assert hashes(tmp_path) == before
    export = tmp_path / "results.csv"
    assert main(["study", "results", str(out), "--format", "csv", "--out", str(export)]) == 0
    assert main(["study", "results", str(out), "--format", "csv", "--out", str(export)]) == 0  # its own file
    assert main(["study", "results", str(out), "--format", "csv", "--out", str(other), "--force"]) == 0
    assert other.read_text().startswith("run_id")


def test_store_refuses_an_existing_folder_that_is_not_a_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    noise(tmp_path / "clips" / "dog" / "a.wav")
    noise(tmp_path / "clips" / "cat" / "b.wav", seed=1)
    mine = tmp_path / "mine"
    (mine / "shards").mkdir(parents=True)
    (mine / "shards" / "00000.bin").write_bytes(b"precious" * 100)
    (mine / "errors.csv").write_text("my,notes\n")
    before = hashes(mine)
    argv = [
        "features",
        "extract",
        "folder",
        "--root",
        str(tmp_path / "clips"),
        "--recipe",
        "demo",
        "-o",
        "test_fraction=0",
        "-o",
        "dev_fraction=0",
    ]
    fails([*argv, "--store", str(mine)], capsys, "not a feature store", str(mine))
    assert hashes(mine) == before
    fails([*argv, "--store", str(mine / "errors.csv")], capsys, "is a file")
    assert hashes(mine) == before
    assert main([*argv, "--store", str(tmp_path / "store")]) == 0  # a new folder, then resumed as a store
    assert main([*argv, "--store", str(tmp_path / "store")]) == 0


def test_study_out_that_is_not_a_study_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = write_spec(tmp_path, out="userdata")
    (tmp_path / "userdata" / "runs").mkdir(parents=True)
    (tmp_path / "userdata" / "runs" / "mine.txt").write_text("keep me")
    (tmp_path / "userdata" / "study.yaml").write_text("not: the study\n")
    before = hashes(tmp_path)
    for command in ("run", "plan"):
        fails(["study", command, str(spec)], capsys, "not a study folder", "userdata")
    fails(["study", "report", str(tmp_path / "userdata")], capsys, "no results store")
    assert hashes(tmp_path) == before
    assert not (tmp_path / "userdata" / "report").exists()


# -------------------------------------------------------------------------------------------------- hangs
def test_yaml_alias_bomb_is_refused_quickly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    spec = write_spec(tmp_path)
    spec.write_text(spec.read_text() + "\n".join(lines) + "\nseeds: *a9\n")
    before = hashes(tmp_path)
    started = time.monotonic()
    fails(["study", "plan", str(spec)], capsys, "alias", str(spec))
    assert time.monotonic() - started < 10
    assert hashes(tmp_path) == before
    with pytest.raises(yaml.YAMLError, match="alias"):
        load_yaml("\n".join(lines))
    assert load_yaml("base: &b {x: 1}\nother: *b\n") == {"base": {"x": 1}, "other": {"x": 1}}


def test_long_values_are_cut_in_messages(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = write_spec(tmp_path, seeds=[["x" * 5000] * 500])
    err = fails(["study", "plan", str(spec)], capsys, "seeds")
    assert len(err) < 2000


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_in_a_labels_csv_is_refused_not_waited_on(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    noise(tmp_path / "a.wav")
    noise(tmp_path / "b.wav", seed=1)
    os.mkfifo(tmp_path / "pipe.wav")
    (tmp_path / "labels.csv").write_text("path,label,split\na.wav,x,train\nb.wav,y,test\npipe.wav,x,train\n")
    started = time.monotonic()
    assert main(["data", "describe", "csv", "--root", str(tmp_path)]) == 0
    assert "audio_unreadable: 1" in capsys.readouterr().out
    assert (
        main(
            ["features", "extract", "csv", "--root", str(tmp_path), "--store", str(tmp_path / "s"), "--recipe", "demo"]
        )
        == 0
    )
    errors = (tmp_path / "s" / "errors.csv").read_text()
    assert "FIFO" in errors and "not found" not in errors
    assert time.monotonic() - started < 30


# --------------------------------------------------------------------------------- silent / wrong detail
def test_unusable_files_say_why(tmp_path: Path) -> None:
    missing, fifo, folder = tmp_path / "gone.wav", tmp_path / "p.wav", tmp_path / "d.wav"
    os.mkfifo(fifo)
    folder.mkdir()
    for path, reason in ((missing, "not found"), (fifo, "FIFO"), (folder, "not a regular file")):
        with pytest.raises(AudioError, match=reason):
            audio_info(path)
    if os.geteuid() != 0:  # root reads any file
        locked = tmp_path / "locked.wav"
        noise(locked)
        locked.chmod(0)
        with pytest.raises(AudioError, match="permission denied"):
            load_audio(locked, 16000)


def test_sample_rate_outside_1k_384k_is_refused(tmp_path: Path) -> None:
    for rate in (1, 999, 400_000):
        path = tmp_path / f"r{rate}.wav"
        sf.write(path, np.zeros(64, dtype=np.float32), rate)
        with pytest.raises(AudioError, match=r"outside 1000 Hz\.\.384000 Hz"):
            audio_info(path)
        with pytest.raises(AudioError, match="sample rate"):
            load_audio(path, 16000)


def test_a_csv_whose_files_all_fail_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("a.wav", "b.wav"):
        (tmp_path / name).write_bytes(b"RIFF not really")
    (tmp_path / "labels.csv").write_text("path,label,split\na.wav,x,train\nb.wav,y,test\n")
    fails(
        ["features", "extract", "csv", "--root", str(tmp_path), "--store", str(tmp_path / "s"), "--recipe", "demo"],
        capsys,
        "none of the 2 clips",
        "errors.csv",
    )


# ------------------------------------------------------------------------------------------------ tracebacks
def task_only_spec(tmp_path: Path, classes: tuple[str, ...] = ("dog", "cat"), **changes: Any) -> Path:
    """A study of one checkpoint state and a `folder` task of short clips (no pre-training world needed)."""
    for i, label in enumerate(classes):
        for j in range(5):
            noise(tmp_path / "scenes" / label / f"{j}.wav", seconds=0.2, seed=10 * i + j)
    (tmp_path / "world").mkdir(parents=True, exist_ok=True)
    save_model(tmp_path / "world" / "mine.pt", create_model("cnn6", 3, width=0.125, n_mels=64), labels=["a"] * 3)
    pre = {
        "corpus": None,
        "root": None,
        "metadata": None,
        "states": {
            "all": None,
            "human": None,
            "half": None,
            "panns": {"checkpoint": "world/mine.pt", "format": "audiotransfer"},
        },
    }
    return write_spec(tmp_path, **deep_merge({"pretraining": pre}, changes))


def test_study_plan_catches_short_crops_and_one_class_tasks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    short = task_only_spec(tmp_path / "a", downstream={"scenes": {"recipe": {"frames": 8}}})
    fails(["study", "plan", str(short)], capsys, "8 frames", "at least 16", "downstream.scenes")
    one = task_only_spec(tmp_path / "b", classes=("dog",))
    fails(["study", "plan", str(one)], capsys, "1 class(es)", "downstream.scenes")
    wrong = task_only_spec(tmp_path / "c", pretraining={"states": {"panns": {"format": "autrainer"}}})
    fails(
        ["study", "plan", str(wrong)],
        capsys,
        "pretraining.states.panns.format",
        "declared format 'autrainer'",
        "an audiotransfer model.pt",
    )
    model = create_model("cnn6", 2, width=0.125, n_mels=64)
    with pytest.raises(UserError, match="at least 16 frames"):
        model(torch.zeros(1, 8, 64))


@pytest.mark.parametrize(
    ("changes", "needles"),
    [
        ({"pretraining": {"states": {"panns": {"checkpoint": 5}}}}, ["panns.checkpoint", "not a valid path"]),
        ({"seeds": [True]}, ["seeds.0", "yes/no"]),
        ({"resources": {"num_cpus": -1}}, ["resources.num_cpus", "greater than or equal to 0"]),
        ({"resources": {"num_gpus": float("nan")}}, ["resources.num_gpus", "finite"]),
    ],
)
def test_spec_fields_of_the_wrong_type_or_range(tmp_path: Path, changes: dict[str, Any], needles: list[str]) -> None:
    with pytest.raises(UserError) as caught:
        load_study(write_spec(tmp_path, **changes))
    for needle in needles:
        assert needle in str(caught.value)


def test_seeds_yes_in_yaml_is_not_one(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    spec.write_text(spec.read_text().replace("seeds:\n- 1\n- 2\n", "seeds: [yes]\n"))
    assert "seeds: [yes]" in spec.read_text()
    with pytest.raises(UserError, match=r"seeds\.0"):
        load_study(spec)


def test_csv_row_with_more_fields_than_the_header(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "labels.csv").write_text("path,label\na.wav,x\nb.wav,y,test\n")
    fails(["data", "describe", "csv", "--root", str(tmp_path)], capsys, "line 3 has 3 fields, the header names 2")


def finished_study(tmp_path: Path) -> Path:
    """A study folder whose results database holds one finished run."""
    out = tmp_path / "out"
    store = ResultStore(out / "results.sqlite")
    store.register([{"run_id": "pretrain/all", "kind": "pretrain", "state": "all", "config": "{}"}])
    store.mark_running("pretrain/all")
    return out


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_finished_study_can_be_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = finished_study(tmp_path)
    before = hashes(out)
    modes = {p: p.stat().st_mode for p in [out, *out.rglob("*")]}
    try:
        for p in [*out.rglob("*"), out]:
            p.chmod(p.stat().st_mode & ~0o222)
        assert main(["study", "status", str(out)]) == 0
        assert "running" in capsys.readouterr().out
        assert main(["study", "results", str(out), "--kind", "all"]) == 0
    finally:
        for p, mode in modes.items():
            p.chmod(mode)
    assert hashes(out) == before


def test_reading_commands_create_nothing(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="cannot open the results database"):
        ResultStore(tmp_path / "none" / "results.sqlite", read_only=True)
    assert not (tmp_path / "none").exists()
    out = finished_study(tmp_path)
    before = hashes(out / "results.sqlite")
    assert len(ResultStore(out / "results.sqlite", read_only=True).runs()) == 1
    with pytest.raises(UserError, match="read-only"):
        ResultStore(out / "results.sqlite", read_only=True).mark_running("pretrain/all")
    assert hashes(out / "results.sqlite") == before


def test_corrupt_or_locked_results_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.sqlite").write_bytes(b"this is not a database" * 100)
    before = hashes(out)
    fails(["study", "status", str(out)], capsys, "results.sqlite", "damaged")
    assert hashes(out) == before
    out = finished_study(tmp_path / "b")
    holder = sqlite3.connect(out / "results.sqlite", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(UserError, match="locked"):
            ResultStore(out / "results.sqlite", timeout_s=0.2).mark_running("pretrain/all")
    finally:
        holder.execute("ROLLBACK")
        holder.close()


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(signal, "SIGXFSZ"), reason="needs RLIMIT_FSIZE")
def test_file_size_limit_while_writing_a_shard(tmp_path: Path) -> None:
    for i in range(4):
        noise(tmp_path / "clips" / "ab"[i % 2] / f"{i}.wav", seconds=1.0, seed=i)
    store = tmp_path / "store"
    argv = [
        sys.executable,
        "-m",
        "audiotransfer.cli",
        "features",
        "extract",
        "folder",
        "--root",
        str(tmp_path / "clips"),
        "--store",
        str(store),
        "--recipe",
        "demo",
        "-o",
        "test_fraction=0",
        "-o",
        "dev_fraction=0",
    ]

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (2048, 2048))

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src"), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(argv, preexec_fn=limit, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "file-size limit" in done.stderr and "Traceback" not in done.stderr and str(store) in done.stderr
    finished = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)  # resumes cleanly
    assert finished.returncode == 0, finished.stderr
    assert FeatureStore(store).num_clips == 4


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["features", "extract", "folder", "--root", ".", "--store", "s", "--clips-per-task", "0"], "below 1"),
        (["synth", "generate", "--out", "w", "--seed", "-1"], "negative"),
        (["study", "plan", "x.yaml", "--clips-per-second", "nan"], "finite number above 0"),
        (["study", "plan", "x.yaml", "--clips-per-second", "-3"], "finite number above 0"),
    ],
)
def test_bad_numbers_on_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], argv: list[str], needle: str
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2 and needle in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing written (no half-made world)


def test_negative_world_seed_writes_nothing(tmp_path: Path) -> None:
    from audiotransfer.data.synthetic import generate_world

    with pytest.raises(UserError, match="'seed' is -1"):
        generate_world(tmp_path / "w", seed=-1, progress=False)
    assert not (tmp_path / "w").exists()


def test_jobs_above_the_cores_are_capped(caplog: pytest.LogCaptureFixture) -> None:
    from audiotransfer.cli._common import worker_count
    from audiotransfer.files import usable_cores

    assert worker_count("100000") == usable_cores()
    assert "above the" in caplog.text
    assert worker_count("1") == 1


def test_sidecars_that_are_not_json_or_newer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    noise(tmp_path / "clips" / "a" / "0.wav")
    noise(tmp_path / "clips" / "b" / "1.wav", seed=1)
    m = load_corpus("folder", tmp_path / "clips", dev_fraction=0.0, test_fraction=0.0)
    sidecar = m.save(tmp_path / "m")
    store = tmp_path / "store"
    extract_features(m, store, RECIPES["demo"], progress=False)
    info = json.loads((store / "store.json").read_text())
    (store / "store.json").write_text(json.dumps({**info, "format_version": 99}))
    before = hashes(store)
    with pytest.raises(UserError, match="format version 99"):
        FeatureStore(store)
    with pytest.raises(UserError, match="format version 99"):
        extract_features(m, store, RECIPES["demo"], progress=False)
    assert hashes(store) == before
    sidecar.write_text("{not json")
    with pytest.raises(UserError, match="not JSON"):
        Manifest.load(sidecar)
    sidecar.write_text(json.dumps({**json.loads(json.dumps(m.summary(), default=str)), "format_version": 2}))
    with pytest.raises(UserError, match="upgrade audiotransfer"):
        Manifest.load(sidecar)


# ------------------------------------------------------------------------------------ silent -> warning
def test_csv_labels_duplicates_and_lonely_classes(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    for i in range(11):
        (tmp_path / f"{i}.wav").write_bytes(b"")
    rows = [f"{i}.wav,{'dog' if i % 2 else 'dog '}" for i in range(10)] + ["10.wav,cat"]
    (tmp_path / "labels.csv").write_text("path,label\n" + "\n".join(rows) + "\n")
    m = load_corpus("csv", tmp_path, clip_seconds=1.0)
    err = caplog.text
    assert m.labels == ["cat", "dog"] and "surrounding spaces" in err
    assert "class(es) have no test clip" in err and "'cat'" in err
    (tmp_path / "labels.csv").write_text("path,label\n1.wav,a\n2.wav,a\n3.wav,b\n./2.wav,b\n1.wav,c\n")
    with pytest.raises(UserError, match=r"lines 3 and 5 \('2.wav' and './2.wav'\)"):
        load_corpus("csv", tmp_path, clip_seconds=1.0)


# ------------------------------------------------------------------------------------------------- advise
def test_advise_writes_under_the_study_or_out_never_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from test_advise import _wavs, make_study

    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    clips = tmp_path / "clips"
    _wavs(clips, per_class=3, classes=2)
    root = make_study(tmp_path / "study")
    assert (
        main(
            [
                "advise",
                str(root),
                "--task",
                "folder",
                "--root",
                str(clips),
                "--estimators",
                "knn",
                "-o",
                "test_fraction=0",
                "-o",
                "dev_fraction=0",
                "--no-progress",
            ]
        )
        == 0
    )
    assert (root / "advise" / "advice.json").exists() and not any(cwd.iterdir())
    capsys.readouterr()
    fails(
        ["advise", "--task", "folder", "--root", str(clips), "--checkpoint", f"s0={root / 'runs/pretrain/s0'}"],
        capsys,
        "--out",
    )
    fails(
        ["advise", str(root), "--estimators", "knn", "logme", "--default", "leep"],
        capsys,
        "--default leep is not among --estimators",
    )
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    fails(["advise", str(root), "--out", str(mine)], capsys, "not a folder of advice")
    assert not any(cwd.iterdir()) and [p.name for p in mine.iterdir()] == ["notes.txt"]


def test_world_and_run_folders_are_not_written_over_user_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from audiotransfer.data.synthetic import generate_world

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "model.txt").write_text("keep")
    afile = tmp_path / "afile"
    afile.write_text("keep")
    before = hashes(tmp_path)
    with pytest.raises(UserError, match="not a synthetic world"):
        generate_world(mine, num_pretrain=1, num_eval=1, num_scenes=0, num_birds=0, num_commands=0, progress=False)
    with pytest.raises(UserError, match="is a file"):
        generate_world(afile, num_pretrain=1, num_eval=1, num_scenes=0, num_birds=0, num_commands=0, progress=False)
    assert hashes(tmp_path) == before
    noise(tmp_path / "clips" / "a" / "0.wav")
    noise(tmp_path / "clips" / "b" / "1.wav", seed=1)
    m = load_corpus("folder", tmp_path / "clips", dev_fraction=0.0, test_fraction=0.0)
    m.save(tmp_path / "m")
    extract_features(m, tmp_path / "s", RECIPES["demo"], progress=False)
    before = hashes(mine)
    fails(
        ["pretrain", "--manifest", str(tmp_path / "m" / "folder"), "--store", str(tmp_path / "s"), "--out", str(mine)],
        capsys,
        "not a run folder",
    )
    assert hashes(mine) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_parent_of_an_output(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        with pytest.raises(UserError, match="cannot create the feature store folder"):
            make_output_folder(locked / "store", ["store.json"], "feature store")
    finally:
        locked.chmod(0o755)


def test_study_plan_prints_groups_per_split(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = task_only_spec(tmp_path, downstream={"scenes": {"options": {"group": r"/(\d)\.wav$"}}})
    assert main(["study", "plan", str(spec)]) == 0
    err = capsys.readouterr().err
    assert "task 'scenes': groups per split: dev 1, test 1, train 3" in err
