"""Whole-clip evaluation: variable-length clips (FSD50K 0.3-30 s, folders, CSV lists) are scored on every
frame through averaged windows, not on a centre crop."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from audiotransfer.data.features import FeatureRecipe
from audiotransfer.data.loader import BatchLoader, clip_outputs, clip_windows
from audiotransfer.data.store import write_store
from audiotransfer.manifest import from_label_lists

MELS = 8


def test_windows_cover_every_frame() -> None:
    lengths = np.array([30, 51, 56, 60, 153, 200, 1001])
    owner, starts = clip_windows(lengths, 51)
    assert np.bincount(owner).tolist() == [1, 1, 1, 2, 3, 4, 20]
    for clip, length in enumerate(lengths):
        seen = np.zeros(length, dtype=bool)
        for s in starts[owner == clip]:
            assert 0 <= s <= max(length - 51, 0)
            seen[s : s + 51] = True
        assert seen.all() or length <= 51 * 1.1  # a clip within 10% of a window gets its centre window
    assert starts[owner == 0].tolist() == [0] and starts[owner == 2].tolist() == [2]  # (56 - 51) // 2


def test_a_long_clips_score_uses_all_of_it(tmp_path: Path) -> None:
    """A 3-window clip loud only in its last third: its whole-clip score sees the sound, a centre crop not."""
    frames = 50
    quiet_then_loud = np.zeros((3 * frames, MELS), np.float32)
    quiet_then_loud[2 * frames :] = 3.0
    short = np.full((20, MELS), 1.0, np.float32)
    store = write_store(tmp_path / "s", FeatureRecipe(n_mels=MELS), "t", {"long": quiet_then_loud, "short": short})
    manifest = from_label_lists("t", pd.DataFrame({"clip_id": ["long", "short"], "split": "test"}), [["a"], ["a"]])
    mean = lambda x: x.mean(dim=(1, 2))[:, None]  # noqa: E731 - a linear stand-in for a model
    whole = clip_outputs(BatchLoader(manifest, store, 2, frames, crop="whole", shuffle=False), mean)
    centre = clip_outputs(BatchLoader(manifest, store, 2, frames, crop="center", shuffle=False), mean)
    assert whole[:, 0].tolist() == pytest.approx([1.0, float(store.floor + (1 - store.floor) * 20 / 50)], rel=1e-3)
    assert centre[0, 0] == 0.0  # the middle third is silent
    assert torch.allclose(whole[1], centre[1])  # a short clip is one (padded) window either way


def test_engine_scores_whole_clips(tmp_path: Path) -> None:
    """A fine-tune's recorded test accuracy is that of window-averaged probabilities over whole clips."""
    from audiotransfer.training import FINETUNE, finetune, load_model
    from test_training import TINY, make_task

    manifest, store = make_task(tmp_path, "task", "multiclass", {"train": 24, "test": 12})
    recipe = FINETUNE.replace(**TINY, epochs=2, batch_size=8, frames=20)  # 40-60 frame clips: 2-3 windows
    metrics = finetune(manifest, store, recipe, tmp_path / "run", progress=False)
    model = load_model(tmp_path / "run").eval()
    test = manifest.split("test")
    with torch.no_grad():
        probs = clip_outputs(
            BatchLoader(test, store, 5, 20, crop="whole", shuffle=False), lambda x: torch.softmax(model(x), dim=1)
        )
    accuracy = float((probs.argmax(1).numpy() == test.class_indices()).mean())
    assert metrics.test["accuracy"] == pytest.approx(accuracy, abs=1e-9)


def test_several_readers_give_the_same_batches_in_order(tmp_path: Path) -> None:
    """`readers` threads read ahead; the batches (order, crops) are those of one reader."""
    rng = np.random.default_rng(0)
    features = {f"c{i}": rng.normal(size=(int(rng.integers(30, 90)), MELS)).astype(np.float32) for i in range(50)}
    store = write_store(tmp_path / "s", FeatureRecipe(n_mels=MELS), "t", features)
    manifest = from_label_lists(
        "t", pd.DataFrame({"clip_id": list(features), "split": "train"}), [["a"]] * len(features)
    )
    batches = {}
    for readers in (1, 4):
        loader = BatchLoader(manifest, store, 8, 40, seed=3, readers=readers)
        loader.load_state_dict({"epoch": 1, "position": 2})
        batches[readers] = [x for x, _ in loader]
        assert loader.state_dict() == {"epoch": 2, "position": 0}
    assert len(batches[1]) == 5 and all(torch.equal(a, b) for a, b in zip(batches[1], batches[4], strict=True))
