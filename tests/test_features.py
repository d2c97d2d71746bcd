"""The PANNs log-mel recipe: equality with torchlibrosa (and librosa's filter bank), shapes, hash."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audiotransfer.data.features import RECIPES, FeatureRecipe, LogMel, get_recipe, mel_filterbank
from audiotransfer.errors import UserError


def signals(rate: int, seconds: float = 1.5) -> np.ndarray:
    """Real-valued test signals: a chirp over noise, a harmonic tone, speech-like bursts, pink-ish noise."""
    rng = np.random.default_rng(0)
    t = np.arange(round(rate * seconds)) / rate
    chirp = 0.4 * np.sin(2 * np.pi * (100 + 2000 * t) * t) + 0.01 * rng.standard_normal(t.size)
    harmonic = sum(0.2 / k * np.sin(2 * np.pi * 220 * k * t) for k in range(1, 8)) + 1e-3 * rng.standard_normal(t.size)
    bursts = rng.standard_normal(t.size) * (np.sin(2 * np.pi * 4 * t) > 0.3) * 0.3 + 1e-3 * rng.standard_normal(t.size)
    pink = np.cumsum(rng.standard_normal(t.size)) * 1e-3
    return np.stack([chirp, harmonic, bursts, pink - pink.mean()]).astype(np.float32)


@pytest.mark.parametrize("name", list(RECIPES))
def test_matches_torchlibrosa(name: str) -> None:
    from torchlibrosa.stft import LogmelFilterBank, Spectrogram

    r = RECIPES[name]
    x = torch.from_numpy(signals(r.sample_rate))
    spectrogram = Spectrogram(
        n_fft=r.n_fft, hop_length=r.hop_length, win_length=r.win_length, window="hann", center=True, pad_mode="reflect"
    )
    logmel = LogmelFilterBank(
        sr=r.sample_rate, n_fft=r.n_fft, n_mels=r.n_mels, fmin=r.fmin, fmax=r.fmax, ref=r.ref, amin=r.amin, top_db=None
    )
    expected = logmel(spectrogram(x))[:, 0].numpy()
    ours = LogMel(r)(x).numpy()
    assert ours.shape == expected.shape == (4, x.shape[1] // r.hop_length + 1, r.n_mels)
    assert np.abs(ours - expected).max() < 1e-3


def test_filterbank_matches_librosa() -> None:
    import librosa

    for r in RECIPES.values():
        ours = mel_filterbank(r.sample_rate, r.n_fft, r.n_mels, r.fmin, r.fmax)
        ref = librosa.filters.mel(sr=r.sample_rate, n_fft=r.n_fft, n_mels=r.n_mels, fmin=r.fmin, fmax=r.fmax)
        np.testing.assert_allclose(ours, ref.T, atol=1e-7)


def test_frames_batch_and_floor() -> None:
    r = FeatureRecipe()
    module = LogMel(r)
    x = torch.from_numpy(signals(16000, 1.0))
    batch = module(x)
    assert batch.shape[1] == r.num_frames(16000) == 101
    torch.testing.assert_close(batch[2], module(x[2:3])[0], atol=1e-4, rtol=0)
    silent = module(torch.zeros(1, 1600))
    assert torch.all(silent == r.floor_db) and r.floor_db == -100.0
    with pytest.raises(ValueError, match="shorter"):
        module(torch.zeros(1, 100))


def test_top_db_clips_each_clip() -> None:
    r = FeatureRecipe(top_db=40.0)
    out = LogMel(r)(torch.from_numpy(signals(16000, 0.5)))
    span = out.amax(dim=(1, 2)) - out.amin(dim=(1, 2))
    assert torch.all(span <= 40.0 + 1e-4) and torch.any(span > 39.0)


def test_hash_is_stable_and_specific() -> None:
    assert FeatureRecipe().hash == "a9ad767fdab8"  # fixed forever: stores on disk are named by it
    assert FeatureRecipe(fmin=50).hash == FeatureRecipe(fmin=50.0).hash
    hashes = {r.hash for r in RECIPES.values()} | {FeatureRecipe(n_mels=128).hash}
    assert len(hashes) == len(RECIPES) + 1
    assert FeatureRecipe(**RECIPES["demo"].model_dump()).hash == RECIPES["demo"].hash
    assert RECIPES["demo"].hop_length == 320 and RECIPES["demo"].n_mels == 32


def test_bad_recipes() -> None:
    with pytest.raises(ValueError, match="fmax"):
        FeatureRecipe(fmax=9000)
    with pytest.raises(ValueError, match="win_length"):
        FeatureRecipe(win_length=1024)
    with pytest.raises(UserError, match="panns16k"):
        get_recipe("panns")
    assert get_recipe("panns32k").sample_rate == 32000


def test_frames_for_a_duration_is_the_frame_count_of_that_many_samples() -> None:
    r = get_recipe("panns16k")
    assert r.frames_for(10.0) == 1001
    demo = get_recipe("demo")  # 16 kHz, hop 320: 1.01 s is 16160 samples -> 50 full hops + 1
    assert demo.frames_for(1.01) == demo.num_frames(16160) == 51
    assert [r.frames_for(s) for s in (None, 0.0, float("nan"))] == [None, None, None]
