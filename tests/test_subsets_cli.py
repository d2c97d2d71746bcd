"""The `ontology` and `subsets` command groups, called through `audiotransfer.cli.main`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from audiotransfer.cli import main
from audiotransfer.manifest import Manifest

REPO = Path(__file__).resolve().parents[1]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_ontology_tree_and_show(audioset_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "ontology", "tree", "natural sounds", "--depth", "1", "--metadata", str(audioset_dir))
    assert code == 0
    assert out.splitlines() == [
        "  Natural sounds  /m/059j3w  [18]",
        "  * Wind  /m/03m9d0z  [3]",
        "  * Thunderstorm  /m/0jb2l  [2]",
        "  * Water  /m/0838f  [11]",
        "  * Fire  /m/02_41  [2]",
    ]
    code, out, _ = run(capsys, "ontology", "show", "Choir", "--ontology", str(audioset_dir / "ontology.json"))
    assert code == 0
    assert "Choir (/m/0l14jd)" in out and "Singing (/m/015lz1); Musical instrument (/m/04szw)" in out
    assert "trainable labels in its subtree: 1" in out


def test_ontology_unknown_class_is_a_clean_error(audioset_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "ontology", "show", "Animl", "--metadata", str(audioset_dir))
    assert code == 2 and out == ""
    assert "error: unknown class 'Animl'; did you mean 'Animal'" in err and "Traceback" not in err
    code, _, err = run(capsys, "ontology", "tree", "--metadata", str(audioset_dir / "nope"))
    assert code == 2 and "metadata folder not found" in err


def test_subsets_build_paper_example_and_show(
    audioset_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "manifests"
    code, out, _ = run(
        capsys,
        "subsets", "build", str(REPO / "examples" / "subsets" / "paper.yaml"),
        "--segments", str(audioset_dir / "balanced_train_segments.csv"),
        "--eval-segments", str(audioset_dir / "eval_segments.csv"),
        "--ontology", str(audioset_dir / "ontology.json"),
        "--labels", str(audioset_dir / "class_labels_indices.csv"),
        "--out", str(out_dir), "--quiet",
    )  # fmt: skip
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["name", "clips", "test", "clips", "classes", "labels/clip", "hash"]
    assert len(lines) == 15 and lines[-1] == f"13 manifest(s) in {out_dir}"
    speech = next(line.split() for line in lines if line.startswith("speech "))
    assert speech[1:4] == ["5842", "5422", "8"]
    sidecar = json.loads((out_dir / "speech.json").read_text())
    assert speech[5] == sidecar["hash"] == Manifest.load(out_dir / "speech").hash
    assert sidecar["meta"]["spec"]["categories"] == ["Speech"]
    assert len(list(out_dir.glob("*.parquet"))) == 13

    code, out, _ = run(capsys, "subsets", "show", str(out_dir / "speech"), "--top", "2")
    assert code == 0
    assert f"speech  (hash {sidecar['hash']})" in out
    assert "spec: {'categories': ['Speech'], 'seed': 42}" in out
    assert out.splitlines()[-2:] == ["    Speech                      11059", "    Child speech, kid speaking  365"]


def test_subsets_build_decoupled_with_availability(
    audioset_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    segments = audioset_dir / "balanced_train_segments.csv"
    ids = tmp_path / "present.txt"
    ids.write_text("\n".join(line.split(",")[0] for line in segments.read_text().splitlines()[3:21000]))
    code, out, err = run(
        capsys,
        "subsets", "build", str(REPO / "examples" / "subsets" / "decoupled.yaml"),
        "--segments", str(segments), "--metadata", str(audioset_dir),
        "--available", str(ids), "--only", "classes_8", "--only", "classes_128",
        "--out", str(tmp_path / "m"), "--quiet",
    )  # fmt: skip
    assert code == 0
    assert "train: 20997 of 22160 listed clips available, 1163 missing (most missing: Music" in err
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:3]}
    assert rows["classes_8"][1:4] == ["2000", "0", "8"] and rows["classes_128"][1:4] == ["2000", "0", "128"]


def test_subsets_bad_inputs_are_clean_errors(
    audioset_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AUDIOTRANSFER_METADATA", raising=False)
    spec = tmp_path / "spec.yaml"
    spec.write_text("subsets:\n  big: {categories: [Natural sounds], num_samples: 100000}\n")
    base = ["subsets", "build", str(spec), "--metadata", str(audioset_dir), "--out", str(tmp_path / "o"), "--quiet"]
    code, _, err = run(capsys, *base, "--segments", str(audioset_dir / "balanced_train_segments.csv"))
    assert code == 2
    assert f"{spec}: subset 'big' field 'num_samples' is 100000 but only 1027 clips" in err
    assert "fix: set num_samples to at most 1027" in err
    code, _, err = run(capsys, *base, "--segments", str(tmp_path / "missing.csv"))
    assert code == 2 and "missing.csv: segment list not found" in err
    code, _, err = run(capsys, "subsets", "show", str(tmp_path / "o" / "nothing"))
    assert code == 2 and "manifest file not found" in err
    code, _, err = run(capsys, "subsets", "build", str(spec), "--segments", "x.csv", "--out", "o")
    assert code == 2 and "no ontology given" in err
