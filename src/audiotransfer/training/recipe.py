"""Training recipes: the one place for the study's defaults (Milling et al. 2026, after PANNs).

`PRETRAIN`: CNN10 from scratch, multi-label BCE, Adam lr 1e-3, batch 128, 30 epochs.
`FINETUNE`: all weights, class-weighted cross-entropy, Adam lr 1e-3, batch 32, 50 epochs, no scheduler,
no augmentation, best epoch on dev accuracy. Both are `TrainRecipe`s; change fields with
`recipe.replace(field=value)` (validated).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from audiotransfer.fields import document_fields
from audiotransfer.training.metric_registry import METRICS

PROTOCOL_PATTERN = re.compile(r"(finetune|linear|scratch)|freeze:([1-9][0-9]*)")
DEVICE_PATTERN = re.compile(r"auto|cpu|mps|cuda(:\d+)?")
RUNTIME_FIELDS = ("device", "checkpoint_every", "checkpoint_interval_s", "readers")  # do not change a result
MAX_SEED = 2**63 - 1  # torch.manual_seed and SQLite INTEGER both take 0..2^63-1
SELECT_METRICS = tuple(METRICS)


@dataclass(frozen=True)
class Protocol:
    """A parsed protocol: its kind (finetune, linear, scratch, freeze) and how many leading conv blocks
    it freezes (k of `freeze:k`, else 0)."""

    kind: str
    frozen_blocks: int = 0


def parse_protocol(value: str) -> Protocol:
    """The one reading of a protocol string; a ValueError names the grammar."""
    match = PROTOCOL_PATTERN.fullmatch(value)
    if not match:
        raise ValueError(f"protocol {value!r} is not one of finetune, linear, scratch, freeze:K (K >= 1)")
    return Protocol(match.group(1)) if match.group(1) else Protocol("freeze", int(match.group(2)))


@document_fields
class TrainRecipe(BaseModel):
    """Everything that decides a training run's result, except its data and its starting weights.

    Frozen and validated; `replace` gives a changed copy, `hash` identifies what changes results.

    Examples:
        >>> from audiotransfer.training.recipe import FINETUNE
        >>> recipe = FINETUNE.replace(model="cnn6", width=0.25, protocol="linear")
        >>> recipe.model, recipe.batch_size, recipe.protocol, len(recipe.hash)
        ('cnn6', 32, 'linear', 12)
        >>> FINETUNE.replace(protocol="freeze")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        pydantic_core._pydantic_core.ValidationError: 1 validation error for TrainRecipe
        ...
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = Field("cnn10", description="architecture: cnn6, cnn10 or cnn14 (PANNs layout)")
    width: float = Field(
        1.0,
        gt=0,
        description="channel width multiplier (1.0: the PANNs model; 0.125: 1/8 of its channels, for CPUs and tests)",
    )
    epochs: int = Field(50, ge=1, description="passes over the training clips (ignored when `steps` is set)")
    steps: int | None = Field(
        None,
        ge=1,
        description="train for this many optimiser steps instead: epochs = "
        "ceil(steps / batches per epoch), the same compute for every data size (as PANNs "
        "counts iterations)",
    )
    batch_size: int = Field(32, ge=1, description="training clips per optimiser step")
    eval_batch_size: int = Field(64, ge=1, description="clips per forward pass when evaluating or embedding")
    lr: float = Field(1e-3, gt=0, description="learning rate (of the head; see backbone_lr_scale)")
    optimizer: Literal["adam", "adamw", "sgd"] = Field("adam", description="adam, adamw or sgd (momentum 0.9)")
    weight_decay: float = Field(0.0, ge=0, description="L2 penalty (decoupled for adamw)")
    scheduler: Literal["none", "cosine", "step"] = Field(
        "none", description="learning-rate schedule over epochs: none, cosine or step"
    )
    step_epochs: int = Field(10, ge=1, description="'step' scheduler: epochs between decays")
    step_gamma: float = Field(0.1, gt=0, description="'step' scheduler: decay factor")
    frames: int | None = Field(None, ge=1, description="crop length; None: from the manifest's clip_seconds")
    protocol: str = Field(
        "finetune",
        description="finetune (all weights), linear (frozen backbone, a new head), "
        "freeze:K (first K conv blocks frozen) or scratch (random initialisation)",
    )
    backbone_lr_scale: float = Field(1.0, ge=0, description="backbone lr = lr * this; the head gets lr")
    class_weights: bool = Field(True, description="single-label: balanced class weights in the loss")
    mixup: float = Field(0.0, ge=0, description="mixup Beta(alpha, alpha); 0 disables (multi-label only)")
    balanced: bool = Field(False, description="class-balanced sampling of training clips, as in PANNs")
    seed: int = Field(0, ge=0, le=MAX_SEED, description="seeds initialisation, data order and crops (0..2^63-1)")
    device: str = Field("cpu", description="auto, cpu, cuda, cuda:N or mps")
    select_metric: str | None = Field(
        None,
        description="dev metric for the best epoch; None: accuracy for single-label tasks, mAP for multi-label ones",
    )
    bf16_on_cpu: bool = Field(
        False,
        description="bfloat16 autocast of forward passes on CPU, as on CUDA (about 1.3x faster training where the "
        "CPU computes bfloat16 natively, e.g. AVX512-BF16 or AMX; slower elsewhere, with the same results)",
    )
    patience: int | None = Field(
        None,
        ge=1,
        description="stop when the dev metric has not improved for this many epochs (the best epoch is kept "
        "either way; None: train every epoch)",
    )
    checkpoint_every: int = Field(0, ge=0, description="also checkpoint every N batches (0: epoch ends only)")
    checkpoint_interval_s: float = Field(
        0.0,
        ge=0,
        description="write an epoch-end resume checkpoint (and the running metrics.json) only when this many "
        "seconds passed since the last (0: every epoch); short runs then skip writes a resume would barely use",
    )
    readers: int = Field(2, ge=1, le=64, description="threads reading training batches from the store ahead")

    @field_validator("protocol")
    @classmethod
    def _protocol(cls, value: str) -> str:
        parse_protocol(value)
        return value

    @field_validator("model")
    @classmethod
    def _model(cls, value: str) -> str:
        from audiotransfer.models.registry import ARCHITECTURES

        if value not in ARCHITECTURES:
            raise ValueError(f"model {value!r} is not one of {', '.join(ARCHITECTURES)}")
        return value

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if not DEVICE_PATTERN.fullmatch(value):
            raise ValueError(f"device {value!r} is not one of auto, cpu, cuda, cuda:N, mps")
        return value

    @field_validator("select_metric")
    @classmethod
    def _select(cls, value: str | None) -> str | None:
        if value is not None and value not in SELECT_METRICS:
            raise ValueError(f"select_metric {value!r} is not one of {', '.join(SELECT_METRICS)}")
        return value

    def replace(self, **changes: object) -> TrainRecipe:
        """A validated copy with some fields changed."""
        return TrainRecipe.model_validate({**self.model_dump(), **changes})

    def epochs_for(self, batches_per_epoch: int) -> int:
        """Epochs to train: `epochs`, or enough whole epochs to make `steps` optimiser steps."""
        if self.steps is None:
            return self.epochs
        return max(1, math.ceil(self.steps / max(1, batches_per_epoch)))

    @property
    def frozen_blocks(self) -> int:
        """How many leading conv blocks the protocol freezes (0 unless `freeze:k`)."""
        return parse_protocol(self.protocol).frozen_blocks

    @property
    def hash(self) -> str:
        """Hash of the fields that change results (device, checkpoint cadence and readers excluded)."""
        fields = self.model_dump(exclude=set(RUNTIME_FIELDS))
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:12]


PRETRAIN = TrainRecipe(model="cnn10", epochs=30, batch_size=128, protocol="scratch")
# The study picked the best fine-tuning epoch on dev accuracy and reported test UAR.
FINETUNE = TrainRecipe(
    model="cnn10", epochs=50, batch_size=32, protocol="finetune", class_weights=True, select_metric="accuracy"
)

# The one default for the best epoch, in Python and on the command line: dev accuracy for single-label tasks
# (the study's choice, also FINETUNE's), dev mAP for multi-label ones.
DEFAULT_SELECT = {"multilabel": "mAP", "multiclass": "accuracy", "binary": "accuracy"}
# the dev metrics each task type has (training/metrics.py)
TASK_METRICS = {
    "multilabel": ("mAP", "auc", "d_prime", "micro_f1", "macro_f1"),
    "multiclass": ("accuracy", "uar", "macro_f1"),
    "binary": ("accuracy", "uar", "macro_f1", "auc"),
}
