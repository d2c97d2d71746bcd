"""The packed feature store: writing, crops, recovery, extraction with errors, parallel and resumed runs."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from audiotransfer.data.audio import load_audio
from audiotransfer.data.features import RECIPES, FeatureRecipe, LogMel
from audiotransfer.data.store import FeatureStore, StoreWriter, extract_features, write_store
from audiotransfer.errors import UserError
from audiotransfer.manifest import Manifest, from_label_lists

DEMO = RECIPES["demo"]


def random_features(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {f"c{i}": rng.normal(-20, 10, (int(rng.integers(3, 40)), DEMO.n_mels)).astype(np.float32) for i in range(n)}


def audio_manifest(root: Path, n: int, seconds: float = 0.3, rate: int = 22050) -> Manifest:
    """`n` WAV clips of noise at `rate` under `root`, in a one-class manifest."""
    rng = np.random.default_rng(1)
    paths = []
    for i in range(n):
        paths.append(f"a/{i:03d}.wav")
        (root / "a").mkdir(parents=True, exist_ok=True)
        sf.write(root / paths[-1], 0.1 * rng.standard_normal(round(rate * seconds)), rate, subtype="PCM_16")
    clips = pd.DataFrame({"clip_id": [p[:-4] for p in paths], "split": "train", "path": paths})
    return from_label_lists(
        "t",
        clips,
        [["a"]] * n,
        task_type="multiclass",
        meta={"root": str(root), "corpus": "t", "clip_seconds": seconds},
    )


def test_write_and_read(tmp_path: Path) -> None:
    feats = random_features(20)
    store = write_store(tmp_path / "s", DEMO, "demo-corpus", feats)
    assert store.num_clips == 20 and store.corpus == "demo-corpus" and store.recipe == DEMO
    rows = store.rows(["c3", "c7", "c0"])
    np.testing.assert_array_equal(store.lengths(rows), [len(feats[c]) for c in ("c3", "c7", "c0")])
    np.testing.assert_allclose(store.read(int(rows[0])), feats["c3"], atol=0.02)
    batch = store.read_batch(rows, 12, crop="center")
    for i, clip in enumerate(("c3", "c7", "c0")):
        full = feats[clip]
        if len(full) >= 12:
            start = (len(full) - 12) // 2
            np.testing.assert_allclose(batch[i], full[start : start + 12], atol=0.02)
        else:
            np.testing.assert_allclose(batch[i, : len(full)], full, atol=0.02)
            assert np.all(batch[i, len(full) :] == DEMO.floor_db)
    a = store.read_batch(rows, 3, rng=np.random.default_rng(5))
    b = store.read_batch(rows, 3, rng=np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)
    clone = pickle.loads(pickle.dumps(store))
    np.testing.assert_array_equal(clone.read_batch(rows, 3, rng=np.random.default_rng(5)), a)
    with pytest.raises(UserError, match="2 of 3 clips are not in the store"):
        store.rows(["c1", "nope", "neither"])


def test_random_crops_cover_the_clip(tmp_path: Path) -> None:
    frames = np.arange(30, dtype=np.float32)[:, None].repeat(DEMO.n_mels, axis=1)
    store = write_store(tmp_path, DEMO, "", {"ramp": frames})
    starts = {int(store.read_batch([0], 10, rng=np.random.default_rng(s))[0, 0, 0]) for s in range(200)}
    assert starts == set(range(21))


def test_append_shards_and_recipe_check(tmp_path: Path) -> None:
    writer = StoreWriter(tmp_path, DEMO, "x", shard_bytes=40 * DEMO.n_mels * 2)
    feats = random_features(12, seed=3)
    for clip, array in feats.items():
        writer.add(clip, array)
    store = writer.close()
    assert len(list((tmp_path / "shards").glob("*.bin"))) > 3
    for clip, array in feats.items():
        np.testing.assert_allclose(store.read(int(store.rows([clip])[0])), array, atol=0.02)
    more = write_store(tmp_path, DEMO, "x", {"c0": np.zeros((5, 32)), "extra": np.zeros((5, 32))})
    assert more.num_clips == 13 and more.lengths(more.rows(["c0"]))[0] == len(feats["c0"])
    with pytest.raises(UserError, match="recipe_hash"):
        write_store(tmp_path, FeatureRecipe(), "x", {})
    with pytest.raises(UserError, match="corpus"):
        write_store(tmp_path, DEMO, "other", {})


def test_uncommitted_tail_is_dropped(tmp_path: Path) -> None:
    writer = StoreWriter(tmp_path, DEMO)
    writer.add("kept", np.ones((4, 32)))
    writer.commit()
    writer.add("lost", np.ones((6, 32)))
    writer._file.flush()  # bytes reach the shard, but no index part names them: as after a kill
    with pytest.raises(UserError, match="another process is writing"):
        StoreWriter(tmp_path, DEMO)
    writer._lock.close()  # what the OS does when the writing process dies
    again = StoreWriter(tmp_path, DEMO)
    assert again.done == {"kept"} and (tmp_path / "shards" / "00000.bin").stat().st_size == 4 * 32 * 2
    again.add("next", np.full((2, 32), 7.0))
    store = again.close()
    assert store.num_clips == 2 and np.all(store.read(int(store.rows(["next"])[0])) == 7.0)


def test_extract_matches_logmel_and_reports_errors(tmp_path: Path) -> None:
    manifest = audio_manifest(tmp_path / "audio", 4)
    root = tmp_path / "audio"
    sf.write(root / "a" / "001.wav", np.zeros(0), 16000)  # empty
    (root / "a" / "002.wav").write_bytes(b"RIFF....garbage")  # unreadable
    sf.write(root / "a" / "003.wav", np.zeros(100), 16000)  # shorter than one frame
    extra = pd.DataFrame({"clip_id": ["a/missing"], "split": "train", "path": ["a/missing.wav"]})
    manifest = from_label_lists(
        "t", pd.concat([manifest.clips, extra]), [["a"]] * 5, task_type="multiclass", meta=manifest.meta
    )
    store = extract_features(manifest, tmp_path / "s", DEMO, progress=False)
    assert list(store.clip_ids) == ["a/000"]
    expected = LogMel(DEMO)(torch.from_numpy(load_audio(root / "a/000.wav", 16000))[None])[0].numpy()
    np.testing.assert_allclose(store.read(0), expected, atol=0.05)
    errors = pd.read_csv(tmp_path / "s" / "errors.csv").set_index("clip_id")["error"]
    assert errors["a/001"].startswith("empty") and errors["a/002"].startswith("unreadable")
    assert errors["a/003"].startswith("too short") and errors["a/missing"].startswith("missing")
    with pytest.raises(UserError, match="--on-error skip"):
        extract_features(manifest, tmp_path / "s", DEMO, on_error="stop", progress=False)
    assert FeatureStore(tmp_path / "s").num_clips == 1
    with pytest.raises(UserError, match="no audio paths"):
        extract_features(
            Manifest("x", manifest.clips[["clip_id"]], manifest.labels, manifest.targets), tmp_path / "t", DEMO
        )


@pytest.mark.slow
def test_parallel_equals_serial(tmp_path: Path) -> None:
    manifest = audio_manifest(tmp_path / "audio", 8)
    serial = extract_features(manifest, tmp_path / "one", DEMO, jobs=1, progress=False)
    parallel = extract_features(manifest, tmp_path / "two", DEMO, jobs=2, progress=False)
    assert set(serial.clip_ids) == set(parallel.clip_ids) == set(manifest.clips["clip_id"])
    for clip in manifest.clips["clip_id"]:
        np.testing.assert_allclose(
            serial.read(int(serial.rows([clip])[0])), parallel.read(int(parallel.rows([clip])[0])), atol=1e-2
        )


RUN = """
import sys
from audiotransfer.data.features import RECIPES
from audiotransfer.data.store import extract_features
from audiotransfer.manifest import Manifest
extract_features(Manifest.load(sys.argv[1]), sys.argv[2], RECIPES["demo"], progress=False, commit_every=2)
"""


@pytest.mark.slow
def test_resume_after_kill(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    n = 40
    manifest = audio_manifest(tmp_path / "audio", n, seconds=3.0, rate=16000)
    manifest.save(tmp_path)
    store_dir = tmp_path / "store"
    proc = subprocess.Popen([sys.executable, "-c", RUN, str(tmp_path / "t"), str(store_dir)], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not list((store_dir / "index").glob("*.parquet")) and time.monotonic() < deadline:
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed = FeatureStore(store_dir)
    done = list(killed.clip_ids)
    assert 0 < len(done) < n, "the kill should land mid-way"
    before = {c: killed.read(int(killed.rows([c])[0])) for c in done}
    caplog.clear()
    store = extract_features(Manifest.load(tmp_path / "t"), store_dir, DEMO, progress=False)
    err = caplog.text
    assert f"{len(done)} of {n} clips already in" in err and f"extracting {n - len(done)} " in err
    assert store.num_clips == n and not list((store_dir / "index").glob("*.parquet"))
    for clip, array in before.items():
        np.testing.assert_array_equal(store.read(int(store.rows([clip])[0])), array)
    assert np.all(store.lengths(np.arange(n)) == 151)
