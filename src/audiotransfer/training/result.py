"""The run result: what a training run returns and writes as `metrics.json` (the training -> study contract).

`pretrain` and `finetune` return a `RunResult` and write `result.to_json()` to `RUN/metrics.json`; the
study runner adds the path of the run's `model.pt` (`checkpoint`); the results store records its epochs and
test metrics; the CLI prints it. `from_json` reads any `metrics.json`: absent fields take their defaults,
fields this version does not know are kept in `extra` and written back unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

OPTIONAL = ("ddp_params_in_sync", "checkpoint")  # written only when set


@dataclass
class RunResult:
    """One training run's outcome: status, per-epoch history, test metrics and what produced them."""

    status: str = "done"  # "running" while training (rewritten with each checkpoint), then "done"
    kind: str = "finetune"  # "pretrain" | "finetune"
    select_metric: str | None = None  # dev metric that chose the best epoch
    best_epoch: int | None = None
    best_epoch_rule: str | None = None  # how the best epoch was chosen ("best dev accuracy", "last epoch: ...")
    notes: list[str] = field(default_factory=list)  # what the run did other than its recipe says (also logged)
    epochs: list[dict[str, Any]] = field(default_factory=list)  # {"epoch", "train_loss", "dev": {...}, ...}
    test: dict[str, float] = field(default_factory=dict)
    num_train_clips: int | None = None
    num_params: int | None = None
    num_trainable_params: int | None = None
    duration_s: float | None = None
    manifest_hash: str | None = None
    init: str | None = None  # the starting state's path (None: random initialisation)
    protocol: str | None = None
    task_type: str | None = None
    labels: list[str] = field(default_factory=list)
    model: dict[str, Any] = field(default_factory=dict)  # the model config (models/cnn.py)
    recipe: dict[str, Any] = field(default_factory=dict)
    recipe_hash: str | None = None
    skipped_classes: dict[str, list[str]] = field(default_factory=dict)  # split -> classes left unscored
    world_size: int = 1
    ddp_params_in_sync: bool | None = None  # set by a distributed run: replicas ended with equal weights
    checkpoint: str | None = None  # set by the study runner: the run's model.pt
    extra: dict[str, Any] = field(default_factory=dict)  # fields of a newer metrics.json, kept as they are

    def to_json(self) -> dict[str, Any]:
        """The `metrics.json` content (plain JSON types)."""
        data = asdict(self)
        extra = data.pop("extra")
        for key in OPTIONAL:
            if data[key] is None:
                del data[key]
        return {**data, **extra}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunResult:
        """A result from `metrics.json` content (missing fields default, unknown ones go to `extra`)."""
        known = {f.name for f in fields(cls)} - {"extra"}
        return cls(
            **{k: v for k, v in data.items() if k in known}, extra={k: v for k, v in data.items() if k not in known}
        )
