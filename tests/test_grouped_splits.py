"""Grouped splits of `folder` and `csv`: no recording (ESC-50 source) or speaker (spoken digits) is in two
splits; an ESC-50-named folder keeps its official folds; names that look like takes get one warning."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from audiotransfer.cli import main
from audiotransfer.data.corpora import describe_corpus, load_corpus
from audiotransfer.errors import UserError

SPEAKERS = ["jackson", "nicolas", "theo", "yweweler", "george", "lucas", "ana", "bea", "carl", "dora", "emil", "fay"]


def touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")


def esc_folder(root: Path, classes: int = 4, sources: int = 4, takes: int = 3) -> None:
    """`{class}/{fold}-{source}-{take}-{target}.wav`: several takes of each source, sources over 5 folds."""
    for target in range(classes):
        for s in range(sources * 5):
            for take in "ABC"[:takes]:
                touch(root / f"class{target}" / f"{s % 5 + 1}-{100 * target + s}-{take}-{target}.wav")


def fsdd_folder(root: Path, takes: int = 4) -> None:
    """`{digit}/{digit}_{speaker}_{take}.wav` (the Free Spoken Digit Dataset's names)."""
    for digit in range(5):
        for speaker in SPEAKERS:
            for take in range(takes):
                touch(root / str(digit) / f"{digit}_{speaker}_{take}.wav")


def assert_no_group_in_two_splits(clips: pd.DataFrame) -> None:
    per_group = clips.groupby("group")["split"].nunique()
    assert (per_group == 1).all(), per_group[per_group > 1]


def test_esc_named_folder_keeps_official_folds_and_sources(tmp_path: Path) -> None:
    esc_folder(tmp_path)
    m = load_corpus("folder", tmp_path, clip_seconds=5.0)
    assert_no_group_in_two_splits(m.clips)
    folds = m.clips["path"].str.split("/").str[1].str[0]
    assert (m.clips["split"][folds == "5"] == "test").all() and (m.clips["split"][folds == "4"] == "dev").all()
    assert set(m.clips["split"][~folds.isin(["4", "5"])]) == {"train"}
    assert m.clips.loc[0, "group"] == m.clips.loc[0, "path"].split("/")[1].rsplit("-", 2)[0]


def test_fsdd_folder_grouped_by_speaker_and_stratified(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    fsdd_folder(tmp_path)
    random = load_corpus("folder", tmp_path, clip_seconds=0.5)
    err = caplog.text
    assert err.count("warning:") == 1 and "group=" in err and "takes" in err
    assert "group" not in random.clips  # the warned-about random split mixes speakers
    for seed in (0, 1):
        caplog.clear()
        m = load_corpus("folder", tmp_path, clip_seconds=0.5, group=r"_([a-z]+)_\d+\.wav$", seed=seed)
        assert caplog.text == ""
        assert_no_group_in_two_splits(m.clips)
        assert m.clips["group"].nunique() == len(SPEAKERS)
        sizes = m.split_sizes()
        assert sizes["test"] / m.num_clips == pytest.approx(0.2, abs=0.1) and sizes["dev"] > 0
        # every speaker says every digit, so each split holds every class
        assert m.clips.groupby("split")["label"].nunique().to_dict() == {"dev": 5, "test": 5, "train": 5}
    info = describe_corpus("folder", tmp_path, clip_seconds=0.5, group=r"_([a-z]+)_")
    assert sum(info["groups"].values()) == len(SPEAKERS) and set(info["groups"]) == {"train", "dev", "test"}


def test_csv_group_column_option_and_esc_names(tmp_path: Path) -> None:
    rows = [(f"a/{d}_{s}_{t}.wav", str(d), s) for d in range(3) for s in SPEAKERS for t in range(2)]
    for path, _, _ in rows:
        touch(tmp_path / path)
    table = pd.DataFrame(rows, columns=["path", "label", "group"])
    table.to_csv(tmp_path / "labels.csv", index=False)
    by_column = load_corpus("csv", tmp_path, clip_seconds=1.0)
    assert_no_group_in_two_splits(by_column.clips)
    table[["path", "label"]].to_csv(tmp_path / "plain.csv", index=False)
    by_option = load_corpus("csv", tmp_path / "plain.csv", clip_seconds=1.0, group=r"_([a-z]+)_")
    assert_no_group_in_two_splits(by_option.clips)
    assert by_option.clips["group"].nunique() == len(SPEAKERS)
    esc = tmp_path / "esc"
    esc_folder(esc, classes=2)
    paths = sorted(p.relative_to(tmp_path).as_posix() for p in esc.rglob("*.wav"))
    pd.DataFrame({"path": paths, "label": [p.split("/")[1] for p in paths]}).to_csv(tmp_path / "e.csv", index=False)
    m = load_corpus("csv", tmp_path / "e.csv", clip_seconds=5.0)
    assert_no_group_in_two_splits(m.clips)
    assert set(m.clips["split"][m.clips["path"].str.contains("/5-")]) == {"test"}


def test_group_option_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fsdd_folder(tmp_path, takes=1)
    with pytest.raises(UserError, match="no capture group"):
        load_corpus("folder", tmp_path, clip_seconds=1.0, group="_[a-z]+_")
    with pytest.raises(UserError, match=r"does not match .* files, e\.g\."):
        load_corpus("folder", tmp_path, clip_seconds=1.0, group="_(zz)_")
    with pytest.raises(UserError, match="not a regular expression"):
        load_corpus("folder", tmp_path, clip_seconds=1.0, group="_([a-z]+_")
    with pytest.raises(UserError, match="too few"):
        load_corpus("folder", tmp_path, clip_seconds=1.0, group="(_)")  # one group for all clips
    # the CLI prints groups per split
    assert main(["data", "describe", "folder", "--root", str(tmp_path), "-o", "group=_([a-z]+)_"]) == 0
    assert "groups: {" in capsys.readouterr().out


def test_class_named_files_are_not_takes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for label in ("dog", "cat"):
        for i in range(6):
            touch(tmp_path / label / f"{label}_{i:03d}.wav")
    load_corpus("folder", tmp_path, clip_seconds=1.0)
    assert "takes" not in capsys.readouterr().err
