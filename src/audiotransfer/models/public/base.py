"""The interface every public pre-trained family implements: a network with its own front-end.

A `PublicModel` takes raw mono waveforms at its `sample_rate` and computes its family's features itself, so a
caller only decodes and resamples. `hidden_states` returns `num_layers + 1` tensors (B, T, D): index 0 is the
input to the first layer, index K the output of layer K, the last one the family's final hidden state (after
its final norm when it has one). `embed` is the mean over time of one of them.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from audiotransfer.errors import UserError


class PublicModel(nn.Module):
    """A public pre-trained audio model: waveform in, hidden states and clip embeddings out."""

    family: str
    sample_rate: int
    frontend: dict[str, Any]
    embedding_dim: int
    num_layers: int
    frame_hop_s: float

    @property
    def frame_dim(self) -> int:
        """Width of a frame embedding (`embed_frames`): a hidden state's, the clip embedding's width."""
        return self.embedding_dim

    def hidden_states(self, wave: Tensor) -> list[Tensor]:
        """`num_layers + 1` tensors (B, T, D) of a batch of waveforms (B, N) at `sample_rate`."""
        raise NotImplementedError

    def layer_states(self, wave: Tensor, layer: int | None) -> Tensor:
        """Hidden state `layer` (None: the last) of a batch, (B, T, D); families override it to stop early."""
        return self.hidden_states(as_batch(wave))[self.check_layer(layer)]

    def embed(self, wave: Tensor, layer: int | None = None) -> Tensor:
        """Clip embeddings (B, D): hidden state `layer` (None: the last) averaged over time."""
        return self.layer_states(wave, layer).mean(dim=1)

    def embed_layers(self, wave: Tensor, layers: list[int | None]) -> list[Tensor]:
        """Clip embeddings (B, D) at each of `layers` from one forward pass."""
        if len(layers) == 1:
            return [self.embed(wave, layers[0])]
        states = self.hidden_states(as_batch(wave))
        return [states[self.check_layer(layer)].mean(dim=1) for layer in layers]

    def embed_frames(self, wave: Tensor, layer: int | None = None) -> tuple[Tensor, Tensor]:
        """Frame embeddings (B, T, D) of hidden state `layer` and each frame's start in ms (B, T)."""
        states = self.layer_states(wave, layer)
        stamps = torch.arange(states.shape[1], dtype=torch.float32) * (self.frame_hop_s * 1000.0)
        return states, stamps.expand(states.shape[0], -1)

    def check_layer(self, layer: int | None) -> int:
        """The index of `layer` in `hidden_states`; UserError when it is out of range."""
        if layer is None:
            return self.num_layers
        if not 0 <= layer <= self.num_layers:
            raise UserError(
                f"{self.family} model: layer {layer} does not exist",
                fix=f"choose a layer from 0 (the input to the first layer) to {self.num_layers} (the last)",
            )
        return layer


def as_batch(wave: Tensor) -> Tensor:
    """A float32 (B, N) batch from (N,), (B, N) or (B, N, 1)."""
    wave = torch.as_tensor(wave, dtype=torch.float32)
    if wave.ndim == 3 and wave.shape[-1] == 1:
        wave = wave[..., 0]
    if wave.ndim == 1:
        wave = wave[None]
    if wave.ndim != 2:
        raise UserError(f"a waveform batch has shape {tuple(wave.shape)}", fix="pass (N,), (B, N) or (B, N, 1) samples")
    return wave


def content_hash(path: str | Path) -> str:
    """SHA-1 (16 hex) of a file's bytes, or of a folder's files (names and bytes, sorted by name)."""
    path = Path(path)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    digest = hashlib.sha1()
    for file in files:
        digest.update(file.relative_to(path).as_posix().encode() if path.is_dir() else b"")
        with file.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]
