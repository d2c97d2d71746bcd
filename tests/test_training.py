"""The training engine end to end on tiny packed feature stores: pre-training, every protocol, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import audiotransfer.training.engine as engine
from audiotransfer.advise.embed import Candidate, embed_task, labelled_rows
from audiotransfer.cli import main
from audiotransfer.data.features import FeatureRecipe
from audiotransfer.data.loader import BatchLoader, balanced_order, clip_outputs
from audiotransfer.data.store import FeatureStore, write_store
from audiotransfer.errors import UserError
from audiotransfer.manifest import Manifest, from_label_lists
from audiotransfer.models.checkpoints import file_sha256
from audiotransfer.training import FINETUNE, PRETRAIN, finetune, load_model, pretrain
from audiotransfer.training.embedding_cache import EmbeddingKey, load_or_embed
from audiotransfer.training.engine import default_frames

MELS = 16
TINY = {"model": "cnn6", "width": 0.125}


def make_task(
    root: Path,
    name: str,
    task_type: str,
    splits: dict[str, int],
    classes: int = 3,
    seed: int = 0,
    nan_clip: bool = False,
) -> tuple[Manifest, FeatureStore]:
    """A manifest and store whose features carry a bright mel band per label (learnable), 0.5 s clips."""
    rng = np.random.default_rng(seed)
    split = [s for s, n in splits.items() for _ in range(n)]
    ids = [f"{name}{i}" for i in range(len(split))]
    if task_type == "multilabel":
        lists = [rng.choice(classes, size=int(rng.integers(1, 3)), replace=False).tolist() for _ in ids]
    else:
        lists = [[i % classes] for i in range(len(ids))]
    features = {}
    for clip_id, labels in zip(ids, lists, strict=True):
        x = rng.normal(-5.0, 1.0, (int(rng.integers(40, 60)), MELS)).astype(np.float32)
        for label in labels:
            band = (4 * label) % (MELS - 2)
            x[:, band : band + 3] += 4.0
        features[clip_id] = x
    if nan_clip:
        features[ids[0]][:, :] = np.nan
    manifest = from_label_lists(
        name,
        pd.DataFrame({"clip_id": ids, "split": split}),
        [[str(label) for label in labels] for labels in lists],
        labels=[str(c) for c in range(classes)],
        task_type=task_type,  # type: ignore[arg-type]
        meta={"clip_seconds": 0.5},
    )
    store = write_store(root / f"store_{name}", FeatureRecipe(n_mels=MELS), name, features)
    return manifest, store


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("pre")
    manifest, store = make_task(root, "pre", "multilabel", {"train": 48, "test": 16}, classes=4)
    recipe = PRETRAIN.replace(**TINY, epochs=2, batch_size=16, mixup=1.0, balanced=True)
    metrics = pretrain(manifest, store, recipe, root / "run", progress=False)
    return root / "run", metrics


@pytest.fixture(scope="module")
def task(tmp_path_factory: pytest.TempPathFactory) -> tuple[Manifest, FeatureStore]:
    return make_task(tmp_path_factory.mktemp("task"), "task", "multiclass", {"train": 48, "dev": 12, "test": 12})


def test_pretrain_writes_documented_run_directory(pretrained: tuple[Path, dict]) -> None:
    run, metrics = pretrained
    assert {p.name for p in run.iterdir()} >= {"model.pt", "checkpoint.pt", "metrics.json"}
    assert json.loads((run / "metrics.json").read_text()) == metrics.to_json()
    assert metrics.status == "done" and metrics.kind == "pretrain" and metrics.select_metric == "mAP"
    assert metrics.best_epoch == 2  # no dev split: the last epoch
    assert [e["epoch"] for e in metrics.epochs] == [1, 2] and all(e["dev"] is None for e in metrics.epochs)
    assert set(metrics.test) >= {"mAP", "auc", "d_prime", "micro_f1", "macro_f1"}
    assert metrics.num_train_clips == 48 and metrics.init is None
    model = load_model(run)
    assert model.config == {"name": "cnn6", "num_classes": 4, "width": 0.125, "n_mels": MELS}
    assert model.num_classes == 4 and not model.training


def test_finetune_learns_a_separable_task(task: tuple[Manifest, FeatureStore], tmp_path: Path) -> None:
    manifest, store = task
    recipe = FINETUNE.replace(**TINY, epochs=8, batch_size=8, lr=3e-3)
    metrics = finetune(manifest, store, recipe, tmp_path / "run", init=None, progress=False)
    assert metrics.select_metric == "accuracy"  # the study's choice, set in FINETUNE
    best = metrics.epochs[metrics.best_epoch - 1]["dev"]["accuracy"]
    assert best == max(e["dev"]["accuracy"] for e in metrics.epochs)
    assert metrics.test["uar"] > 0.8, metrics


@pytest.mark.parametrize("protocol", ["finetune", "linear", "freeze:2"])
def test_protocols_train_only_their_weights(
    protocol: str, pretrained: tuple[Path, dict], task: tuple[Manifest, FeatureStore], tmp_path: Path
) -> None:
    run, _ = pretrained
    manifest, store = task
    recipe = FINETUNE.replace(epochs=2, batch_size=8, protocol=protocol)
    metrics = finetune(manifest, store, recipe, tmp_path / "run", init=run, progress=False)
    assert metrics.protocol == protocol and metrics.init == str(run.resolve())
    assert set(metrics.test) >= {"accuracy", "uar", "macro_f1"}
    before, after = load_model(run).state_dict(), load_model(tmp_path / "run").state_dict()
    assert after["fc_audioset.weight"].shape == (3, 64)
    frozen = {"linear": ("bn0", "conv_block", "fc1"), "freeze:2": ("bn0", "conv_block1.", "conv_block2.")}
    kept = [k for k in before if k.startswith(frozen.get(protocol, ("-",)))]
    changed = [k for k in before if not k.startswith("fc_audioset") and not torch.equal(before[k], after[k])]
    assert not set(kept) & set(changed)  # weights and BatchNorm statistics
    if protocol == "freeze:2":
        assert any(k.startswith("conv_block3.") for k in changed)
    if protocol == "finetune":
        assert "conv_block1.conv1.weight" in changed
    if protocol == "linear":
        assert list((tmp_path / "run").glob("*-train-*.pt"))  # its embeddings, cached in its own folder
        assert metrics.num_trainable_params == 64 * 3 + 3


def test_binary_task_selects_on_accuracy_by_default(tmp_path: Path) -> None:
    manifest, store = make_task(tmp_path, "bird", "binary", {"train": 24, "dev": 8, "test": 8}, classes=2)
    recipe = FINETUNE.replace(**TINY, epochs=2, batch_size=8, select_metric=None)  # None: by task type
    metrics = finetune(manifest, store, recipe, tmp_path / "r", progress=False)
    assert metrics.select_metric == "accuracy" and "auc" in metrics.test  # one default for every single-label task


def test_patience_stops_a_stalled_run_and_keeps_its_best_epoch(
    task: tuple[Manifest, FeatureStore], tmp_path: Path
) -> None:
    """A learning rate too small to change any prediction stalls the dev metric after epoch 1: with patience 2
    the run stops after epoch 3, says so, and keeps what the full run keeps (epoch 1's weights)."""
    manifest, store = task
    recipe = FINETUNE.replace(**TINY, epochs=5, batch_size=8, lr=1e-12)
    full = finetune(manifest, store, recipe, tmp_path / "full", progress=False)
    stopped = finetune(manifest, store, recipe.replace(patience=2), tmp_path / "stopped", progress=False)
    assert [e["epoch"] for e in full.epochs] == [1, 2, 3, 4, 5] and full.best_epoch == 1
    assert [e["epoch"] for e in stopped.epochs] == [1, 2, 3] and stopped.best_epoch == 1
    assert stopped.test == full.test
    assert any("stopped early after epoch 3 of 5" in note for note in stopped.notes)


def test_checkpoint_interval_skips_resume_writes_not_results(
    task: tuple[Manifest, FeatureStore], tmp_path: Path
) -> None:
    manifest, store = task
    recipe = FINETUNE.replace(**TINY, epochs=2, batch_size=8)
    every = finetune(manifest, store, recipe, tmp_path / "every", progress=False)
    rare = finetune(manifest, store, recipe.replace(checkpoint_interval_s=3600), tmp_path / "rare", progress=False)
    assert (tmp_path / "every" / "checkpoint.pt").exists() and not (tmp_path / "rare" / "checkpoint.pt").exists()
    assert rare.test == every.test and rare.recipe_hash == every.recipe_hash  # a runtime setting


def test_bf16_on_cpu_is_reproducible_and_changes_the_arithmetic(
    task: tuple[Manifest, FeatureStore], tmp_path: Path
) -> None:
    manifest, store = task
    recipe = FINETUNE.replace(**TINY, epochs=1, batch_size=8)
    plain = finetune(manifest, store, recipe, tmp_path / "fp32", progress=False)
    runs = [
        finetune(manifest, store, recipe.replace(bf16_on_cpu=True), tmp_path / f"bf{i}", progress=False) for i in (1, 2)
    ]
    assert runs[0].epochs[0]["train_loss"] == runs[1].epochs[0]["train_loss"] and runs[0].test == runs[1].test
    assert runs[0].epochs[0]["train_loss"] != plain.epochs[0]["train_loss"]  # bfloat16 forward passes ran
    assert runs[0].recipe_hash != plain.recipe_hash  # it changes results, so it is part of the recipe


def test_step_budget_sets_the_epochs_by_data_size(tmp_path: Path) -> None:
    """`steps` gives small and large subsets the same number of optimiser steps (whole epochs, rounded up)."""
    recipe = PRETRAIN.replace(**TINY, steps=9, batch_size=16)
    assert (recipe.epochs_for(3), recipe.epochs_for(9), recipe.epochs_for(10)) == (3, 1, 1)
    assert PRETRAIN.epochs_for(5) == PRETRAIN.epochs  # no budget: the recipe's epochs
    for clips, epochs in ((32, 5), (80, 2)):  # 2 and 5 batches per epoch
        manifest, store = make_task(tmp_path, f"pre{clips}", "multilabel", {"train": clips, "test": 8}, classes=3)
        metrics = pretrain(manifest, store, recipe, tmp_path / f"r{clips}", progress=False)
        assert len(metrics.epochs) == epochs, metrics.epochs


def test_finished_run_is_returned_not_retrained(task: tuple[Manifest, FeatureStore], tmp_path: Path) -> None:
    manifest, store = task
    recipe = FINETUNE.replace(**TINY, epochs=1, batch_size=16)
    first = finetune(manifest, store, recipe, tmp_path / "r", progress=False)
    stamp = (tmp_path / "r" / "model.pt").stat().st_mtime_ns
    assert finetune(manifest, store, recipe, tmp_path / "r", progress=False) == first
    assert (tmp_path / "r" / "model.pt").stat().st_mtime_ns == stamp
    with pytest.raises(UserError, match="different recipe"):
        finetune(manifest, store, recipe.replace(lr=0.1), tmp_path / "r", progress=False)


def test_bad_inputs_are_user_errors(task: tuple[Manifest, FeatureStore], tmp_path: Path) -> None:
    manifest, store = task
    recipe = FINETUNE.replace(**TINY, epochs=1, batch_size=16)
    one = manifest.take(np.flatnonzero(manifest.class_indices() == 0))
    one = Manifest("one", one.clips, ["0"], one.targets[:, :1], task_type="multiclass", meta=one.meta)
    with pytest.raises(UserError, match="1 class"):
        finetune(one, store, recipe, tmp_path / "a", progress=False)
    other, _ = make_task(tmp_path, "other", "multiclass", {"train": 6, "dev": 3})
    with pytest.raises(UserError, match=r"9 of 9 clips are not in the store"):
        finetune(other, store, recipe, tmp_path / "b", progress=False)
    with pytest.raises(UserError, match="freezes 7 blocks"):
        finetune(manifest, store, recipe.replace(protocol="freeze:7"), tmp_path / "c", progress=False)
    finetune(manifest, store, recipe, tmp_path / "d", progress=False)
    with pytest.raises(UserError, match="random initialisation"):
        finetune(
            manifest, store, recipe.replace(protocol="scratch"), tmp_path / "e", init=tmp_path / "d", progress=False
        )


def test_nan_loss_stops_with_epoch_and_batch(tmp_path: Path) -> None:
    manifest, store = make_task(tmp_path, "nan", "multiclass", {"train": 16, "dev": 4}, nan_clip=True)
    recipe = FINETUNE.replace(**TINY, epochs=2, batch_size=4, seed=3)
    with pytest.raises(UserError, match=r"loss is nan at epoch 1, batch \d"):
        finetune(manifest, store, recipe, tmp_path / "r", progress=False)
    assert not (tmp_path / "r" / "model.pt").exists()


def test_loader_sharding_balance_and_resume(task: tuple[Manifest, FeatureStore]) -> None:
    manifest, store = task
    shards = [BatchLoader(manifest, store, 5, 20, seed=1, rank=r, world_size=2).order(3) for r in (0, 1)]
    assert len(shards[0]) == len(shards[1]) == 36
    assert set(shards[0]) | set(shards[1]) == set(range(72))
    full = BatchLoader(manifest, store, 8, 20, seed=1)
    batches = [x for x, _ in full]
    assert full.state_dict() == {"epoch": 1, "position": 0}
    again = BatchLoader(manifest, store, 8, 20, seed=1)
    again.load_state_dict({"epoch": 0, "position": 4})
    assert all(torch.equal(a, b) for (a, _), b in zip(again, batches[4:], strict=True))
    targets = manifest.targets.copy().tolil()
    targets[:, 2] = False
    targets[0, 2] = True  # one clip of a rare class
    order = balanced_order(targets.tocsr(), 300, np.random.default_rng(0))
    assert (order == 0).sum() >= 90  # seen about once per round of three classes


def test_cli_pretrain_and_finetune(
    pretrained: tuple[Path, dict], task: tuple[Manifest, FeatureStore], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    manifest, store = task
    manifest.save(tmp_path / "m")
    args = ["--store", str(store.root), "--epochs", "1", "--batch-size", "16", "--no-progress"]
    assert (
        main(
            [
                "finetune",
                "--from",
                str(pretrained[0]),
                "--manifest",
                str(tmp_path / "m" / "task"),
                "--protocol",
                "linear",
                "--out",
                str(tmp_path / "ft"),
                *args,
            ]
        )
        == 0
    )
    assert json.loads((tmp_path / "ft" / "metrics.json").read_text())["protocol"] == "linear"
    assert (
        main(
            [
                "finetune",
                "--from",
                "scratch",
                "--manifest",
                str(tmp_path / "m" / "task"),
                "--protocol",
                "freeze:0",
                "--out",
                str(tmp_path / "x"),
                *args,
            ]
        )
        == 2
    )
    assert "protocol" in capsys.readouterr().err
    assert (
        main(
            [
                "pretrain",
                "--manifest",
                str(tmp_path / "m" / "task"),
                "--model",
                "cnn6",
                "--width",
                "0.125",
                "--out",
                str(tmp_path / "pt"),
                *args,
            ]
        )
        == 0
    )
    assert "pretrain done" in capsys.readouterr().out


def test_backbone_lr_scale_and_scheduler(
    pretrained: tuple[Path, dict], task: tuple[Manifest, FeatureStore], tmp_path: Path
) -> None:
    manifest, store = task
    recipe = FINETUNE.replace(
        epochs=2, batch_size=16, backbone_lr_scale=0.0, scheduler="step", step_epochs=1, step_gamma=0.5
    )
    finetune(manifest, store, recipe, tmp_path / "r", init=pretrained[0], progress=False)
    before, after = load_model(pretrained[0]).state_dict(), load_model(tmp_path / "r").state_dict()
    assert torch.equal(before["conv_block1.conv1.weight"], after["conv_block1.conv1.weight"])
    assert not torch.equal(before["bn0.running_mean"], after["bn0.running_mean"])  # BN still adapts
    groups = torch.load(tmp_path / "r" / "checkpoint.pt", weights_only=False)["optimizer"]["param_groups"]
    assert [g["lr"] for g in groups] == pytest.approx([1e-3 * 0.25, 0.0])


def test_linear_probe_standardises_and_saves_a_head_for_raw_embeddings(
    pretrained: tuple[Path, dict], task: tuple[Manifest, FeatureStore], tmp_path: Path
) -> None:
    manifest, store = task
    run_dir, _ = pretrained
    recipe = FINETUNE.replace(**TINY, protocol="linear", epochs=5, batch_size=8)
    metrics = finetune(manifest, store, recipe, tmp_path / "probe", init=run_dir, progress=False)
    model = load_model(tmp_path / "probe")
    test = manifest.split("test")
    frames = default_frames(manifest, store)
    loader = BatchLoader(test, store, 64, frames, crop="whole", shuffle=False)  # the head is affine:
    with torch.no_grad():  # mean logits over windows = head(mean embedding), what the probe scores
        predicted = clip_outputs(loader, model).argmax(1).numpy()
    accuracy = float((predicted == test.class_indices()).mean())
    assert accuracy == pytest.approx(metrics.test["accuracy"], abs=1e-9)


def test_folding_the_standardisation_keeps_the_head_function() -> None:
    from audiotransfer.training.engine import _fold_standardisation

    torch.manual_seed(0)
    head = torch.nn.Linear(6, 3)
    e = torch.randn(20, 6) * 5 + 2
    mean, std = e.mean(0), e.std(0)
    expected = head((e - mean) / std)
    _fold_standardisation(head, mean, std)
    assert torch.allclose(head(e), expected, atol=1e-5)


@pytest.mark.parametrize("keep", [False, True])
def test_study_runs_drop_their_resume_checkpoint_unless_kept(tmp_path: Path, keep: bool) -> None:
    from audiotransfer.study.layout import StudyDir
    from audiotransfer.study.plan import Run
    from audiotransfer.study.runner import execute_run

    manifest, store = make_task(tmp_path, "pre", "multilabel", {"train": 16, "test": 8}, classes=3)
    recipe = PRETRAIN.replace(**TINY, epochs=1, batch_size=8)
    out = tmp_path / "runs" / "pretrain" / "pre"
    run = Run.pretrain(
        folder=StudyDir(tmp_path),
        state="pre",
        recipe=recipe,
        manifest=manifest.save(tmp_path / "m"),
        store=store.root,
        data_hash=manifest.hash,
        num_train_clips=16,
        keep_checkpoint=keep,
    )
    result = execute_run(run)
    assert result.status == "done" and (out / "model.pt").exists() and (out / "metrics.json").exists()
    assert (out / "checkpoint.pt").exists() == keep
    assert execute_run(run).test == result.test  # a finished run needs no checkpoint to be returned


# ------------------------------------------------------- the embedding cache shared by probes and the advisor
def _counting(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the probe's backbone passes (one per split embedded)."""
    calls: list[int] = []
    real = engine.embed_all

    def counted(*args: object, **kwargs: object) -> torch.Tensor:
        calls.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(engine, "embed_all", counted)
    return calls


def test_probes_of_every_seed_share_one_embedding_pass(
    pretrained: tuple[Path, dict],
    task: tuple,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run, _ = pretrained
    manifest, store = task
    calls = _counting(monkeypatch)
    recipe = FINETUNE.replace(epochs=3, batch_size=8, protocol="linear")
    cache = tmp_path / "cache"
    first = finetune(
        manifest, store, recipe.replace(seed=1), tmp_path / "s1", init=run, progress=False, embedding_cache=cache
    )
    passes = len(calls)
    assert passes == 3  # train, dev, test
    second = finetune(
        manifest, store, recipe.replace(seed=2), tmp_path / "s2", init=run, progress=False, embedding_cache=cache
    )
    assert len(calls) == passes  # the second seed embedded nothing
    alone = finetune(manifest, store, recipe.replace(seed=2), tmp_path / "alone", init=run, progress=False)
    assert len(calls) == passes + 3  # without the shared cache it embeds again, in its own folder
    assert second.test == pytest.approx(alone.test, abs=1e-6) and second.epochs[-1]["train_loss"] == pytest.approx(
        alone.epochs[-1]["train_loss"], rel=1e-6
    )
    assert first.test != second.test or first.epochs != second.epochs  # the seed still matters to the head


def test_the_advisor_reads_what_the_probe_embedded(
    pretrained: tuple[Path, dict],
    task: tuple,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run, _ = pretrained
    manifest, store = task
    cache = tmp_path / "cache"
    recipe = FINETUNE.replace(epochs=1, batch_size=8, protocol="linear")
    finetune(manifest, store, recipe, tmp_path / "probe", init=run, progress=False, embedding_cache=cache)
    frames = engine.default_frames(manifest, store)
    got = embed_task(Candidate("state", run), manifest, store, frames, cache)
    assert got.cached  # no forward pass: the probe's train and dev embeddings were there
    rows = labelled_rows(manifest)
    split = manifest.clips["split"].to_numpy()[rows]
    key = EmbeddingKey(file_sha256(run / "model.pt"), manifest.hash, "train", frames, store.recipe.hash)
    probe_train = load_or_embed(key, cache, _never).embeddings.numpy()
    np.testing.assert_allclose(got.embeddings[split == "train"], probe_train, rtol=0, atol=0)
    assert got.logits.shape == (len(rows), 4)  # the state's own pre-training head: 4 classes
    fresh = embed_task(Candidate("state", run), manifest, store, frames, tmp_path / "fresh")
    assert not fresh.cached
    np.testing.assert_allclose(fresh.embeddings, got.embeddings, atol=1e-5)
    np.testing.assert_allclose(fresh.logits, got.logits, atol=1e-5)


def _never() -> torch.Tensor:
    raise AssertionError("the cache should have held these embeddings")


def test_a_cache_file_of_another_version_is_recomputed(tmp_path: Path) -> None:
    key = EmbeddingKey("w" * 64, "m" * 64, "train", 40, "r" * 12)
    first = load_or_embed(key, tmp_path, lambda: torch.ones(3, 2))
    assert not first.cached and load_or_embed(key, tmp_path, _never).cached
    path = tmp_path / key.file_name
    saved = torch.load(path, weights_only=True)
    torch.save({**saved, "version": 0}, path)
    again = load_or_embed(key, tmp_path, lambda: torch.zeros(3, 2))
    assert not again.cached and torch.equal(again.embeddings, torch.zeros(3, 2))
