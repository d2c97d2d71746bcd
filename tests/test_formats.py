"""Every versioned format reads its frozen v1 files (tests/fixtures/v1, written by the code before versions
were read) and refuses a newer version by name; results.sqlite carries its schema version."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
import torch

from audiotransfer.data.features import RECIPES
from audiotransfer.data.store import FeatureStore, StoreWriter
from audiotransfer.errors import UserError
from audiotransfer.manifest import Manifest
from audiotransfer.models.checkpoints import MODEL_VERSION
from audiotransfer.study.store import SCHEMA_VERSION, ResultStore
from audiotransfer.training import load_model

V1 = Path(__file__).resolve().parent / "fixtures" / "v1"


@pytest.fixture
def v1(tmp_path: Path) -> Path:
    """A writable copy of the frozen fixtures (opening a database or a writer may touch its files)."""
    return Path(shutil.copytree(V1, tmp_path / "v1"))


def _bump(path: Path, field: str = "format_version", value: object = 99) -> None:
    info = json.loads(path.read_text())
    info[field] = value
    path.write_text(json.dumps(info))


def test_v1_store_reads_and_a_newer_one_is_refused(v1: Path) -> None:
    with FeatureStore(v1 / "store") as store:
        assert store.num_clips == 3 and store.recipe == RECIPES["demo"] and store.corpus == "fixture"
        expected = np.arange(4 * store.recipe.n_mels, dtype=np.float32).reshape(4, -1) + 2
        np.testing.assert_array_equal(store.read(int(store.rows(["clip2"])[0])), expected)
        store.read_batch(store.rows(["clip0", "clip1"]), 4, crop="center")
    assert store._fds == {}  # leaving the block closed the files opened for prefetch
    _bump(v1 / "store" / "store.json")
    for open_it in (lambda: FeatureStore(v1 / "store"), lambda: StoreWriter(v1 / "store", RECIPES["demo"])):
        with pytest.raises(UserError, match=r"field 'format_version'.* 99; this audiotransfer reads versions 1 to 1"):
            open_it()


def test_store_writer_is_a_context_manager_that_commits_on_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), StoreWriter(tmp_path, RECIPES["demo"]) as writer:
        writer.add("kept", np.ones((3, RECIPES["demo"].n_mels)))
        raise RuntimeError("the extraction failed")
    assert FeatureStore(tmp_path).num_clips == 1
    StoreWriter(tmp_path, RECIPES["demo"]).close()  # the lock was released


def test_v1_manifest_reads_and_a_newer_one_is_refused(v1: Path) -> None:
    manifest = Manifest.load(v1 / "manifest" / "tiny")
    assert manifest.labels == ["a", "b"] and manifest.targets.toarray().tolist() == [[1, 0], [0, 1], [1, 1]]
    _bump(v1 / "manifest" / "tiny.json")
    with pytest.raises(UserError, match=r"tiny.json: field 'format_version': manifest format version 99"):
        Manifest.load(v1 / "manifest" / "tiny")
    _bump(v1 / "manifest" / "tiny.json", value="one")
    with pytest.raises(UserError, match="format version 'one'"):
        Manifest.load(v1 / "manifest" / "tiny")


def test_v1_model_reads_and_a_newer_one_is_refused(v1: Path) -> None:
    model = load_model(v1 / "model.pt")
    first = next(model.parameters()).detach().flatten()[0]
    assert model.config["name"] == "cnn6" and float(first) == pytest.approx(0.01)
    saved = torch.load(v1 / "model.pt", weights_only=True)
    torch.save({**saved, "format_version": MODEL_VERSION + 1}, v1 / "model.pt")
    with pytest.raises(UserError, match=rf"model.pt.*format.version.* {MODEL_VERSION + 1}"):
        load_model(v1 / "model.pt")


def _user_version(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("PRAGMA user_version").fetchone()[0])


def test_unversioned_results_database_is_migrated_and_a_newer_one_refused(v1: Path, tmp_path: Path) -> None:
    path = v1 / "results.sqlite"
    assert _user_version(path) == 0  # as the code before schema versions wrote it
    store = ResultStore(path)
    assert _user_version(path) == SCHEMA_VERSION
    metrics = store.test_metrics()
    assert metrics.set_index("metric").loc["uar", "value"] == pytest.approx(0.75)
    assert store.states().set_index("state").loc["full", "num_clips"] == 3
    store.put_state("other", frontend="demo", frontend_hash="abc")  # the columns version 2 added
    assert store.states().set_index("state").loc["other", "frontend"] == "demo"
    assert _user_version(ResultStore(tmp_path / "new.sqlite").path) == SCHEMA_VERSION
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    with pytest.raises(UserError, match=f"schema version {SCHEMA_VERSION + 1} .*reads versions up to"):
        ResultStore(path)


def test_put_state_takes_only_known_columns(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "results.sqlite")
    with pytest.raises(ValueError, match=r"states: unknown column\(s\) num_clips\) VALUES"):
        store.put_state("x", **{"num_clips) VALUES": 1})
    store.put_state("x", num_classes=4, corpus="c")
    assert store.states().set_index("state").loc["x", "num_classes"] == 4
    with pytest.raises(ValueError, match="tasks: unknown column"):
        store.put_task("t", bogus=1)
