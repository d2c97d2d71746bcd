"""Models on audio: model.pt format 2, `load_model(...).predict` equal to the run's evaluation, every audio
form, linear-probe folders, PANNs front-ends and the front-end mismatch error."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

import audiotransfer
from audiotransfer.data.audio import resample
from audiotransfer.data.features import FeatureRecipe, get_recipe
from audiotransfer.data.loader import BatchLoader, clip_outputs
from audiotransfer.data.store import FeatureStore, extract_features, write_store
from audiotransfer.errors import UserError
from audiotransfer.manifest import Manifest, from_label_lists
from audiotransfer.models.artifact import FORMAT_VERSION, MigrationWarning
from audiotransfer.training import FINETUNE, finetune
from audiotransfer.training import load_model as load_network
from audiotransfer.training.protocols import embed_all

RATE = 16000
RECIPE = FeatureRecipe(n_mels=16)
TINY = {"model": "cnn6", "width": 0.125}
TONES = (500.0, 1500.0, 3000.0)


def tone(label: int, seconds: float, rng: np.random.Generator, rate: int = RATE) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * TONES[label] * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


def audio_task(root: Path) -> tuple[Manifest, FeatureStore]:
    """Wav files of three tones, 0.3 to 1.2 s long (crop 0.5 s: padded, one and several windows)."""
    rng = np.random.default_rng(0)
    (root / "audio").mkdir(parents=True)
    rows, lists = [], []
    for i, split in enumerate(["train"] * 36 + ["dev"] * 9 + ["test"] * 9):
        label, seconds = i % 3, float(rng.uniform(0.3, 1.2))
        sf.write(root / "audio" / f"c{i}.wav", tone(label, seconds, rng), RATE, subtype="FLOAT")
        rows.append({"clip_id": f"c{i}", "split": split, "path": f"audio/c{i}.wav"})
        lists.append([str(label)])
    manifest = from_label_lists(
        "tones",
        pd.DataFrame(rows),
        lists,
        labels=["0", "1", "2"],
        label_names=["low", "mid", "high"],
        task_type="multiclass",
        meta={"clip_seconds": 0.5, "root": str(root)},
    )
    return manifest, extract_features(manifest, root / "store", RECIPE, progress=False)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Manifest, FeatureStore, Path]:
    root = tmp_path_factory.mktemp("inference")
    manifest, store = audio_task(root)
    finetune(manifest, store, FINETUNE.replace(**TINY, epochs=3, batch_size=8), root / "run", progress=False)
    return manifest, store, root / "run"


def _paths(manifest: Manifest, split: str) -> list[Path]:
    clips = manifest.split(split).clips
    return [Path(manifest.meta["root"]) / p for p in clips["path"]]


def test_predict_equals_the_runs_evaluation(trained: tuple[Manifest, FeatureStore, Path]) -> None:
    manifest, store, run = trained
    model = audiotransfer.load_model(run)
    assert model.labels == ["low", "mid", "high"] and model.sample_rate == RATE
    assert model.frontend == RECIPE.to_dict() and model.card.format_version == FORMAT_VERSION
    assert model.card.provenance["manifest_hash"] == manifest.hash and model.card.crop_frames == 51
    assert model.card.provenance["state"] == "run" and model.card.pooling == "probabilities"
    network = load_network(run)
    loader = BatchLoader(manifest.split("test"), store, 64, 51, crop="whole", shuffle=False)
    with torch.no_grad():
        expected = clip_outputs(loader, lambda x: torch.softmax(network(x), dim=1)).numpy()
    got = model.predict([str(p) for p in _paths(manifest, "test")])
    assert got.shape == (9, 3) and np.abs(got - expected).max() < 1e-5


def test_every_audio_form(trained: tuple[Manifest, FeatureStore, Path], tmp_path: Path) -> None:
    _, _, run = trained
    model = audiotransfer.load_model(run / "model.pt")
    rng = np.random.default_rng(1)
    wave = tone(2, 0.8, rng)
    sf.write(tmp_path / "a.wav", wave, RATE, subtype="FLOAT")
    one = model.predict(tmp_path / "a.wav")
    assert one.shape == (1, 3) and np.allclose(one.sum(1), 1.0, atol=1e-5)
    assert np.abs(model.predict([str(tmp_path / "a.wav")] * 2) - one).max() < 1e-6
    assert np.abs(model.predict(wave) - one).max() < 1e-6
    assert np.abs(model.predict(torch.from_numpy(wave)) - one).max() < 1e-6
    stereo = np.stack([wave, wave], axis=1)
    assert np.abs(model.predict(stereo, sample_rate=RATE) - one).max() < 1e-6
    low = tone(2, 0.8, rng, rate=8000)
    assert np.abs(model.predict(low, sample_rate=8000) - model.predict(resample(low, 8000, RATE))).max() < 1e-6
    short, long = model.predict([tone(0, 0.1, rng), tone(1, 60.0, rng)])
    assert np.isfinite(short).all() and abs(float(long.sum()) - 1) < 1e-5
    embeddings = model.embed([wave, tone(0, 0.1, rng)])
    assert embeddings.shape == (2, model.embedding_dim)
    stamps, frames = model.embed_frames(tone(0, 3.0, rng))[0]
    assert frames.shape == (len(stamps), model.embedding_dim) and np.all(np.diff(stamps) > 0)
    with pytest.raises(UserError, match="as a list"):
        model.predict(np.zeros((32, 8000), np.float32))
    with pytest.raises(UserError, match="layer"):
        model.embed(wave, layer="nope")


def test_linear_probe_keeps_a_head_and_a_checked_backbone_reference(
    trained: tuple[Manifest, FeatureStore, Path], tmp_path: Path
) -> None:
    manifest, store, run = trained
    backbone = tmp_path / "backbone.pt"
    backbone.write_bytes((run / "model.pt").read_bytes())
    probe = tmp_path / "probe"
    finetune(
        manifest,
        store,
        FINETUNE.replace(**TINY, protocol="linear", epochs=3, batch_size=8),
        probe,
        init=backbone,
        progress=False,
    )
    saved = torch.load(probe / "model.pt", weights_only=True)
    assert set(saved["model"]) == {"fc_audioset.weight", "fc_audioset.bias"}
    assert not any(k.startswith("conv") for k in torch.load(probe / "checkpoint.pt", weights_only=False)["model"])
    folder = sum(p.stat().st_size for p in probe.iterdir())
    assert (probe / "model.pt").stat().st_size < backbone.stat().st_size / 10 and folder < backbone.stat().st_size
    model = audiotransfer.load_model(probe)
    network = load_network(probe)  # the evaluation path: mean window embedding, then the head
    loader = BatchLoader(manifest.split("test"), store, 64, 51, crop="whole", shuffle=False)
    expected = torch.softmax(network.fc_audioset(embed_all(network, loader, torch.device("cpu"))), 1).detach()
    assert np.abs(model.predict([str(p) for p in _paths(manifest, "test")]) - expected.numpy()).max() < 1e-5
    moved = tmp_path / "moved.pt"
    backbone.rename(moved)
    with pytest.raises(UserError, match="gone"):
        audiotransfer.load_model(probe)
    assert audiotransfer.load_model(probe, backbone=moved).labels == model.labels
    moved.write_bytes(moved.read_bytes() + b"\0")
    with pytest.raises(UserError, match="changed"):
        audiotransfer.load_model(probe, backbone=moved)


def test_format_versions(trained: tuple[Manifest, FeatureStore, Path], tmp_path: Path) -> None:
    _, _, run = trained
    saved = torch.load(run / "model.pt", weights_only=True)
    torch.save({**saved, "format_version": FORMAT_VERSION + 1}, tmp_path / "new.pt")
    with pytest.raises(UserError, match="newer"):
        audiotransfer.load_model(tmp_path / "new.pt")
    old = {k: saved[k] for k in ("model", "config", "labels", "label_names", "task_type", "kind", "best_epoch")}
    (tmp_path / "old").mkdir()
    torch.save(old, tmp_path / "old" / "model.pt")
    with pytest.warns(MigrationWarning, match="frontend"), pytest.raises(UserError, match="front-end"):
        audiotransfer.load_model(tmp_path / "old")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MigrationWarning)
        migrated = audiotransfer.load_model(tmp_path / "old", recipe=RECIPE)
    assert migrated.labels == ["low", "mid", "high"] and migrated.card.missing[:2] == ["frontend", "feature_dtype"]


# ------------------------------------------------------------------------------ PANNs


class RefBlock(torch.nn.Module):
    """ConvBlock of the PANNs reference code (audioset_tagging_cnn, pytorch/models.py)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = torch.nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.conv2 = torch.nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn1, self.bn2 = torch.nn.BatchNorm2d(cout), torch.nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor, pool: tuple[int, int]) -> torch.Tensor:
        x = torch.relu_(self.bn2(self.conv2(torch.relu_(self.bn1(self.conv1(x))))))
        return torch.nn.functional.avg_pool2d(x, pool)


