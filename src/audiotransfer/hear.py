"""The HEAR 2021 common API for every model `audiotransfer.load_model` loads, so hear-eval-kit can score it.

    import audiotransfer.hear as hear
    model = hear.load_model("runs/pretrain/full")          # a run folder, model.pt, PANNs .pth, ...
    scene = hear.get_scene_embeddings(audio, model)       # (n_sounds, scene_embedding_size)
    frames, ms = hear.get_timestamp_embeddings(audio, model)

HEAR feeds audio at 16, 22.05, 44.1 or 48 kHz only: a model of another rate declares the lowest of those at
or above its own (a 32 kHz CNN14: 44.1 kHz, so nothing it could hear is lost) and resamples inside.
Scene embeddings are the clip embeddings of `InferenceModel.embed`, timestamp embeddings its `embed_frames`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from audiotransfer.models.inference import Loaded

HEAR_RATES = (16000, 22050, 44100, 48000)


def hear_rate(rate: int) -> int:
    """The HEAR input rate a model of `rate` Hz declares."""
    return next((r for r in HEAR_RATES if r >= rate), HEAR_RATES[-1])


class HearModel(torch.nn.Module):
    """A loaded model with the attributes HEAR asks for (and a torch Module, as its validator wants)."""

    def __init__(self, inner: Loaded) -> None:
        super().__init__()
        self.inner = inner
        self.network = inner.network  # registered, so .to() and .eval() reach the weights
        self.sample_rate = hear_rate(inner.sample_rate)
        self.scene_embedding_size = int(inner.embedding_dim)
        self.timestamp_embedding_size = int(inner.frame_dim)


def load_model(model_file_path: str = "", format: str = "auto", recipe: str | None = None) -> HearModel:
    """HEAR `load_model`: the model at `model_file_path` (see `audiotransfer.load_model`)."""
    from audiotransfer.models.load import load_model as load

    if not model_file_path:
        raise ValueError("audiotransfer.hear needs a model file: a run folder, model.pt or checkpoint")
    inner = load(Path(model_file_path), format=format, recipe=recipe)
    inner.network.to("cpu")
    return HearModel(inner)


def _rows(audio: torch.Tensor) -> list[np.ndarray]:
    if audio.ndim != 2:
        raise ValueError(f"HEAR audio is (n_sounds, n_samples), got shape {tuple(audio.shape)}")
    return list(audio.detach().float().cpu().numpy())


def get_scene_embeddings(audio: torch.Tensor, model: HearModel) -> torch.Tensor:
    """(n_sounds, scene_embedding_size) float32 embeddings of (n_sounds, n_samples) audio at model.sample_rate."""
    model.network.to("cpu")
    out = model.inner.embed(_rows(audio), sample_rate=model.sample_rate)
    return torch.from_numpy(out).float().to(audio.device)


def get_timestamp_embeddings(audio: torch.Tensor, model: HearModel) -> tuple[torch.Tensor, torch.Tensor]:
    """(n_sounds, n_frames, timestamp_embedding_size) float32 frame embeddings and (n_sounds, n_frames)
    frame centres in milliseconds."""
    model.network.to("cpu")
    frames = model.inner.embed_frames(_rows(audio), sample_rate=model.sample_rate)
    embeddings = torch.from_numpy(np.stack([f for _, f in frames])).float()
    stamps = torch.from_numpy(np.stack([t for t, _ in frames])).float()
    return embeddings.to(audio.device), stamps.to(audio.device)
