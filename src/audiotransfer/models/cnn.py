"""CNN6 / CNN10 / CNN14 in the PANNs layout, on precomputed log-mel input.

Parameter names follow Kong et al.'s public code (`bn0`, `conv_block{i}.conv{1,2}`, `conv_block{i}.bn{1,2}`,
`fc1`, `fc_audioset`) so their checkpoints load by name. There is no spectrogram front end: inputs are
log-mel features `(batch, frames, mels)` read from the feature store. A width multiplier scales every
channel count, giving CPU-sized variants of the same layout.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from audiotransfer.errors import UserError
from audiotransfer.models.registry import get_spec, scaled


def _init_layer(layer: nn.Conv2d | nn.Linear) -> None:
    nn.init.xavier_uniform_(layer.weight)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)


def _init_bn(bn: nn.BatchNorm2d) -> None:
    nn.init.ones_(bn.weight)
    nn.init.zeros_(bn.bias)


class ConvBlock(nn.Module):
    """One or two (conv, BN, ReLU) stages followed by average pooling."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, convs: int) -> None:
        super().__init__()
        pad = kernel // 2
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel, padding=pad, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        _init_layer(self.conv1)
        _init_bn(self.bn1)
        if convs == 2:
            self.conv2 = nn.Conv2d(out_channels, out_channels, kernel, padding=pad, bias=False)
            self.bn2 = nn.BatchNorm2d(out_channels)
            _init_layer(self.conv2)
            _init_bn(self.bn2)

    def forward(self, x: torch.Tensor, pool: int) -> torch.Tensor:
        x = F.relu_(self.bn1(self.conv1(x)))
        if hasattr(self, "conv2"):
            x = F.relu_(self.bn2(self.conv2(x)))
        return F.avg_pool2d(x, pool) if pool > 1 else x


class AudioCNN(nn.Module):
    """A PANNs CNN: bn0 over mel bins, conv blocks, mean over mel, max+mean over time, fc1, head."""

    def __init__(self, name: str, num_classes: int, width: float = 1.0, n_mels: int = 64) -> None:
        super().__init__()
        spec = get_spec(name)
        self.name, self.width, self.n_mels = name, float(width), int(n_mels)
        self.bn0 = nn.BatchNorm2d(n_mels)
        _init_bn(self.bn0)
        in_ch = 1
        for i, ch in enumerate(spec.channels, start=1):
            out_ch = scaled(ch, width)
            self.add_module(f"conv_block{i}", ConvBlock(in_ch, out_ch, spec.kernel, spec.convs_per_block))
            in_ch = out_ch
        # CNN14's sixth block keeps its resolution (pool 1x1), as in PANNs.
        self._pools = [2] * min(spec.num_blocks, 5) + [1] * max(0, spec.num_blocks - 5)
        self.fc1 = nn.Linear(in_ch, in_ch)
        self.fc_audioset = nn.Linear(in_ch, num_classes)
        _init_layer(self.fc1)
        _init_layer(self.fc_audioset)

    # ------------------------------------------------------------------ structure
    @property
    def num_blocks(self) -> int:
        return len(self._pools)

    @property
    def embedding_dim(self) -> int:
        return self.fc1.out_features

    @property
    def num_classes(self) -> int:
        return self.fc_audioset.out_features

    @property
    def block_names(self) -> list[str]:
        """Named stages in forward order: "conv_block1".."conv_blockN", then "embedding"."""
        return [f"conv_block{i}" for i in range(1, self.num_blocks + 1)] + ["embedding"]

    def blocks(self) -> list[ConvBlock]:
        return [getattr(self, f"conv_block{i}") for i in range(1, self.num_blocks + 1)]

    @property
    def config(self) -> dict[str, Any]:
        """Arguments that rebuild this architecture with `create_model(**config)`."""
        return {"name": self.name, "num_classes": self.num_classes, "width": self.width, "n_mels": self.n_mels}

    def replace_head(self, num_classes: int) -> None:
        """A freshly initialised `fc_audioset` with `num_classes` outputs (on the same device)."""
        head = nn.Linear(self.embedding_dim, num_classes).to(self.fc1.weight.device)
        _init_layer(head)
        self.fc_audioset = head

    # -------------------------------------------------------------------- forward
    def _stages(self, x: torch.Tensor, keep: set[str] | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Run the backbone on (B, T, M); return the embedding and pooled activations of `keep`."""
        kept: dict[str, torch.Tensor] = {}
        need = get_spec(self.name).min_size
        if x.shape[1] < need:
            raise UserError(
                f"{self.name}: crops of {x.shape[1]} frames are too short; it pools time {need}-fold",
                fix=f"use crops of at least {need} frames (recipe field 'frames', or longer clips)",
            )
        x = x.unsqueeze(1).transpose(1, 3)  # (B, M, T, 1): BatchNorm over mel bins
        x = self.bn0(x).transpose(1, 3)  # (B, 1, T, M)
        if x.is_cuda:
            x = x.contiguous(memory_format=torch.channels_last)
        for i, (block, pool) in enumerate(zip(self.blocks(), self._pools, strict=True), start=1):
            x = F.dropout(block(x, pool), p=0.2, training=self.training)
            if keep is not None and f"conv_block{i}" in keep:
                kept[f"conv_block{i}"] = x.mean(dim=(2, 3))
        x = x.mean(dim=3)  # over mel
        x = x.amax(dim=2) + x.mean(dim=2)  # over time
        x = F.dropout(x, p=0.5, training=self.training)
        x = F.relu_(self.fc1(x))
        if keep is not None and "embedding" in keep:
            kept["embedding"] = x
        return x, kept

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B, classes) of log-mel input (B, T, M)."""
        return self.fc_audioset(self._stages(x)[0])

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The fc1 embedding (B, D) that the head reads."""
        return self._stages(x)[0]

    def frame_embeddings(self, x: torch.Tensor) -> torch.Tensor:
        """The last conv block's output averaged over mel bins: (B, T', channels), one row per
        `2 ** min(blocks, 5)` input frames (what the global pooling reduces to the clip embedding)."""
        x = self.bn0(x.unsqueeze(1).transpose(1, 3)).transpose(1, 3)
        for block, pool in zip(self.blocks(), self._pools, strict=True):
            x = block(x, pool)
        return x.mean(dim=3).transpose(1, 2)

    def activations(self, x: torch.Tensor, names: list[str] | None = None) -> dict[str, torch.Tensor]:
        """Activations of the named stages, each globally mean-pooled to (B, channels)."""
        wanted = list(names) if names is not None else self.block_names
        unknown = [n for n in wanted if n not in self.block_names]
        if unknown:
            raise KeyError(f"unknown block names {unknown}; known: {self.block_names}")
        return self._stages(x, set(wanted))[1]


def create_model(name: str, num_classes: int, width: float = 1.0, n_mels: int = 64) -> AudioCNN:
    """A randomly initialised `AudioCNN` (PANNs initialisation) of architecture `name`."""
    if width <= 0:
        raise UserError(f"model width must be positive, got {width}", fix="use e.g. 1.0, 0.5 or 0.125")
    if n_mels < get_spec(name).min_size:
        raise UserError(
            f"{name} pools the mel axis {get_spec(name).min_size}-fold; {n_mels} mel bins are too few",
            fix=f"use features with at least {get_spec(name).min_size} mel bins",
        )
    if num_classes < 1:
        raise UserError(f"a model needs at least one output class, got {num_classes}")
    return AudioCNN(name=name, num_classes=num_classes, width=width, n_mels=n_mels)