class RefCnn14(torch.nn.Module):
    """The PANNs Cnn14 forward (waveform -> torchlibrosa log-mel -> bn0 -> 6 blocks -> clipwise sigmoid)."""

    def __init__(
        self,
        sr: int,
        window: int,
        hop: int,
        mels: int,
        fmin: float,
        fmax: float,
        classes: int,
        channels: tuple[int, ...],
    ) -> None:
        from torchlibrosa.stft import LogmelFilterBank, Spectrogram

        super().__init__()
        self.spectrogram_extractor = Spectrogram(
            n_fft=window,
            hop_length=hop,
            win_length=window,
            window="hann",
            center=True,
            pad_mode="reflect",
            freeze_parameters=True,
        )
        self.logmel_extractor = LogmelFilterBank(
            sr=sr,
            n_fft=window,
            n_mels=mels,
            fmin=fmin,
            fmax=fmax,
            ref=1.0,
            amin=1e-10,
            top_db=None,
            freeze_parameters=True,
        )
        self.bn0 = torch.nn.BatchNorm2d(mels)
        for i, (cin, cout) in enumerate(zip((1, *channels[:-1]), channels, strict=True), start=1):
            self.add_module(f"conv_block{i}", RefBlock(cin, cout))
        self.fc1 = torch.nn.Linear(channels[-1], channels[-1])
        self.fc_audioset = torch.nn.Linear(channels[-1], classes)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        x = self.logmel_extractor(self.spectrogram_extractor(wave))
        x = self.bn0(x.transpose(1, 3)).transpose(1, 3)
        for i in range(1, 7):
            x = getattr(self, f"conv_block{i}")(x, (2, 2) if i < 6 else (1, 1))
        x = x.mean(dim=3)
        x = x.max(dim=2)[0] + x.mean(dim=2)
        return torch.sigmoid(self.fc_audioset(torch.relu_(self.fc1(x))))


