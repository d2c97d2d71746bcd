"""Import of model states: PANNs `.pth`, autrainer CNN10 state dicts and this package's own `model.pt`.

Every import is strict: a weight of the file that the model does not use, a model weight the file lacks,
or a shape that differs is a `UserError` listing the keys, so a wrong layout can never load half-way.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import torch

from audiotransfer.errors import UserError
from audiotransfer.models.cnn import AudioCNN, create_model
from audiotransfer.models.registry import ARCHITECTURES
from audiotransfer.validation import check_version

MODEL_VERSION = 2  # of this package's model.pt; the format itself is described in models/artifact.py
Source = Literal["auto", "panns", "autrainer", "audiotransfer"]
SOURCES = ("auto", "panns", "autrainer", "audiotransfer")
# PANNs checkpoints carry their STFT / mel front end; our models read precomputed log-mels.
PANNS_FRONT_END = ("spectrogram_extractor.", "logmel_extractor.", "spec_augmenter.")
MAX_LISTED = 12


def _listing(keys: list[str]) -> str:
    more = f" ... and {len(keys) - MAX_LISTED} more" if len(keys) > MAX_LISTED else ""
    return ", ".join(keys[:MAX_LISTED]) + more


def _read(path_or_state: str | Path | Mapping[str, Any]) -> tuple[Mapping[str, Any], str]:
    if isinstance(path_or_state, Mapping):
        return path_or_state, "<state dict>"
    path = Path(path_or_state)
    if path.is_dir():
        path = path / "model.pt"
    if not path.is_file():
        raise UserError(f"{path}: checkpoint not found", fix="pass a .pth/.pt file or a finished run directory")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UserError(
            f"{path}: not a readable PyTorch checkpoint ({type(exc).__name__}: {exc})",
            fix="pass a state dict saved with torch.save (PANNs .pth, autrainer model.pt, or run model.pt)",
        ) from None
    if not isinstance(obj, Mapping):
        raise UserError(f"{path}: holds a {type(obj).__name__}, not a state dict", fix="pass a state dict file")
    return obj, str(path)


def read_state(
    path_or_state: str | Path | Mapping[str, Any], source: Source = "auto"
) -> tuple[dict[str, torch.Tensor], str, dict[str, Any] | None]:
    """A checkpoint's weights under this package's names, its detected source and its model config.

    The config is present only for this package's own files; for the others use `infer_config`.
    """
    if source not in SOURCES:
        raise UserError(f"unknown checkpoint source {source!r}", fix=f"use one of: {', '.join(SOURCES)}")
    obj, where = _read(path_or_state)
    if isinstance(obj.get("backbone"), Mapping):  # a linear probe's model.pt: its head and a backbone reference
        obj = {"model": {**backbone_state(obj["backbone"], where), **obj["model"]}, "config": obj["config"]}
    config = obj.get("config") if isinstance(obj.get("config"), Mapping) else None
    if config is not None:  # this package's own model.pt
        check_version(f"{where}: field 'format_version'", obj.get("format_version"), MODEL_VERSION, "model file")
    for wrapper in ("model", "state_dict"):
        if isinstance(obj.get(wrapper), Mapping):
            obj = obj[wrapper]
            break
    state = {k.removeprefix("module."): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    detected = _detect(state, config)
    if source == "auto":
        if detected is None:
            raise UserError(
                f"{where}: neither a PANNs/audiotransfer head ('fc_audioset.weight') nor an autrainer head "
                f"('out.weight') found; keys: {_listing(sorted(state))}",
                fix="pass source='panns' or 'autrainer' explicitly, or check the file",
            )
        source = detected
    elif detected is not None and detected != source:
        raise UserError(
            f"{where}: declared format {source!r}, but the file is {_SOURCE_SIGNS[detected]}",
            fix=f"declare format {detected!r} (or 'auto'), or check that this is the intended file",
        )
    if source == "panns":
        state = {k: v for k, v in state.items() if not k.startswith(PANNS_FRONT_END)}
    elif source == "autrainer":
        state = {re.sub(r"^out\.", "fc_audioset.", k): v for k, v in state.items()}
    return state, source, dict(config) if config is not None else None


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes (read in 16 MiB pieces)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while piece := handle.read(1 << 24):
            digest.update(piece)
    return digest.hexdigest()


def backbone_reference(path: Path, source: str = "auto") -> dict[str, Any]:
    """What a linear probe's model.pt keeps of its frozen backbone: the file's path, size and content hash."""
    file = path / "model.pt" if path.is_dir() else path
    return {"path": str(file.resolve()), "sha256": file_sha256(file), "bytes": file.stat().st_size, "source": source}


def backbone_state(ref: Mapping[str, Any], where: str, override: str | Path | None = None) -> dict[str, torch.Tensor]:
    """The weights of a probe's backbone, found at the path its reference names (or `override`), after
    checking that the file still has the content the probe was trained on."""
    path = Path(override) if override is not None else Path(ref["path"])
    path = path / "model.pt" if path.is_dir() else path
    if not path.is_file():
        raise UserError(
            f"{where}: this linear probe keeps a reference to its backbone, {path}, and that file is gone "
            "(moved or deleted)",
            fix="put the backbone back at that path, or pass its new location (load_model(..., backbone=PATH))",
        )
    digest = file_sha256(path)
    if digest != ref["sha256"]:
        raise UserError(
            f"{where}: the backbone {path} changed since the probe was trained (sha256 {digest[:12]}, "
            f"the probe expects {str(ref['sha256'])[:12]})",
            fix="restore the backbone file the probe was trained on, or train the probe again",
        )
    state, _, _ = read_state(path, ref.get("source", "auto"))
    return state


_SOURCE_SIGNS = {
    "autrainer": "an autrainer state dict (head 'out.weight')",
    "audiotransfer": "an audiotransfer model.pt (head 'fc_audioset.weight' and a model config)",
    "panns": "a PANNs checkpoint (head 'fc_audioset.weight', no model config)",
}


def _detect(state: Mapping[str, Any], config: Mapping[str, Any] | None) -> Source | None:
    """The source a state dict's keys show (None when they show none)."""
    if "out.weight" in state:
        return "autrainer"
    if "fc_audioset.weight" in state:
        return "audiotransfer" if config is not None else "panns"
    return None


