"""Front-ends: the PANNs log-mel recipe (Kong et al. 2020) in torch, batched, with a stable hash, and
"waveform at N Hz".

Hann window, centred STFT with reflect padding, power spectrum, Slaney mel filter bank and PANNs-style
power-to-dB. The recipe is a small frozen pydantic model so that a feature store can name exactly the
features it holds; its hash identifies them on any machine. A `WaveformRecipe` is the same kind of object
whose "features" are the raw mono samples (frames = samples, one channel), so stores, loaders, crops and
the engine serve waveform models unchanged. `Frontend` is either; `frontend_from_dict` reads one back.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator

from audiotransfer.errors import UserError
from audiotransfer.fields import document_fields


@document_fields
class FeatureRecipe(BaseModel):
    """Parameters of a log-mel feature; the defaults are the study's 16 kHz recipe."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sample_rate: int = Field(16000, description="Hz the audio is resampled to (soxr) before the STFT")
    n_fft: int = Field(512, description="FFT size in samples")
    win_length: int = Field(512, description="Hann window length in samples (<= n_fft)")
    hop_length: int = Field(160, description="samples between frames (160 at 16 kHz: 100 frames per second)")
    n_mels: int = Field(64, description="mel bins (Slaney scale and norm, as librosa / PANNs)")
    fmin: float = Field(50.0, description="lowest mel frequency in Hz")
    fmax: float = Field(8000.0, description="highest mel frequency in Hz (<= sample_rate / 2)")
    amin: float = Field(1e-10, description="power floor before the log: 10 * log10(max(power, amin))")
    ref: float = Field(1.0, description="reference power of 0 dB")
    top_db: float | None = Field(None, description="clip to this many dB below the clip's peak; None: no clipping")

    @model_validator(mode="after")
    def _check(self) -> FeatureRecipe:
        if not 0 < self.win_length <= self.n_fft:
            raise ValueError(f"win_length {self.win_length} must be in 1..n_fft ({self.n_fft})")
        if not 0 <= self.fmin < self.fmax <= self.sample_rate / 2:
            raise ValueError(f"need 0 <= fmin < fmax <= sample_rate/2, got {self.fmin}, {self.fmax}")
        if self.hop_length <= 0 or self.n_mels <= 0 or self.amin <= 0 or self.ref <= 0:
            raise ValueError("hop_length, n_mels, amin and ref must be positive")
        return self

    @property
    def hash(self) -> str:
        """12 hex chars of SHA-256 over the canonical JSON of the fields (floats as floats)."""
        fields = {
            k: (float(v) if isinstance(v, int | float) and not isinstance(v, bool) else v)
            for k, v in self.model_dump().items()
        }
        blob = json.dumps(fields, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    @property
    def floor_db(self) -> float:
        """The smallest value the recipe can produce: `10*log10(amin/ref)` (used to pad short clips)."""
        return 10.0 * math.log10(self.amin) - 10.0 * math.log10(max(self.amin, self.ref))

    def num_frames(self, num_samples: int) -> int:
        """Frames of a centred STFT over `num_samples` samples."""
        return num_samples // self.hop_length + 1

    def frames_for(self, seconds: float | None) -> int | None:
        """Frames of a clip lasting `seconds` (`num_frames` of its samples; 1001 for 10 s at 16 kHz, hop 160).

        The one rule for every crop length derived from a duration: an unknown duration (None, 0 or NaN)
        gives None, and the caller that needs a length says so (or takes the recipe's `frames`).
        """
        if seconds is None or not seconds > 0:
            return None
        return self.num_frames(round(float(seconds) * self.sample_rate))

    @property
    def kind(self) -> str:
        return "logmel"

    def describe(self) -> str:
        """One line naming the front-end (for error messages and reports)."""
        return (
            f"log-mel {self.sample_rate} Hz, n_fft {self.n_fft}, hop {self.hop_length}, {self.n_mels} mels "
            f"{self.fmin:g}-{self.fmax:g} Hz (recipe {self.hash})"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form that `frontend_from_dict` reads back."""
        return {"kind": "logmel", **self.model_dump()}


class WaveformRecipe(BaseModel):
    """The "waveform at N Hz" front-end: a store row holds the mono samples as (samples, 1) frames."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sample_rate: int = Field(16000, gt=0)
    kind: Literal["waveform"] = "waveform"

    @property
    def n_mels(self) -> int:
        """Channels per frame (the store's row width): one."""
        return 1

    @property
    def win_length(self) -> int:
        """Samples per frame: one (the shortest usable clip is one sample)."""
        return 1

    @property
    def hash(self) -> str:
        blob = json.dumps({"kind": "waveform", "sample_rate": self.sample_rate}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    @property
    def floor_db(self) -> float:
        """Padding value of short clips: silence."""
        return 0.0

    def num_frames(self, num_samples: int) -> int:
        return num_samples

    def frames_for(self, seconds: float | None) -> int | None:
        """Samples of a clip lasting `seconds` (None for an unknown duration, as `FeatureRecipe.frames_for`)."""
        if seconds is None or not seconds > 0:
            return None
        return round(float(seconds) * self.sample_rate)

    def describe(self) -> str:
        return f"waveform {self.sample_rate} Hz (recipe {self.hash})"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "waveform", "sample_rate": self.sample_rate}


Frontend = FeatureRecipe | WaveformRecipe


def frontend_from_dict(data: dict[str, Any]) -> Frontend:
    """A front-end from `to_dict()` output (a store sidecar's recipe without "kind" is a log-mel recipe)."""
    fields = dict(data)
    if fields.pop("kind", "logmel") == "waveform":
        return WaveformRecipe(sample_rate=int(fields["sample_rate"]))
    return FeatureRecipe(**fields)


def frontend_module(frontend: Frontend) -> torch.nn.Module:
    """The module turning a (B, N) waveform at the front-end's rate into its (B, frames, channels) features."""
    if isinstance(frontend, WaveformRecipe):
        return Waveform()
    return LogMel(frontend)


class Waveform(torch.nn.Module):
    """Waveform (B, N) -> (B, N, 1): the samples as one-channel frames."""

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        return waveform.unsqueeze(-1)


RECIPES: dict[str, FeatureRecipe] = {
    "panns16k": FeatureRecipe(),
    "panns32k": FeatureRecipe(
        sample_rate=32000, n_fft=1024, win_length=1024, hop_length=320, n_mels=64, fmin=50.0, fmax=14000.0
    ),
    "demo": FeatureRecipe(
        sample_rate=16000, n_fft=512, win_length=512, hop_length=320, n_mels=32, fmin=50.0, fmax=8000.0
    ),
}


def get_recipe(name: str) -> FeatureRecipe:
    """The named recipe; unknown names raise a UserError listing the known ones."""
    if name not in RECIPES:
        raise UserError(f"unknown feature recipe {name!r}", fix=f"use one of: {', '.join(RECIPES)}")
    return RECIPES[name]


def named_frontend(name: str) -> Frontend:
    """A recipe name, or `waveformN`: raw samples at N Hz (the store a public pre-trained model reads)."""
    match = re.fullmatch(r"waveform([1-9][0-9]*)", name)
    if match:
        return WaveformRecipe(sample_rate=int(match.group(1)))
    if name not in RECIPES:
        raise UserError(
            f"unknown feature recipe {name!r}", fix=f"use one of: {', '.join(RECIPES)}, or waveformN (samples at N Hz)"
        )
    return RECIPES[name]


def hz_to_mel(freq: np.ndarray | float) -> np.ndarray:
    """Slaney mel scale: linear below 1 kHz, logarithmic above (as librosa with htk=False)."""
    freq = np.asarray(freq, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0
    mel = freq / f_sp
    high = freq >= min_log_hz
    return np.where(high, min_log_mel + np.log(np.maximum(freq, min_log_hz) / min_log_hz) / logstep, mel)


def mel_to_hz(mel: np.ndarray) -> np.ndarray:
    """Inverse of `hz_to_mel`."""
    mel = np.asarray(mel, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0
    return np.where(mel >= min_log_mel, min_log_hz * np.exp(logstep * (mel - min_log_mel)), f_sp * mel)


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """Slaney-normalised triangular mel filters, shape (n_fft // 2 + 1, n_mels), float32."""
    fft_freqs = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    mel_freqs = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    widths = np.diff(mel_freqs)
    ramps = mel_freqs[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_freqs[2:] - mel_freqs[:-2]))[:, None]
    return weights.T.astype(np.float32)


class LogMel(torch.nn.Module):
    """Waveform (B, N) float -> log-mel (B, T, n_mels) with T = N // hop + 1 (PANNs recipe)."""

    window: torch.Tensor  # buffers, registered in __init__
    melw: torch.Tensor

    def __init__(self, recipe: FeatureRecipe | None = None) -> None:
        super().__init__()
        self.recipe = recipe or FeatureRecipe()
        r = self.recipe
        self.register_buffer("window", torch.hann_window(r.win_length, periodic=True), persistent=False)
        melw = mel_filterbank(r.sample_rate, r.n_fft, r.n_mels, r.fmin, r.fmax)
        self.register_buffer("melw", torch.from_numpy(melw), persistent=False)
        self.offset_db = 10.0 * math.log10(max(r.amin, r.ref))

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        r = self.recipe
        if waveform.shape[-1] <= r.n_fft // 2:
            raise ValueError(
                f"waveform of {waveform.shape[-1]} samples is shorter than half a window "
                f"({r.n_fft // 2 + 1} samples needed)"
            )
        spec = torch.stft(
            waveform,
            n_fft=r.n_fft,
            hop_length=r.hop_length,
            win_length=r.win_length,
            window=self.window,
            center=True,
            pad_mode="reflect",
            return_complex=True,
        )
        spec = spec.transpose(-1, -2)  # (B, T, F): torch.stft lays frames out this way in memory
        power = spec.real.square() + spec.imag.square()
        mel = torch.matmul(power, self.melw)  # (B, T, M)
        logmel = 10.0 * torch.log10(torch.clamp(mel, min=r.amin)) - self.offset_db
        if r.top_db is not None:
            peak = logmel.amax(dim=(-2, -1), keepdim=True)
            logmel = torch.maximum(logmel, peak - r.top_db)
        return logmel