def panns_cnn14(path: Path, rate: int, width: float = 0.25) -> RefCnn14:
    """A narrow CNN14 in the PANNs layout with random weights and BN statistics, saved at `path`."""
    torch.manual_seed(0)
    r = get_recipe("panns32k" if rate == 32000 else "panns16k")
    ref = RefCnn14(
        r.sample_rate,
        r.n_fft,
        r.hop_length,
        r.n_mels,
        r.fmin,
        r.fmax,
        527,
        tuple(int(c * width) for c in (64, 128, 256, 512, 1024, 2048)),
    ).eval()
    for module in ref.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.normal_(0, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
    torch.save({"iteration": 0, "model": ref.state_dict()}, path)
    return ref


def test_panns_32k_cnn14_predict_matches_the_reference_code(tmp_path: Path) -> None:
    ref = panns_cnn14(tmp_path / "Cnn14_mAP=0.431.pth", 32000)
    model = audiotransfer.load_model(tmp_path / "Cnn14_mAP=0.431.pth")
    assert model.frontend == get_recipe("panns32k").to_dict() and model.card.crop_frames is None
    wave = np.random.default_rng(0).standard_normal(64000).astype(np.float32) * 0.1
    with torch.no_grad():
        expected = ref(torch.from_numpy(wave)[None]).numpy()
    got = model.predict(wave, sample_rate=32000)
    assert got.shape == (1, 527) and np.abs(got - expected).max() < 1e-4


def test_panns_front_end_from_the_file_name_and_the_filter_bank(tmp_path: Path) -> None:
    panns_cnn14(tmp_path / "Cnn14_16k_mAP=0.438.pth", 16000)
    assert audiotransfer.load_model(tmp_path / "Cnn14_16k_mAP=0.438.pth").frontend == get_recipe("panns16k").to_dict()
    (tmp_path / "Cnn14_16k_mAP=0.438.pth").rename(tmp_path / "mine.pth")  # 16 kHz bank, name says nothing
    with pytest.raises(UserError, match="recipe") as err:
        audiotransfer.load_model(tmp_path / "mine.pth")
    assert "32000 Hz" in err.value.message
    assert audiotransfer.load_model(tmp_path / "mine.pth", recipe="panns16k").sample_rate == 16000


def test_front_end_mismatch_is_a_user_error_naming_both(
    trained: tuple[Manifest, FeatureStore, Path], tmp_path: Path
) -> None:
    manifest, store16, _ = trained
    panns_cnn14(tmp_path / "Cnn14_mAP=0.431.pth", 32000)
    recipe = FINETUNE.replace(epochs=1, batch_size=8)
    with pytest.raises(UserError) as err:
        finetune(manifest, store16, recipe, tmp_path / "r1", init=tmp_path / "Cnn14_mAP=0.431.pth", progress=False)
    assert "32000 Hz" in err.value.message and "16000 Hz" in err.value.message and "--recipe" in (err.value.fix or "")
    # a 128-mel model.pt on 64-mel features
    rng = np.random.default_rng(0)
    wide = FeatureRecipe(n_mels=128)
    ids = manifest.clips["clip_id"].tolist()
    store128 = write_store(tmp_path / "s128", wide, "tones", {c: rng.normal(size=(51, 128)) for c in ids})
    finetune(manifest, store128, recipe.replace(**TINY), tmp_path / "m128", progress=False)
    store64 = write_store(tmp_path / "s64", FeatureRecipe(), "tones", {c: rng.normal(size=(51, 64)) for c in ids})
    with pytest.raises(UserError) as err:
        finetune(manifest, store64, recipe.replace(**TINY), tmp_path / "r2", init=tmp_path / "m128", progress=False)
    assert "128 mels" in err.value.message and "64 mels" in err.value.message


def test_cli_predict_and_embed(
    trained: tuple[Manifest, FeatureStore, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from audiotransfer.cli import main

    manifest, _, run = trained
    folder = tmp_path / "sounds"
    folder.mkdir()
    paths = _paths(manifest, "test")[:3]
    for p in paths:
        (folder / p.name).write_bytes(p.read_bytes())
    (folder / "broken.wav").write_bytes(b"RIFF0000WAVEjunk")
    assert main(["predict", str(run), str(folder), "--top", "2", "--format", "json", "--no-progress"]) == 0
    out, err = capsys.readouterr()
    lines = [json.loads(line) for line in out.splitlines()]
    expected = audiotransfer.load_model(run).predict([str(folder / p.name) for p in paths])
    assert [Path(x["file"]).name for x in lines] == sorted(p.name for p in paths) and "broken.wav" in err
    first = lines[0]["top"][0]
    assert first["probability"] == pytest.approx(float(expected[0].max()), abs=1e-6)
    assert main(["predict", str(run), str(folder), "--stop-on-error", "--no-progress"]) == 2
    assert "broken.wav" in capsys.readouterr().err
    (folder / "broken.wav").unlink()
    assert main(["embed", str(run), str(folder), "--out", str(tmp_path / "e.parquet"), "--no-progress"]) == 0
    table = pd.read_parquet(tmp_path / "e.parquet")
    assert len(table) == 3 and table.shape[1] == 1 + audiotransfer.load_model(run).embedding_dim
    assert main(["embed", str(run), str(folder), "--out", str(tmp_path / "e.npy"), "--no-progress"]) == 0
    assert np.load(tmp_path / "e.npy").shape == (3, table.shape[1] - 1)
    assert (tmp_path / "e.files.txt").read_text().split() == list(table["file"])


@pytest.mark.parametrize("which", ["run", "panns32k"])
def test_hear_validator_passes(
    which: str, trained: tuple[Manifest, FeatureStore, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys
    import types

    import audiotransfer.hear as hear

    stand_in = types.ModuleType("tensorflow")
    stand_in.Module = type("Module", (), {})  # type: ignore[attr-defined]  # hearvalidator only isinstance-checks it
    monkeypatch.setitem(sys.modules, "tensorflow", stand_in)
    monkeypatch.delitem(sys.modules, "hearvalidator.validate", raising=False)
    ValidateModel = pytest.importorskip(  # installed with --no-deps (it requires tensorflow): scripts/setup.sh
        "hearvalidator.validate", reason="hearvalidator 2021.0.2 is not installed"
    ).ValidateModel

    if which == "run":
        weights = trained[2]
    else:
        weights = tmp_path / "Cnn14_mAP=0.431.pth"
        panns_cnn14(weights, 32000, width=0.0625)
    ValidateModel("audiotransfer.hear", str(weights), device="cpu")()
    model = hear.load_model(str(weights))
    assert model.sample_rate == (16000 if which == "run" else 44100)
    audio = torch.rand(2, model.sample_rate) * 2 - 1
    scene = hear.get_scene_embeddings(audio, model)
    expected = model.inner.embed(list(audio.numpy()), sample_rate=model.sample_rate)
    assert torch.allclose(scene, torch.from_numpy(expected))


def test_one_truth_no_dev_split_and_a_different_architecture_are_said(
    trained: tuple[Manifest, FeatureStore, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import json

    manifest, store, run = trained
    no_dev = manifest.take(np.flatnonzero(manifest.clips["split"].to_numpy() != "dev"), name="nodev")
    recipe = FINETUNE.replace(model="cnn10", epochs=2, batch_size=8, select_metric=None)
    result = finetune(no_dev, store, recipe, tmp_path / "r", init=run)
    assert result.best_epoch == 2 and result.best_epoch_rule == "last epoch (no dev split)"
    assert result.model["name"] == "cnn6"
    assert any("cnn6 of width 0.125, not the recipe's cnn10" in n for n in result.notes)
    saved = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert saved["notes"] == result.notes and saved["select_metric"] == "accuracy"
    assert "no dev split" in caplog.text


def test_waveform_front_end_store_holds_the_samples(tmp_path: Path) -> None:
    from audiotransfer.data.features import WaveformRecipe, frontend_from_dict

    recipe = WaveformRecipe(sample_rate=8000)
    assert frontend_from_dict(recipe.to_dict()) == recipe and recipe.hash != RECIPE.hash
    assert recipe.frames_for(0.5) == 4000 and recipe.floor_db == 0.0 and "waveform 8000 Hz" in recipe.describe()
    rng = np.random.default_rng(0)
    (tmp_path / "a").mkdir()
    waves = [tone(i, s, rng) for i, s in ((0, 0.3), (1, 0.7))]
    for i, wave in enumerate(waves):
        sf.write(tmp_path / "a" / f"w{i}.wav", wave, RATE, subtype="FLOAT")
    manifest = from_label_lists(
        "w",
        pd.DataFrame({"clip_id": ["w0", "w1"], "split": "test", "path": ["a/w0.wav", "a/w1.wav"]}),
        [["0"], ["1"]],
        task_type="multiclass",
        meta={"clip_seconds": 0.5, "root": str(tmp_path)},
    )
    store = extract_features(manifest, tmp_path / "store", recipe, progress=False)
    again = FeatureStore(tmp_path / "store")
    assert again.recipe == recipe and again.dtype == np.float32
    assert np.array_equal(store.read(0)[:, 0], resample(waves[0], RATE, 8000))
    x, _ = next(iter(BatchLoader(manifest, store, 2, 4000, crop="center", shuffle=False)))
    assert x.shape == (2, 4000, 1) and x.dtype == torch.float32 and torch.all(x[0, 2400:] == 0.0)
