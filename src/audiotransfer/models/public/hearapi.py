"""Any installed module with the HEAR 2021 common API, plus its weights file, as a public model.

The format `hear:MODULE` (MODULE an importable dotted name, e.g. `hear:hearbaseline`) loads `PATH` with the
module's `load_model(PATH)`; the returned model's `sample_rate`, `scene_embedding_size` and
`timestamp_embedding_size` describe it, `get_scene_embeddings` gives `embed` and `get_timestamp_embeddings`
gives `embed_frames` (timestamps in ms, as the API returns them). Callers resample to `sample_rate` first,
as they do for every public family. The API exposes no hidden layers: asking for one is a UserError.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from torch import Tensor

from audiotransfer.errors import UserError
from audiotransfer.models.public.base import PublicModel, as_batch, content_hash

PREFIX = "hear:"
FUNCTIONS = ("load_model", "get_scene_embeddings", "get_timestamp_embeddings")
ATTRIBUTES = ("sample_rate", "scene_embedding_size", "timestamp_embedding_size")
MODULE_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


def is_hear_format(format: str) -> bool:
    """Whether `format` names a HEAR module (`hear:MODULE`); the name's syntax is checked on load."""
    return format.startswith(PREFIX)


def module_name(format: str) -> str:
    """MODULE of `hear:MODULE`; UserError when it is no dotted Python name."""
    name = format[len(PREFIX) :]
    if not MODULE_NAME.fullmatch(name):
        raise UserError(
            f"model format {format!r}: {name!r} is not a Python module name",
            fix="write hear:MODULE with MODULE an importable dotted name, e.g. hear:hearbaseline",
        )
    return name


def import_api(name: str) -> ModuleType:
    """The HEAR module `name`, checked for the API's three functions."""
    try:
        module = importlib.import_module(name)
    except ImportError as exc:
        raise UserError(
            f"HEAR module {name!r} cannot be imported ({exc})",
            fix=f"install the package that provides it into this environment (e.g. `pip install {name.split('.')[0]}`)",
        ) from None
    missing = [f for f in FUNCTIONS if not callable(getattr(module, f, None))]
    if missing:
        raise UserError(
            f"module {name!r} lacks the HEAR API function(s) {', '.join(missing)}",
            fix=f"a HEAR module defines {', '.join(FUNCTIONS)}",
        )
    return module


def version(module: ModuleType) -> str:
    """The module's version (`__version__`, else its distribution's), or '' when it has none."""
    found = getattr(module, "__version__", None)
    if found is None:
        try:
            found = importlib.metadata.version(module.__name__.split(".")[0])
        except importlib.metadata.PackageNotFoundError:
            found = ""
    return str(found)


def _weights(path: str | Path, name: str) -> Path:
    file = Path(path).expanduser()
    if not file.exists():
        raise UserError(f"weights {file} of HEAR module {name!r} not found", fix="pass the module's weights file")
    return file


def hear_hash(path: str | Path, format: str) -> str:
    """Content hash of a HEAR model: its weights file, the module's name and its version."""
    name = module_name(format)
    file = _weights(path, name)
    key = f"{content_hash(file)} {name} {version(import_api(name))}"
    return hashlib.sha1(key.encode()).hexdigest()[:16]


class HearModule(PublicModel):
    """A HEAR module's model behind `PublicModel`: clip and frame embeddings, no layers."""

    num_layers = 0
    frame_hop_s = float("nan")  # the API returns timestamps per call instead of a fixed hop

    def __init__(self, module: ModuleType, model: Any, name: str, weights: Path) -> None:
        super().__init__()
        self.module, self.model, self.family = module, model, f"{PREFIX}{name}"
        missing = [a for a in ATTRIBUTES if not hasattr(model, a)]
        if missing:
            raise UserError(
                f"{weights}: the model of HEAR module {name!r} lacks {', '.join(missing)}",
                fix=f"a HEAR model has the attributes {', '.join(ATTRIBUTES)}",
            )
        self.sample_rate = int(model.sample_rate)
        self.embedding_dim = int(model.scene_embedding_size)
        self.timestamp_dim = int(model.timestamp_embedding_size)
        self.frontend = {"type": "waveform", "sample_rate": self.sample_rate, "hear_module": name}

    @property
    def frame_dim(self) -> int:
        return self.timestamp_dim

    def check_layer(self, layer: int | None) -> int:
        if layer is not None:
            raise UserError(
                f"{self.family} model: layer {layer} asked for, but the HEAR API has no layers",
                fix="leave the layer out (the module's scene embedding is used)",
            )
        return 0

    def hidden_states(self, wave: Tensor) -> list[Tensor]:
        raise UserError(f"{self.family} model: the HEAR API has no hidden states", fix="use embed / embed_frames")

    def embed(self, wave: Tensor, layer: int | None = None) -> Tensor:
        """Scene embeddings (B, D) of the module."""
        self.check_layer(layer)
        out = self.module.get_scene_embeddings(as_batch(wave), self.model)
        return torch.as_tensor(out).detach().float().cpu()

    def embed_layers(self, wave: Tensor, layers: list[int | None]) -> list[Tensor]:
        for layer in layers:
            self.check_layer(layer)
        return [self.embed(wave)] * len(layers)

    def embed_frames(self, wave: Tensor, layer: int | None = None) -> tuple[Tensor, Tensor]:
        """Timestamp embeddings (B, T, D) and their timestamps in ms (B, T), as the module gives them."""
        self.check_layer(layer)
        frames, stamps = self.module.get_timestamp_embeddings(as_batch(wave), self.model)
        as_cpu = (torch.as_tensor(x).detach().float().cpu() for x in (frames, stamps))
        return next(as_cpu), next(as_cpu)


def load(path: str | Path, format: str) -> HearModule:
    """The model of HEAR module `hear:MODULE` from its weights at `path`."""
    name = module_name(format)
    module = import_api(name)
    weights = _weights(path, name)
    return HearModule(module, module.load_model(str(weights)), name, weights)
