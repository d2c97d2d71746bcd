"""Bad input an audit found to pass silently or fail late: each now gets a clear error, a warning, or works."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import yaml

from audiotransfer.cli import main
from audiotransfer.data.corpora import load_corpus
from audiotransfer.data.features import RECIPES
from audiotransfer.data.store import extract_features
from audiotransfer.errors import UserError
from audiotransfer.manifest import from_label_lists
from audiotransfer.study import run
from audiotransfer.study.runner import error_summary
from audiotransfer.study.spec import load_study
from test_faults import small_world, study_file  # noqa: F401 - the fixture is used by name
from test_study_e2e import fast_train
from test_study_spec import write_spec


def noise(path: Path, seconds: float = 0.3, rate: int = 16000, seed: int = 0, subtype: str = "PCM_16") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, 0.1 * np.random.default_rng(seed).standard_normal(round(rate * seconds)), rate, subtype=subtype)


# ----------------------------------------------------------------------------------------------- clip ids
def test_folder_files_differing_only_by_suffix_keep_apart(tmp_path: Path) -> None:
    noise(tmp_path / "dog" / "x.wav", seed=1)
    sf.write(tmp_path / "dog" / "x.flac", 0.1 * np.random.default_rng(2).standard_normal(4800), 16000)
    noise(tmp_path / "cat" / "y.wav", seed=3)
    m = load_corpus("folder", tmp_path, dev_fraction=0.0, test_fraction=0.0)
    assert sorted(m.clips["clip_id"]) == ["cat/y", "dog/x.flac", "dog/x.wav"]
    store = extract_features(m, tmp_path / "store", RECIPES["demo"], progress=False)
    a, b = (store.read(int(store.rows([c])[0])) for c in ("dog/x.flac", "dog/x.wav"))
    assert store.num_clips == 3 and not np.array_equal(a, b)


def test_manifest_refuses_duplicate_clip_ids() -> None:
    clips = pd.DataFrame({"clip_id": ["a", "b", "a"], "split": "train"})
    with pytest.raises(UserError, match="clip id 'a' is given to more than one clip"):
        from_label_lists("m", clips, [["x"], ["y"], ["x"]])


def test_csv_takes_absolute_paths_and_paths_relative_to_the_csv(tmp_path: Path) -> None:
    lists = tmp_path / "lists"
    noise(lists / "a" / "x.wav", seed=1)
    noise(lists / "a" / "x.flac", seed=2)
    noise(tmp_path / "elsewhere" / "z.wav", seed=3)
    rows = [f"{lists}/a/x.wav,p", "a/x.flac,p", "../elsewhere/z.wav,q", f"{tmp_path}/elsewhere/../lists/a/../b.wav,q"]
    noise(lists / "b.wav", seed=4)
    (lists / "labels.csv").write_text("path,label\n" + "\n".join(rows) + "\n")
    m = load_corpus("csv", lists / "labels.csv", dev_fraction=0.0, test_fraction=0.0)
    assert list(m.clips["clip_id"]) == ["a/x.wav", "a/x.flac", "../elsewhere/z", "b"]
    assert extract_features(m, tmp_path / "store", RECIPES["demo"], progress=False).num_clips == 4
    (lists / "labels.csv").write_text(f"path,label\na/x.wav,p\n{lists}/a/x.wav,q\n")
    with pytest.raises(UserError, match="lists one file twice"):
        load_corpus("csv", lists / "labels.csv")


# ------------------------------------------------------------------------------------------- audio content
def test_truncated_wav_and_nan_samples_go_to_errors_csv(tmp_path: Path) -> None:
    noise(tmp_path / "a" / "good.wav")
    noise(tmp_path / "a" / "cut.wav", seconds=1.0)
    os.truncate(tmp_path / "a" / "cut.wav", 44 + 2 * 8000)  # half the data chunk its header announces
    samples = np.zeros(4800, dtype=np.float32)
    samples[100] = np.nan
    sf.write(tmp_path / "a" / "nan.wav", samples, 16000, subtype="FLOAT")
    m = load_corpus("folder", tmp_path, dev_fraction=0.0, test_fraction=0.0, clip_seconds=0.3)
    store = extract_features(m, tmp_path / "store", RECIPES["demo"], progress=False)
    assert list(store.clip_ids) == ["a/good"]
    errors = pd.read_csv(tmp_path / "store" / "errors.csv").set_index("clip_id")["error"]
    assert errors["a/cut"].startswith("truncated: the header announces 32,000 data bytes, the file holds 16,000")
    assert errors["a/nan"] == "non-finite: 1 NaN/inf sample values"


def test_segment_list_with_a_byte_order_mark(audioset_dir: Path, tmp_path: Path) -> None:
    from audiotransfer.ontology import Ontology, read_segments

    onto = Ontology.load(audioset_dir / "ontology.json", audioset_dir / "class_labels_indices.csv")
    lines = (audioset_dir / "eval_segments.csv").read_text().splitlines()[:20]
    (tmp_path / "bom.csv").write_text("\n".join(lines) + "\n", encoding="utf-8-sig")
    plain = read_segments(audioset_dir / "eval_segments.csv", onto.trainable)
    bom = read_segments(tmp_path / "bom.csv", onto.trainable)
    assert len(bom) == len(lines) - 3 and bom.ytid.to_pylist() == plain.ytid.to_pylist()[: len(bom)]


# --------------------------------------------------------------------------------------- options and flags
def test_duplicate_yaml_keys_are_an_error(tmp_path: Path) -> None:
    path = write_spec(tmp_path)
    path.write_text(path.read_text() + "seeds: [7]\n")
    with pytest.raises(UserError, match=r"not valid YAML .*duplicate key 'seeds'"):
        load_study(path)


def test_typed_corpus_options_and_jobs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    noise(tmp_path / "c" / "a" / "x.wav")
    assert main(["data", "describe", "folder", "--root", str(tmp_path / "c"), "-o", "dev_fraction=abc"]) == 2
    err = capsys.readouterr().err
    assert "option dev_fraction='abc'" in err and "fix: give dev_fraction a value of type float" in err
    with pytest.raises(SystemExit) as info:
        main(["study", "run", str(tmp_path / "s.yaml"), "--jobs", "0"])
    assert info.value.code == 2 and "0 is below 1: nothing would run" in capsys.readouterr().err
    with pytest.raises(UserError, match="jobs is 0"):
        run(write_spec(tmp_path), jobs=0)
    manifest = load_corpus("folder", tmp_path / "c", dev_fraction=0.0, test_fraction=0.0)
    with pytest.raises(UserError, match="jobs is 0"):
        extract_features(manifest, tmp_path / "store", RECIPES["demo"], jobs=0, progress=False)


def test_error_summary_keeps_the_error_and_its_fix() -> None:
    error = str(UserError("/s/runs/x/checkpoint.pt: unreadable\nresume checkpoint", fix="delete it"))
    assert error_summary(error) == "/s/runs/x/checkpoint.pt: unreadable resume checkpoint (fix: delete it)"
    assert error_summary("Traceback (most recent call last):\n  File x\nValueError: bad") == "ValueError: bad"


# ---------------------------------------------------------------------------------------- study preparation
def test_never_overwrites_a_study_yaml_the_study_did_not_write(tmp_path: Path) -> None:
    from audiotransfer.study.runner import _resolved_target, _write_resolved

    mine = tmp_path / "study.yaml"
    other = write_spec(tmp_path, out=".")
    other = other.rename(tmp_path / "other.yaml")
    mine.write_text("# my own notes\nname: mine\n")
    study = load_study(other)
    with pytest.raises(UserError, match="a file the study did not write"):
        run(other)
    assert mine.read_text() == "# my own notes\nname: mine\n"
    mine.unlink()
    _write_resolved(study, _resolved_target(study))
    _write_resolved(study, _resolved_target(study))  # its own file it rewrites
    assert yaml.safe_load(mine.read_text())["out"] == str(tmp_path)


def test_task_without_test_clips_is_refused_and_empty_classes_warned(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from audiotransfer.study.prepare import prepare_manifests

    rows = []
    for i in range(6):
        noise(tmp_path / "t" / f"{i}.wav", seed=i)
        rows.append(f"{i}.wav,{'ab'[i % 2]},{'train' if i < 4 else 'dev'}")
    (tmp_path / "t" / "labels.csv").write_text("path,label,split\n" + "\n".join(rows) + "\n")
    spec = {
        "pretraining": {"states": None, "corpus": None, "root": None, "metadata": None},
        "downstream": {"scenes": {"corpus": "csv", "root": "t", "options": {"labels": ["a", "b", "c"]}}},
    }
    study = load_study(write_spec(tmp_path, **spec))
    with pytest.raises(UserError, match=r"'downstream.scenes': the task has no 'test' clips"):
        prepare_manifests(study)
    assert not (tmp_path / "out" / "manifests").exists()
    (tmp_path / "t" / "labels.csv").write_text("path,label,split\n" + "\n".join(rows).replace("dev", "test") + "\n")
    prepare_manifests(study)
    assert "1 of 3 classes have no training clips (c)" in caplog.text


@pytest.mark.slow
def test_refused_spec_change_writes_nothing_and_deleting_the_runs_redoes_them(
    tmp_path: Path,
    small_world: Path,  # noqa: F811 - the fixture imported by name
) -> None:
    path = study_file(tmp_path, small_world)
    out = tmp_path / "out"
    assert run(path, run_fn=fast_train, progress=False).ok
    sidecar = out / "manifests" / "states" / "all.json"
    before = sidecar.read_bytes()

    def states() -> list[tuple]:
        with sqlite3.connect(out / "results.sqlite") as db:
            return db.execute("SELECT state, num_clips, subset_hash FROM states ORDER BY state").fetchall()

    table, resolved = states(), (out / "study.yaml").read_text()
    spec = yaml.safe_load(path.read_text())
    spec["pretraining"]["states"]["all"] = {"fraction": 0.5}
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(UserError, match="used another configuration") as info:
        run(path, run_fn=fast_train, progress=False)
    assert sidecar.read_bytes() == before and states() == table  # the refused attempt changed nothing
    assert (out / "study.yaml").read_text() == resolved
    fix = str(info.value.fix)
    folders = [out / "runs" / "pretrain" / "all", out / "runs" / "finetune" / "all" / "birds" / "finetune" / "seed1"]
    assert all(str(f) in fix for f in folders) and "scratch" not in fix
    for folder in folders:
        shutil.rmtree(folder)
    again = run(path, run_fn=fast_train, progress=False)
    assert again.ok and sorted(again.done) == ["finetune/all/birds/finetune/seed1", "pretrain/all"]
    assert again.skipped == ["finetune/scratch/birds/finetune/seed1"]
    assert sidecar.read_bytes() != before and states() != table
