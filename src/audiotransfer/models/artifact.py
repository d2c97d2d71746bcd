"""The `model.pt` format: a network together with its front-end, labels and provenance.

Format 2 (written from now on) is a dict of plain containers and tensors, read with `weights_only=True`:

  format, format_version   "audiotransfer.model", 2 (the reader refuses newer versions)
  model                    the weights (a linear probe: only its head, `fc_audioset.*`)
  config                   `create_model` arguments: architecture, classes, width, mels
  frontend                 `Frontend.to_dict()`: the log-mel recipe or "waveform at N Hz" the model reads
  feature_dtype            the store dtype the run read its features in (inference rounds to it, as evaluation did)
  crop_frames              the evaluation window in frames (None: the clip whole)
  pooling                  "probabilities" (mean of window outputs) or "embedding" (head on the mean embedding)
  labels, label_names, task_type, kind, protocol, best_epoch, select_metric
  provenance               state, init, manifest_hash, recipe_hash, frontend_hash
  backbone                 a linear probe only: {path, sha256, bytes, source} of its frozen backbone
                           (a public backbone: config `public` {format, path, hash} names it, backbone repeats it)

Format 1 (no `format_version`) held weights, config and labels: it is read with a warning naming what it lacks,
filled from the run's metrics.json where that sits beside it; its front-end must be given.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from audiotransfer.data.features import Frontend, frontend_from_dict
from audiotransfer.errors import UserError
from audiotransfer.models.checkpoints import MODEL_VERSION, backbone_state

FORMAT = "audiotransfer.model"
FORMAT_VERSION = MODEL_VERSION
HEAD = "fc_audioset."
POOLINGS = ("probabilities", "embedding")


class MigrationWarning(UserWarning):
    """An older model.pt was read: the message says which fields it lacks."""


@dataclass
class ModelCard:
    """Everything a `model.pt` says besides its weights."""

    config: dict[str, Any]
    frontend: dict[str, Any] | None = None
    feature_dtype: str | None = None
    crop_frames: int | None = None
    pooling: str = "probabilities"
    labels: list[str] = field(default_factory=list)
    label_names: list[str] = field(default_factory=list)
    task_type: str | None = None
    kind: str | None = None
    protocol: str | None = None
    best_epoch: int | None = None
    select_metric: str | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    backbone: dict[str, Any] | None = None
    format_version: int = FORMAT_VERSION
    missing: list[str] = field(default_factory=list)  # fields an older file lacked

    @property
    def multilabel(self) -> bool:
        return self.task_type == "multilabel"

    def front_end(self) -> Frontend | None:
        return frontend_from_dict(self.frontend) if self.frontend else None


def save_model_file(path: Path, model: torch.nn.Module, card: ModelCard) -> None:
    """Write `model.pt` (atomically): the whole model, or only its head when `card.backbone` is set."""
    from audiotransfer.files import write_atomic

    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    if card.backbone is not None:
        state = {k: v for k, v in state.items() if k.startswith(HEAD)}
    body = {k: v for k, v in asdict(card).items() if k != "missing"}
    write_atomic(path, lambda tmp: torch.save({"format": FORMAT, **body, "model": state}, tmp))


def is_model_file(obj: Mapping[str, Any]) -> bool:
    """True for this package's `model.pt` of any version (format 1 held 'config' and 'model')."""
    return obj.get("format") == FORMAT or (isinstance(obj.get("config"), Mapping) and "model" in obj)


def read_model_file(
    obj: Mapping[str, Any], where: Path, backbone: str | Path | None = None
) -> tuple[dict[str, torch.Tensor], ModelCard]:
    """Full weights and card of a loaded `model.pt` (format 1 migrated with a warning, newer refused)."""
    version = int(obj.get("format_version", 1))
    if version > FORMAT_VERSION:
        raise UserError(
            f"{where}: model.pt format_version {version} is newer than this audiotransfer reads ({FORMAT_VERSION})",
            fix="upgrade audiotransfer (pip install -U audiotransfer) to read this model",
        )
    state = {k: v for k, v in obj["model"].items() if isinstance(v, torch.Tensor)}
    if version == 1:
        return state, _migrate(obj, where)
    known = set(ModelCard.__dataclass_fields__) - {"missing"}
    card = ModelCard(**{k: v for k, v in obj.items() if k in known})
    if card.pooling not in POOLINGS:
        raise UserError(f"{where}: field 'pooling' is {card.pooling!r}", fix=f"one of {', '.join(POOLINGS)}")
    if card.backbone is not None and "public" not in card.config:  # a public backbone loads from its own files
        state = {**backbone_state(card.backbone, str(where), backbone), **state}
    return state, card


def _migrate(obj: Mapping[str, Any], where: Path) -> ModelCard:
    """A format-1 card: labels and config from the file, protocol and crop from the run's metrics.json."""
    card = ModelCard(
        config=dict(obj["config"]),
        labels=list(obj.get("labels", [])),
        label_names=list(obj.get("label_names", obj.get("labels", []))),
        task_type=obj.get("task_type"),
        kind=obj.get("kind"),
        best_epoch=obj.get("best_epoch"),
        format_version=1,
    )
    metrics = where.parent / "metrics.json"
    if where.name == "model.pt" and metrics.is_file():
        run = json.loads(metrics.read_text())
        card.protocol = run.get("protocol")
        card.crop_frames = (run.get("recipe") or {}).get("frames")
        card.select_metric = run.get("select_metric")
        card.provenance = {k: run.get(k) for k in ("manifest_hash", "recipe_hash", "init")}
        card.pooling = "embedding" if card.protocol == "linear" else "probabilities"
        card.missing = ["frontend", "feature_dtype"] + ([] if card.crop_frames else ["crop_frames"])
    else:
        card.missing = ["frontend", "feature_dtype", "crop_frames", "protocol", "provenance"]
    warnings.warn(
        f"{where}: an older model.pt (format 1) without {', '.join(card.missing)}; "
        "give the front-end it was trained on (recipe=...) to run it on audio",
        MigrationWarning,
        stacklevel=3,
    )
    return card
