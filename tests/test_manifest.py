"""The manifest: round trip through Parquet + JSON, content hash, summaries and bad files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from audiotransfer.errors import UserError
from audiotransfer.manifest import Manifest, from_label_lists


def _manifest(name: str = "toy") -> Manifest:
    clips = pd.DataFrame(
        {"clip_id": ["a", "b", "c", "d"], "split": ["train", "train", "dev", "test"], "start": [0.0, 1.0, 2.0, 3.0]}
    )
    lists = [["/m/x"], ["/m/x", "/m/y"], ["/m/z"], ["/m/y"]]
    return from_label_lists(name, clips, lists, labels=["/m/x", "/m/y", "/m/z"], label_names=["X", "Y", "Z"])


def test_round_trip_keeps_everything(tmp_path):
    original = _manifest()
    sidecar = original.save(tmp_path)
    loaded = Manifest.load(tmp_path / "toy")
    assert loaded.labels == original.labels
    assert loaded.label_names == ["X", "Y", "Z"]
    assert (loaded.targets != original.targets).nnz == 0
    assert loaded.clips["clip_id"].tolist() == ["a", "b", "c", "d"]
    assert loaded.clips["start"].tolist() == [0.0, 1.0, 2.0, 3.0]
    assert loaded.hash == original.hash
    info = json.loads(sidecar.read_text())
    assert info["num_clips"] == 4 and info["num_classes"] == 3
    assert info["clips_per_class"] == {"/m/x": 2, "/m/y": 2, "/m/z": 1}
    assert info["labels_per_clip"] == 1.25
    assert info["splits"] == {"dev": 1, "test": 1, "train": 2}


def test_hash_depends_on_content_not_name():
    a, b = _manifest("one"), _manifest("two")
    assert a.hash == b.hash
    changed = a.take(np.array([0, 1, 2]))
    assert changed.hash != a.hash


def test_split_and_class_indices():
    m = _manifest()
    train = m.split("train")
    assert train.num_clips == 2 and train.clips_per_class().tolist() == [2, 1, 0]
    single = from_label_lists("task", pd.DataFrame({"clip_id": ["p", "q"]}), [["dog"], ["cat"]], task_type="multiclass")
    assert single.labels == ["cat", "dog"]
    assert single.class_indices().tolist() == [1, 0]
    with pytest.raises(ValueError, match="multi-label"):
        m.class_indices()


def test_unknown_label_and_tampered_files(tmp_path):
    with pytest.raises(UserError, match="'/m/q' is not in the label set"):
        from_label_lists("bad", pd.DataFrame({"clip_id": ["a"]}), [["/m/q"]], labels=["/m/x"])
    _manifest().save(tmp_path)
    sidecar = tmp_path / "toy.json"
    info = json.loads(sidecar.read_text())
    info["hash"] = "0" * 16
    sidecar.write_text(json.dumps(info))
    with pytest.raises(UserError, match="field 'hash'"):
        Manifest.load(sidecar)
    with pytest.raises(UserError, match="not found"):
        Manifest.load(tmp_path / "missing")


def test_names_with_dots_load_from_any_spelling(tmp_path):
    _manifest("fraction_0.01").save(tmp_path)
    for spelling in ("fraction_0.01", "fraction_0.01.json", "fraction_0.01.parquet"):
        assert Manifest.load(tmp_path / spelling).name == "fraction_0.01"
