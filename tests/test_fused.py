"""Fused training: N runs as one grouped-convolution model give the numbers of the same runs one by one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import audiotransfer.training.group as group
from audiotransfer.models import create_model
from audiotransfer.training import FINETUNE, load_model
from audiotransfer.training.fused import FusedCNN
from audiotransfer.training.group import finetune_group, fusable
from test_training import TINY, make_task

SEEDS = [3, 4, 5]


def _metrics(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


def test_fused_forward_equals_members_in_eval_and_training() -> None:
    members = [create_model("cnn6", 4, width=0.125, n_mels=16) for _ in SEEDS]
    for i, m in enumerate(members):
        torch.manual_seed(i)
        m.bn0.running_mean.normal_()
    gens = [torch.Generator().manual_seed(s) for s in SEEDS]
    fused = FusedCNN(members, gens)
    x = torch.randn(len(SEEDS), 6, 40, 16)
    fused.eval()
    out = fused(x)
    for i, m in enumerate(members):
        torch.testing.assert_close(out[i], m.eval()(x[i]), rtol=1e-5, atol=1e-5)
    fused.train()
    out = fused(x)
    for i, (m, seed) in enumerate(zip(members, SEEDS, strict=True)):
        torch.manual_seed(seed)  # the engine's dropout generator
        torch.testing.assert_close(out[i], m.train()(x[i]), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(fused.member_state(i), m.state_dict(), rtol=1e-5, atol=1e-5)


def test_fused_group_gives_the_numbers_of_runs_one_by_one(tmp_path: Path) -> None:
    manifest, store = make_task(tmp_path, "task", "multiclass", {"train": 32, "dev": 8, "test": 8})
    seeds = SEEDS[:2]
    recipes = [FINETUNE.replace(**TINY, epochs=2, batch_size=8, seed=s) for s in seeds]
    assert fusable(recipes)
    alone = finetune_group(manifest, store, recipes, [tmp_path / f"alone{s}" for s in seeds], [None] * 2, fuse=False)
    fused = finetune_group(manifest, store, recipes, [tmp_path / f"fused{s}" for s in seeds], [None] * 2)
    for seed, a, f in zip(seeds, alone, fused, strict=True):
        assert [e["epoch"] for e in f.epochs] == [1, 2] and f.best_epoch == a.best_epoch
        for ea, ef in zip(a.epochs, f.epochs, strict=True):
            assert ef["train_loss"] == pytest.approx(ea["train_loss"], rel=1e-4, abs=1e-6)
            assert ef["dev"] == pytest.approx(ea["dev"], rel=1e-4, abs=1e-6)
        assert f.test == pytest.approx(a.test, rel=1e-4, abs=1e-6)
        assert f.recipe_hash == a.recipe_hash and _metrics(tmp_path / f"fused{seed}")["status"] == "done"
        wa, wf = load_model(tmp_path / f"alone{seed}").state_dict(), load_model(tmp_path / f"fused{seed}").state_dict()
        torch.testing.assert_close(wf, wa, rtol=1e-3, atol=2e-4)  # Adam turns rounding into lr-sized steps
    assert alone[0].test != alone[1].test or alone[0].epochs != alone[1].epochs  # the seeds differ


def test_interrupted_fused_group_resumes_to_the_same_numbers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    manifest, store = make_task(tmp_path, "task", "multiclass", {"train": 24, "dev": 8, "test": 8})
    recipes = [FINETUNE.replace(**TINY, epochs=2, batch_size=8, seed=s) for s in SEEDS[:2]]
    whole = finetune_group(manifest, store, recipes, [tmp_path / f"w{s}" for s in SEEDS[:2]], [None, None])
    outs = [tmp_path / f"r{s}" for s in SEEDS[:2]]
    real, calls = group._train_epoch, []

    def stop_in_second_epoch(*args: object) -> None:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(group, "_train_epoch", stop_in_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        finetune_group(manifest, store, recipes, outs, [None, None])
    assert [_metrics(o)["status"] for o in outs] == ["running", "running"]
    monkeypatch.setattr(group, "_train_epoch", real)
    resumed = finetune_group(manifest, store, recipes, outs, [None, None])
    for a, b in zip(whole, resumed, strict=True):
        assert [e["train_loss"] for e in b.epochs] == pytest.approx([e["train_loss"] for e in a.epochs], rel=1e-5)
        assert b.test == pytest.approx(a.test, rel=1e-5)
    again = finetune_group(manifest, store, recipes, outs, [None, None])  # finished: read back, not retrained
    assert [r.duration_s for r in again] == [r.duration_s for r in resumed]


def test_linear_probes_and_mixed_recipes_are_not_fused() -> None:
    base = FINETUNE.replace(**TINY)
    assert not fusable([base.replace(protocol="linear", seed=s) for s in SEEDS])
    assert not fusable([base.replace(protocol="freeze:1", seed=s) for s in SEEDS])
    assert not fusable([base.replace(seed=1), base.replace(seed=2, lr=0.01)])
    assert not fusable([base])
