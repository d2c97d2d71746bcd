"""Transfer protocols: which weights start where, which train, and at what learning rate.

- `finetune`: all weights train, starting from the given state.
- `scratch`: the control; all weights train from a random initialisation (no state may be given).
- `freeze:k`: bn0 and the first k conv blocks keep their weights *and* BatchNorm statistics.
- `linear`: the whole backbone is frozen; embeddings are computed once per split and only the head
  trains on them (a linear probe).
`backbone_lr_scale` gives every trainable non-head weight `lr * scale`, the head `lr`.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from audiotransfer.data.features import Frontend
from audiotransfer.data.loader import BatchLoader, clip_outputs
from audiotransfer.errors import UserError
from audiotransfer.models.checkpoints import model_from_checkpoint
from audiotransfer.models.cnn import AudioCNN, create_model
from audiotransfer.models.frontends import check_frontend
from audiotransfer.models.load import declared_frontend
from audiotransfer.training.recipe import TrainRecipe


def build_model(
    recipe: TrainRecipe, num_classes: int, n_mels: int, init: Path | None, frontend: Frontend | None = None
) -> AudioCNN:
    """The starting model: the checkpoint `init` with a new head, or a random recipe-sized model. A
    checkpoint that declares a front-end other than the store's `frontend` is a UserError."""
    if init is None:
        return create_model(recipe.model, num_classes, width=recipe.width, n_mels=n_mels)
    if recipe.protocol == "scratch":
        raise UserError(
            f"protocol 'scratch' trains from a random initialisation, but a starting state was given: {init}",
            fix="drop the starting state (--from scratch) or use protocol finetune",
        )
    declared = declared_frontend(init) if frontend is not None else None
    if declared is not None and frontend is not None:
        check_frontend(declared, frontend, init)
    model = model_from_checkpoint(init)
    if model.n_mels != n_mels:
        raise UserError(
            f"{init}: the model expects {model.n_mels} mel bins but the feature store holds {n_mels}",
            fix="extract the task's features with the recipe the state was pre-trained on",
        )
    model.replace_head(num_classes)
    return model


def frozen_modules(model: AudioCNN, recipe: TrainRecipe) -> list[nn.Module]:
    """Freeze what the protocol keeps fixed (no gradients); return the modules to hold in eval mode."""
    if recipe.protocol == "linear":
        frozen: list[nn.Module] = [m for name, m in model.named_children() if name != "fc_audioset"]
    else:
        k = recipe.frozen_blocks
        if k > model.num_blocks:
            raise UserError(
                f"protocol {recipe.protocol!r} freezes {k} blocks but {model.name} has {model.num_blocks}",
                fix=f"use freeze:1 .. freeze:{model.num_blocks}",
            )
        frozen = [model.bn0, *model.blocks()[:k]] if k else []
    for module in frozen:
        module.requires_grad_(False)
    return frozen


def param_groups(model: AudioCNN, recipe: TrainRecipe) -> list[dict]:
    """Optimizer groups of the trainable weights: head at `lr`, backbone at `lr * backbone_lr_scale`."""
    head = [p for p in model.fc_audioset.parameters() if p.requires_grad]
    head_ids = {id(p) for p in head}
    backbone = [p for p in model.parameters() if p.requires_grad and id(p) not in head_ids]
    groups = [{"params": head, "lr": recipe.lr}]
    if backbone:
        groups.append({"params": backbone, "lr": recipe.lr * recipe.backbone_lr_scale})
    return groups


@torch.no_grad()
def embed_all(model: AudioCNN, loader: BatchLoader, device: torch.device, desc: str | None = None) -> torch.Tensor:
    """Embeddings (N, D) of a loader's clips in order, with the model in eval mode (linear probe); a
    whole-clip loader's window embeddings are averaged per clip. `desc` names the pass's progress display."""
    model.eval()
    return clip_outputs(loader, lambda x: model.embed(x.to(device, non_blocking=True)).float(), desc).cpu()
