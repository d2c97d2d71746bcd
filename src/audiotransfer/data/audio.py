"""Audio decoding: any format and bit depth libsndfile reads (WAV, FLAC, OGG, MP3), mono, resampled with soxr."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from audiotransfer.files import unreadable_reason

# libsndfile notes a data chunk shorter than its header claims as "data : <claimed> (should be <present>)"
TRUNCATED = re.compile(r"^data\s*:\s*(\d+) \(should be (\d+)\)", re.MULTILINE)


# sample rates a recipe can resample from; a header outside is refused (a '1 Hz' header makes hours of a few KB)
MIN_RATE, MAX_RATE = 1_000, 384_000


class AudioError(Exception):
    """An audio file that cannot be used: unreadable, empty, truncated, non-finite or too short. Extraction
    records it."""


def check_readable(path: str | Path) -> None:
    """AudioError unless `path` is a regular file this process may read (a FIFO would block forever;
    'not found' / 'permission denied' say what libsndfile calls 'System error')."""
    reason = unreadable_reason(path)
    if reason:
        raise AudioError(f"unreadable: {reason}")


def check_rate(rate: int) -> None:
    """AudioError for a header sample rate outside MIN_RATE..MAX_RATE."""
    if not MIN_RATE <= rate <= MAX_RATE:
        raise AudioError(
            f"sample rate {rate} Hz in the header is outside {MIN_RATE} Hz..{MAX_RATE} Hz "
            "(a damaged or mislabelled header?)"
        )


def audio_info(path: str | Path) -> tuple[int, int]:
    """(frames, sample_rate) of a file from its header, without decoding."""
    check_readable(path)
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioError(f"unreadable: {exc}") from None
    check_rate(int(info.samplerate))
    return int(info.frames), int(info.samplerate)


def load_audio(path: str | Path, sample_rate: int, offset: float = 0.0, duration: float | None = None) -> np.ndarray:
    """Mono float32 samples of `path` at `sample_rate`, optionally a window [offset, offset+duration) s."""
    check_readable(path)
    try:
        with sf.SoundFile(str(path)) as f:
            native = f.samplerate
            check_rate(native)
            cut = TRUNCATED.search(f.extra_info)
            if cut:
                raise AudioError(
                    f"truncated: the header announces {int(cut.group(1)):,} data bytes, the file "
                    f"holds {int(cut.group(2)):,} (an interrupted copy or download?)"
                )
            start = round(offset * native)
            if start:
                f.seek(min(start, f.frames))
            count = -1 if duration is None else round(duration * native)
            data = f.read(frames=count, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioError(f"unreadable: {exc}") from None
    if data.shape[0] == 0:
        raise AudioError("empty: no samples")
    bad = int(data.size - np.count_nonzero(np.isfinite(data)))
    if bad:
        raise AudioError(f"non-finite: {bad} NaN/inf sample values")
    return resample(data.mean(axis=1, dtype=np.float32), native, sample_rate)


def resample(samples: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Band-limited resampling with soxr (high quality); a no-op when the rates match."""
    if rate_in == rate_out:
        return np.ascontiguousarray(samples, dtype=np.float32)
    return soxr.resample(samples, rate_in, rate_out, quality="HQ").astype(np.float32, copy=False)


def fit_length(samples: np.ndarray, length: int) -> np.ndarray:
    """Crop to, or zero-pad at the end to, exactly `length` samples."""
    if samples.shape[-1] >= length:
        return samples[..., :length]
    pad = [(0, 0)] * (samples.ndim - 1) + [(0, length - samples.shape[-1])]
    return np.pad(samples, pad)
