"""Progress and logs as a user meets them: plain lines (no escape codes, few of them) when stderr is a file,
`--log-file`, `--no-progress`, and silencing through the `audiotransfer` logger."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

import audiotransfer.progress as progress_module
from audiotransfer.cli import main
from audiotransfer.progress import LogLines, log_to, progress

REPO = Path(__file__).resolve().parents[1]
ESCAPES = re.compile(r"\x1b|\r")


def test_plain_lines_every_tenth_at_most_and_a_last_line(monkeypatch, caplog) -> None:
    monkeypatch.setattr(progress_module, "MIN_GAP", 0.0)
    with caplog.at_level(logging.INFO, logger="audiotransfer"):
        bar = progress(total=1000, desc="extract", unit="clip", mininterval=0)  # stderr is not a terminal under pytest
        assert isinstance(bar, LogLines)
        for _ in range(1000):
            bar.update(1)
        bar.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "audiotransfer.progress"]
    assert 9 <= len(lines) <= 11, lines  # one per tenth of the work, and the last one
    assert re.fullmatch(r"extract: 1\d\d/1,000 clips \(1\d%\), 00:00 elapsed, about 00:0\d left", lines[0]), lines[0]
    assert re.fullmatch(r"extract: 1,000/1,000 clips in 00:0\d", lines[-1]), lines[-1]
    assert not any(ESCAPES.search(line) for line in lines)


def test_lines_wait_for_the_gap_and_transient_bars_leave_no_last_line(monkeypatch, caplog) -> None:
    monkeypatch.setattr(progress_module, "MIN_GAP", 3600.0)
    with caplog.at_level(logging.INFO, logger="audiotransfer"):
        assert sum(progress(range(500), desc="runs")) == sum(range(500))
        for _ in progress(range(50), desc="epoch 1", leave=False):
            pass
    assert [r.getMessage() for r in caplog.records][-1].startswith("runs: 500/500 it in ")
    assert len(caplog.records) == 1


def test_silenced_through_the_logger_or_set_enabled(caplog) -> None:
    logger = logging.getLogger("audiotransfer")
    before = logger.level
    try:
        logger.setLevel(logging.WARNING)
        assert progress(range(3)).disable
    finally:
        logger.setLevel(before)
    with log_to(show_progress=False):
        assert progress(range(3)).disable
    assert not progress(range(3)).disable
    assert progress(range(3), enabled=False).disable


def test_log_file_gets_messages_with_time_and_level(tmp_path: Path, capsys) -> None:
    log = tmp_path / "logs" / "run.log"
    from audiotransfer.study.prepare import log as prepare_log

    with log_to(log):
        prepare_log.warning("warning: something to see")
        logging.getLogger("audiotransfer.progress").info("extract: 3/3 clips in 00:01")
    assert capsys.readouterr().err == "warning: something to see\nextract: 3/3 clips in 00:01\n"
    text = log.read_text()
    assert re.search(r"^\d{4}-\d\d-\d\d [\d:,]+ WARNING audiotransfer.study.prepare: warning: something", text, re.M)
    assert "INFO audiotransfer.progress: extract: 3/3 clips in 00:01" in text
    assert not logging.getLogger("audiotransfer").handlers  # restored afterwards


def test_cli_global_options(tmp_path: Path, capsys) -> None:
    from audiotransfer.data.synthetic import generate_world

    log = tmp_path / "cli.log"
    world = generate_world(
        tmp_path / "w",
        num_pretrain=20,
        num_eval=8,
        num_scenes=12,
        num_birds=12,
        num_commands=14,
        num_speakers=7,
        jobs=1,
        progress=False,
    )
    code = main(
        [
            "--log-file",
            str(log),
            "features",
            "extract",
            "synthetic_birds",
            "--root",
            str(world),
            "--store",
            str(tmp_path / "store"),
            "--recipe",
            "demo",
        ]
    )
    assert code == 0
    err = capsys.readouterr().err
    assert "features: 0 of 12 clips already in" in err and "extract: 12/12 clips in " in err
    assert not ESCAPES.search(err)
    assert "INFO audiotransfer.data.extract: features: 0 of 12" in log.read_text()
    assert (
        main(
            [
                "--no-progress",
                "features",
                "extract",
                "synthetic_birds",
                "--root",
                str(world),
                "--store",
                str(tmp_path / "store2"),
                "--recipe",
                "demo",
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert "features: 0 of 12" in err and "extract:" not in err


def _tiny_study(tmp_path: Path) -> Path:
    from audiotransfer.data.synthetic import generate_world

    world = generate_world(
        tmp_path / "world",
        num_pretrain=120,
        num_eval=40,
        num_scenes=42,
        num_birds=42,
        num_commands=56,
        num_speakers=7,
        jobs=1,
        progress=False,
    )
    spec = {
        "name": "logs",
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
            "states": {"animal": {"categories": ["Animal"]}},
        },
        "downstream": {"birds": {"corpus": "synthetic_birds", "root": str(world)}},
        "protocols": ["finetune", "linear"],
        "seeds": [1, 2],
        "recipes": {
            "pretrain": {"model": "cnn6", "width": 0.125, "epochs": 1},
            "finetune": {"model": "cnn6", "width": 0.125, "epochs": 1},
        },
    }
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


@pytest.mark.slow
def test_a_study_with_stderr_to_a_file_logs_a_few_plain_lines(tmp_path: Path) -> None:
    """What a cluster job or `nohup` leaves: a short log, no escape codes, counts and time left."""
    study = _tiny_study(tmp_path)
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO / "src"),
        "OMP_NUM_THREADS": "1",
        "AUDIOTRANSFER_PROGRESS_SECONDS": "1",
    }  # lines as often as allowed, to see the tenth-of-the-work rule
    stderr = tmp_path / "stderr.log"
    started = time.monotonic()
    with open(stderr, "w") as handle:
        done = subprocess.run(
            [sys.executable, "-m", "audiotransfer.cli", "study", "run", str(study), "--jobs", "2"],
            stdout=subprocess.DEVNULL,
            stderr=handle,
            env=env,
            timeout=600,
            check=False,
        )
    seconds = time.monotonic() - started
    text = stderr.read_text()
    assert done.returncode == 0, text[-3000:]
    lines = text.splitlines()
    assert not ESCAPES.search(text)
    # 9 runs: 1 pre-training, 2 states (animal, scratch) x 1 task x 2 protocols x 2 seeds; 2 feature stores
    assert re.search(r"^study: 9/9 runs in \d\d:\d\d", text, re.M), text
    assert any(re.match(r"study: \d/9 runs \(\d+%\), .* elapsed, about .* left", line) for line in lines), text
    assert len(lines) <= 20, f"{len(lines)} lines in {seconds:.0f} s:\n{text}"
