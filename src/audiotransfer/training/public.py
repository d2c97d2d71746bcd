"""Training a public pre-trained model (`models.public`) on a task, under the same protocols as the CNNs.

The model is `PublicClassifier`: the family's network, reading the raw samples of its own "waveform at N Hz"
store, with a new linear head. The engine's runs are reused; only building the model, what is frozen, the
optimiser groups and the learning-rate schedule differ:

- `linear`: the backbone embeds every split once (cached in the run folder under the backbone's content hash),
  the head trains; model.pt holds the head and names the backbone (format, path, content hash).
- `finetune`: every weight trains; the backbone at its family's customary rate (`TRAINING`), the head at the
  recipe's `lr`, with the family's linear warm-up and linear decay per step (unless the recipe names a scheduler).
- `freeze:K`: as finetune, but every weight that hidden state K depends on (the input stage and the first K
  layers or blocks: `TRAINING[family].block` says what a block is) is frozen, batch-norm statistics included.
  This is found by differentiating hidden state K, so it holds for any family the registry gains.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from audiotransfer.data.features import WaveformRecipe
from audiotransfer.errors import UserError
from audiotransfer.models.frontends import check_frontend
from audiotransfer.models.public import load_public
from audiotransfer.models.public.head import PublicClassifier, public_source
from audiotransfer.training.engine import _LinearProbe, _Run
from audiotransfer.training.recipe import TrainRecipe


@dataclass(frozen=True)
class FamilyTraining:
    """How a family is customarily fine-tuned: backbone learning rate, warm-up share of all steps, its blocks."""

    lr: float
    warmup: float
    block: str
    reason: str


TRAINING: dict[str, FamilyTraining] = {
    "hf": FamilyTraining(
        3e-5,
        0.1,
        "one transformer layer (CLAP: one Swin stage); the input stage (CNN feature encoder or patch embedding) "
        "goes with the first",
        "transformers audio models are fine-tuned at 1e-5..5e-5 with linear warm-up over ~10% of the steps "
        "(AST, SUPERB wav2vec2/HuBERT/WavLM, transformers' audio-classification example: 3e-5, warmup_ratio 0.1)",
    ),
    "torchcrepe": FamilyTraining(
        1e-4,
        0.0,
        "one conv block (pad, conv, ReLU, batch norm, max-pool)",
        "a small batch-norm CNN trained with Adam at 2e-4: half that to keep its pre-training, no warm-up needed",
    ),
    "efficientat": FamilyTraining(
        1e-4,
        0.05,
        "one entry of `features` (the stem convolution or one inverted-residual block)",
        "a batch-norm MobileNetV3: a CNN fine-tuning rate of 1e-4 with a short warm-up, as for the PANNs CNNs",
    ),
}
DEFAULT_TRAINING = FamilyTraining(
    5e-5,
    0.1,
    "one layer of the family's hidden states",
    "a family without an entry is treated as a transformer (the common case among public audio models)",
)


def family_training(format: str) -> FamilyTraining:
    """The customary fine-tuning of a public format (a transformer's when the table has no entry)."""
    return TRAINING.get(format, DEFAULT_TRAINING)


def build_public(init: str | Path, format: str, num_classes: int, store_frontend: Any) -> PublicClassifier:
    """The public model at `init` with a new head; a store of another front-end than its waveform is a UserError."""
    backbone = load_public(init, format)
    model = PublicClassifier(backbone, num_classes, public_source(init, format))
    if isinstance(store_frontend, WaveformRecipe):
        check_frontend(model.frontend, store_frontend, init, fix=_extract_fix(model))
    else:
        raise UserError(
            f"{init}: a {format} model reads raw samples ({model.frontend.describe()}), but the feature store "
            f"holds {store_frontend.describe()}",
            fix=_extract_fix(model),
        )
    return model


def _extract_fix(model: PublicClassifier) -> str:
    return (
        f"extract the task into a waveform store at the model's rate (`audiotransfer features extract "
        f"--recipe waveform{model.backbone.sample_rate}`; a study state does it itself)"
    )


def frozen_parameters(model: PublicClassifier, recipe: TrainRecipe) -> list[nn.Module]:
    """Freeze what the protocol keeps fixed; return the modules to hold in eval mode (all their weights frozen)."""
    backbone = model.backbone
    if recipe.protocol == "linear":
        backbone.requires_grad_(False)
        return [backbone]
    k = recipe.frozen_blocks
    if not k:
        return []
    if k > backbone.num_layers:
        raise UserError(
            f"protocol {recipe.protocol!r} freezes {k} blocks but this {backbone.family} model has "
            f"{backbone.num_layers} ({family_training(model.source['format']).block})",
            fix=f"use freeze:1 .. freeze:{backbone.num_layers}",
        )
    for p in _feeding(backbone, k):
        p.requires_grad_(False)
    return [
        m
        for m in backbone.modules()
        if any(True for _ in m.parameters()) and not any(p.requires_grad for p in m.parameters())
    ]


def _feeding(backbone: Any, layer: int) -> list[nn.Parameter]:
    """The parameters hidden state `layer` depends on (found by differentiating it on one second of noise)."""
    was = backbone.training
    backbone.eval()
    wave = torch.randn(1, backbone.sample_rate, generator=torch.Generator().manual_seed(0)) * 0.1
    backbone.zero_grad(set_to_none=True)
    with torch.enable_grad():
        backbone.layer_states(wave.to(next(backbone.parameters()).device), layer).sum().backward()
    found = [p for p in backbone.parameters() if p.grad is not None]
    backbone.zero_grad(set_to_none=True)
    backbone.train(was)
    return found


class _PublicSetup:
    """What a public model's runs do instead of the CNN's: model, freezing, optimiser groups, schedule."""

    format: str
    model: Any  # a PublicClassifier where the CNN runs hold an AudioCNN

    def _build_model(self: Any) -> None:
        self.model = build_public(self.init, self.format, self.manifest.num_classes, self.store.recipe)
        self.frozen = frozen_parameters(self.model, self.recipe)
        if not self.manifest.split("dev").num_clips:
            self._note("the task has no dev split: the last epoch is kept (no best-epoch selection)")
        self.model.to(self.device)

    def _optimizer(self: Any) -> torch.optim.Optimizer:
        """AdamW (Adam, SGD if the recipe says): head at the recipe's lr, backbone at the family's lr times
        `backbone_lr_scale`; each group keeps its `base_lr` for the per-step schedule."""
        r, custom = self.recipe, family_training(self.format)
        head = [p for p in self.model.fc_audioset.parameters() if p.requires_grad]
        body = [p for p in self.model.backbone.parameters() if p.requires_grad]
        groups = [{"params": head, "lr": r.lr, "base_lr": r.lr}]
        if body:
            lr = custom.lr * r.backbone_lr_scale
            groups.append({"params": body, "lr": lr, "base_lr": lr})
        if r.optimizer == "sgd":
            return torch.optim.SGD(groups, lr=r.lr, momentum=0.9, weight_decay=r.weight_decay)
        cls = torch.optim.Adam if r.optimizer == "adam" else torch.optim.AdamW
        return cls(groups, lr=r.lr, weight_decay=r.weight_decay)

    def _identity(self: Any) -> dict[str, Any]:
        return {**_Run._identity(self), "public": self.model.source}


class PublicRun(_PublicSetup, _Run):
    """finetune or freeze:K of a public model: the family's warm-up and decay, per step and stateless (a
    function of the step number, so a resumed run takes exactly the steps an unbroken one would)."""

    def __init__(self, *args: Any, format: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.format = format

    def _scheduler(self) -> torch.optim.lr_scheduler.LRScheduler | None:
        if self.recipe.scheduler != "none":
            self._note(f"the recipe's {self.recipe.scheduler} schedule replaces the family's warm-up and decay")
            return super()._scheduler()
        return None

    def _step(self, x: torch.Tensor, y: torch.Tensor, bar: tqdm) -> None:
        if self.scheduler is None:
            batches = self.train_batches
            step, total = batches.epoch * len(batches) + batches.position - 1, self.epochs * len(batches)
            factor = warmup_decay(step, total, family_training(self.format).warmup)
            for group in self.optimizer.param_groups:
                group["lr"] = group["base_lr"] * factor
        super()._step(x, y, bar)


class PublicProbe(_PublicSetup, _LinearProbe):
    """A linear probe on a public backbone: model.pt keeps the head and names the backbone."""

    def __init__(self, *args: Any, format: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.format = format

    def _backbone(self) -> dict[str, Any] | None:
        return dict(self.model.source)

    def _backbone_key(self) -> str | None:
        return str(self.model.source["hash"])


def warmup_decay(step: int, total: int, warmup: float) -> float:
    """transformers' linear schedule: the rate rises linearly over `warmup` of the steps, then falls to 0."""
    ramp = math.ceil(warmup * total)
    if step < ramp:
        return (step + 1) / ramp
    return max(0.0, (total - step) / max(1, total - ramp))
