"""Hostile and careless input, round 2: each case is a clear error (or a warning) within seconds, and every
user file is left as it was (hashes before and after)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audiotransfer.cli import main
from audiotransfer.study.store import ResultStore
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
def test_results_out_never_overwrites_the_database_or_the_yaml(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    spec = write_spec(tmp_path)
    out = tmp_path / "out"
    ResultStore(out / "results.sqlite")
    other = tmp_path / "notes.csv"
    other.write_text("my,own\nfile,1\n")
    before = hashes(tmp_path)
    for target in (out / "results.sqlite", spec):
        fails(["study", "results", str(spec), "--format", "csv", "--out", str(target)], capsys,
              "would overwrite an input")
        fails(["study", "results", str(spec), "--format", "csv", "--out", str(target), "--force"], capsys,
              "would overwrite an input")
    fails(["study", "results", str(out), "--format", "csv", "--out", str(other)], capsys, "--force")
    fails(["study", "results", str(out), "--out", str(tmp_path)], capsys, "is a folder")
    assert hashes(tmp_path) == before
    export = tmp_path / "results.csv"
    assert main(["study", "results", str(out), "--format", "csv", "--out", str(export)]) == 0
    assert main(["study", "results", str(out), "--format", "csv", "--out", str(export)]) == 0  # its own file
    assert main(["study", "results", str(out), "--format", "csv", "--out", str(other), "--force"]) == 0
    assert other.read_text().startswith("run_id")


def test_store_refuses_an_existing_folder_that_is_not_a_store(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    noise(tmp_path / "clips" / "dog" / "a.wav")
    noise(tmp_path / "clips" / "cat" / "b.wav", seed=1)
    mine = tmp_path / "mine"
    (mine / "shards").mkdir(parents=True)
    (mine / "shards" / "00000.bin").write_bytes(b"precious" * 100)
    (mine / "errors.csv").write_text("my,notes\n")
    before = hashes(mine)
    argv = ["features", "extract", "folder", "--root", str(tmp_path / "clips"), "--recipe", "demo",
            "-o", "test_fraction=0", "-o", "dev_fraction=0"]
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