def infer_config(state: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """The `create_model` arguments whose layout matches a state dict in this package's names."""
    try:
        blocks = sum(1 for k in state if re.fullmatch(r"conv_block\d+\.conv1\.weight", k))
        first = state["conv_block1.conv1.weight"]
        two_convs = "conv_block1.conv2.weight" in state
        kernel = int(first.shape[-1])
        name = next(
            n
            for n, s in ARCHITECTURES.items()
            if s.num_blocks == blocks and s.kernel == kernel and (s.convs_per_block == 2) == two_convs
        )
        width = int(state["fc1.weight"].shape[1]) / ARCHITECTURES[name].channels[-1]
        return {
            "name": name,
            "num_classes": int(state["fc_audioset.weight"].shape[0]),
            "width": width,
            "n_mels": int(state["bn0.weight"].shape[0]),
        }
    except (KeyError, StopIteration):
        raise UserError(
            f"checkpoint layout matches none of {', '.join(ARCHITECTURES)}; keys: {_listing(sorted(state))}",
            fix="pass a CNN6/CNN10/CNN14 checkpoint in the PANNs or autrainer layout",
        ) from None


def _load_strict(model: AudioCNN, state: Mapping[str, torch.Tensor], where: str) -> None:
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unused = sorted(set(state) - set(own))
    wrong = sorted(
        f"{k} {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in set(own) & set(state)
        if state[k].shape != own[k].shape
    )
    problems = []
    if missing:
        problems.append(f"{len(missing)} model weights missing from the checkpoint: {_listing(missing)}")
    if unused:
        problems.append(f"{len(unused)} checkpoint weights unused by the model: {_listing(unused)}")
    if wrong:
        problems.append(f"{len(wrong)} shapes differ: {_listing(wrong)}")
    if problems:
        raise UserError(
            f"{where}: checkpoint does not fit {model.name} (width {model.width}, {model.n_mels} mels); "
            + "; ".join(problems),
            fix="create the model with the checkpoint's architecture, width and mel count "
            "(model_from_checkpoint does this), or pass the right source",
        )
    model.load_state_dict(state, strict=True)


def load_pretrained(
    model: AudioCNN, path_or_state: str | Path | Mapping[str, Any], source: Source = "auto"
) -> AudioCNN:
    """Load a checkpoint into `model` strictly; the head is resized to the checkpoint's class count."""
    state, detected, _ = read_state(path_or_state, source)
    where = str(path_or_state) if not isinstance(path_or_state, Mapping) else f"<{detected} state dict>"
    head = state.get("fc_audioset.weight")
    if head is not None and head.ndim == 2 and head.shape[0] != model.num_classes:
        model.replace_head(int(head.shape[0]))
    _load_strict(model, state, where)
    return model


def model_from_checkpoint(path_or_state: str | Path | Mapping[str, Any], source: Source = "auto") -> AudioCNN:
    """A model built to the checkpoint's own architecture, with its weights loaded."""
    state, _, config = read_state(path_or_state, source)
    model = create_model(**(config or infer_config(state)))
    where = str(path_or_state) if not isinstance(path_or_state, Mapping) else "<state dict>"
    _load_strict(model, state, where)
    return model
