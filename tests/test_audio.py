"""Audio decoding: formats, bit depths, channels, resampling, windows, and unusable files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audiotransfer.data.audio import AudioError, audio_info, fit_length, load_audio, resample


def tone(rate: int, seconds: float, freq: float = 1000.0, channels: int = 1) -> np.ndarray:
    t = np.arange(round(rate * seconds)) / rate
    wave = 0.5 * np.sin(2 * np.pi * freq * t)
    return np.stack([wave] * channels, axis=1) if channels > 1 else wave


def peak_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[np.argmax(spectrum)])


@pytest.mark.parametrize(
    ("fmt", "subtype", "rate", "channels"),
    [
        ("WAV", "PCM_24", 44100, 2),
        ("WAV", "PCM_16", 16000, 1),
        ("WAV", "PCM_U8", 8000, 1),
        ("WAV", "FLOAT", 48000, 1),
        ("FLAC", "PCM_16", 22050, 2),
        ("OGG", "VORBIS", 32000, 1),
        ("MP3", "MPEG_LAYER_III", 44100, 1),
    ],
)
def test_decodes_to_mono_at_target_rate(tmp_path: Path, fmt: str, subtype: str, rate: int, channels: int) -> None:
    if fmt not in sf.available_formats():
        pytest.skip(f"libsndfile lacks {fmt}")
    path = tmp_path / f"x.{fmt.lower()}"
    sf.write(path, tone(rate, 0.5, channels=channels), rate, format=fmt, subtype=subtype)
    samples = load_audio(path, 16000)
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert abs(len(samples) - 8000) <= 1200  # MP3 adds encoder padding
    assert peak_hz(samples, 16000) == pytest.approx(1000, abs=5)
    assert 0.3 < np.abs(samples).max() < 0.7


def test_stereo_is_averaged(tmp_path: Path) -> None:
    data = np.stack([tone(16000, 0.1), np.zeros(1600)], axis=1)
    sf.write(tmp_path / "s.wav", data, 16000, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(tmp_path / "s.wav", 16000), data.mean(axis=1), atol=1e-6)


def test_window_offset_duration(tmp_path: Path) -> None:
    ramp = np.linspace(-1, 1, 44100)
    sf.write(tmp_path / "r.wav", ramp, 44100, subtype="FLOAT")
    part = load_audio(tmp_path / "r.wav", 44100, offset=0.25, duration=0.5)
    np.testing.assert_allclose(part, ramp[11025 : 11025 + 22050], atol=1e-6)


def test_resample_and_fit_length() -> None:
    x = tone(48000, 1.0, freq=440).astype(np.float32)
    y = resample(x, 48000, 16000)
    assert len(y) == 16000 and peak_hz(y, 16000) == pytest.approx(440, abs=2)
    assert len(resample(x, 16000, 16000)) == 48000
    assert fit_length(y, 100).shape == (100,)
    padded = fit_length(y[:10], 20)
    assert padded.shape == (20,) and not padded[10:].any()


def test_unusable_files(tmp_path: Path) -> None:
    sf.write(tmp_path / "empty.wav", np.zeros(0), 16000)
    (tmp_path / "garbage.wav").write_bytes(b"not audio at all" * 10)
    with pytest.raises(AudioError, match="empty"):
        load_audio(tmp_path / "empty.wav", 16000)
    with pytest.raises(AudioError, match="unreadable"):
        load_audio(tmp_path / "garbage.wav", 16000)
    with pytest.raises(AudioError, match="unreadable"):
        audio_info(tmp_path / "missing.wav")
    sf.write(tmp_path / "ok.flac", tone(22050, 0.2), 22050)
    assert audio_info(tmp_path / "ok.flac") == (4410, 22050)
