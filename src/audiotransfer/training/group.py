"""Fine-tuning runs of one shape trained together as one `FusedCNN` (`finetune_group`).

Each member is an ordinary engine run (`engine._Run`: its folder, loader, loss, dev scoring, best-epoch
rule, checkpoint and `metrics.json`); only the training steps are fused. At every epoch end the fused
weights and optimiser state are copied back into the members, which then score, checkpoint and report
exactly as they do alone, so a fused group resumes like its runs would and a rerun finds them done.
Runs that cannot be fused (linear probes, frozen blocks, mid-epoch checkpoints, distributed training,
different recipes apart from the seed, runs at different points of their training) run one by one.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

import audiotransfer.training.ddp as ddp
import audiotransfer.training.engine as engine
from audiotransfer.errors import UserError
from audiotransfer.manifest import Manifest
from audiotransfer.training.checkpoint import METRICS
from audiotransfer.training.engine import RunState, _check_task, _mixup, _Run, finetune
from audiotransfer.training.fused import FusedCNN, shift
from audiotransfer.training.recipe import TrainRecipe
from audiotransfer.training.result import RunResult

if TYPE_CHECKING:
    from audiotransfer.data.store import FeatureStore


def fusable(recipes: Sequence[TrainRecipe]) -> bool:
    """Whether runs with these recipes can train as one fused model (one shape, full-network protocol)."""
    first = recipes[0]
    return (
        len(recipes) > 1
        and all(r.replace(seed=0) == first.replace(seed=0) for r in recipes)
        and first.protocol in ("finetune", "scratch")
        and first.checkpoint_every == 0
        and first.patience is None
    )


def finetune_group(
    manifest: Manifest,
    store: FeatureStore,
    recipes: Sequence[TrainRecipe],
    out_dirs: Sequence[str | Path],
    inits: Sequence[str | Path | None],
    fuse: bool = True,
) -> list[RunResult]:
    """`finetune` of each (recipe, out_dir, init) on one task; fused where `fusable` allows and `fuse` is
    set, one by one otherwise. Returns the results in the given order."""
    results: dict[int, RunResult] = {}
    todo = [i for i, out in enumerate(out_dirs) if not _done(Path(out))]
    single_process = int(os.environ.get("WORLD_SIZE", "1")) <= 1
    if not (fuse and single_process and len(todo) > 1 and fusable([recipes[i] for i in todo])):
        todo = []
    if todo:
        _check_task(manifest)
        members = [
            _Run("finetune", manifest, store, recipes[i], _mkdir(out_dirs[i]), _resolved(inits[i]), False) for i in todo
        ]
        fused = _train_fused(members)
        if fused is not None:
            results.update(zip(todo, fused, strict=True))
    for i, out in enumerate(out_dirs):
        if i not in results:
            results[i] = finetune(manifest, store, recipes[i], out, init=inits[i], progress=False)
    return [results[i] for i in range(len(out_dirs))]


def _resolved(init: str | Path | None) -> Path | None:
    return Path(init).resolve() if init is not None else None


def _mkdir(path: str | Path) -> Path:
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    return out


def _done(out: Path) -> bool:
    path = out / METRICS
    return path.exists() and json.loads(path.read_text()).get("status") == "done"


def _train_fused(members: list[_Run]) -> list[RunResult] | None:
    """Set the members up, train them fused, finish each; None when they cannot share steps (resumed at
    different points, or of different architectures): nothing was trained then."""
    start = time.perf_counter()
    generators = []
    for run in members:
        run.started, run.state = start, RunState()
        run._setup()
        run._resume()
        generators.append(torch.Generator().manual_seed(0))
        generators[-1].set_state(torch.get_rng_state())  # the engine draws dropout masks from this state
    states = {(r.train_batches.epoch, r.train_batches.position, r.epochs) for r in members}
    if len(states) != 1 or next(iter(states))[1] != 0:
        return None
    try:
        fused = FusedCNN([r.model for r in members], generators).to(members[0].device)
        if engine.CHANNELS_LAST or members[0].device.type == "cuda":  # as the engine lays out its model
            fused.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    except ValueError:
        return None
    optimizer = _optimizer(fused, members)
    try:
        while members[0].train_batches.epoch < members[0].epochs:
            t0, waits = time.perf_counter(), [r.train_batches.wait_s for r in members]
            _train_epoch(fused, optimizer, members)
            seconds = (time.perf_counter() - t0) / len(members)
            for i, run in enumerate(members):
                _sync_member(fused, optimizer, run, i)
                run._end_epoch(seconds, run.train_batches.wait_s - waits[i])
                torch.set_rng_state(generators[i].get_state())
                run._checkpoint()
                run._write_metrics(run._metrics("running"))
            for group, lead in zip(optimizer.param_groups, members[0].optimizer.param_groups, strict=True):
                group["lr"] = lead["lr"]  # a scheduler steps the members' optimisers
        return [_finish(run, start, len(members)) for run in members]
    finally:
        for run in members:
            ddp.leave(run.world)


def _finish(run: _Run, start: float, share: int) -> RunResult:
    """The member's own ending (best weights, test, model.pt); its duration is its share of the group's."""
    now = time.perf_counter()
    run.started = now - (now - start) / share
    return run._finish()


def _optimizer(fused: FusedCNN, members: list[_Run]) -> torch.optim.Optimizer:
    """The members' optimiser over the fused weights: head and backbone groups, state mapped in."""
    lead = members[0].optimizer
    head = list(fused.head.parameters())
    backbone = [p for p in fused.parameters() if all(p is not h for h in head)]
    groups = [
        {**{k: v for k, v in g.items() if k != "params"}, "params": ps}
        for g, ps in zip(lead.param_groups, (head, backbone), strict=False)
    ]
    optimizer = type(lead)(groups, **lead.defaults)
    for i, run in enumerate(members):
        params = dict(run.model.named_parameters())
        for key, tensor, index in fused.layout():
            state = run.optimizer.state.get(params[key]) if key in params else None
            if not state:
                continue
            target = optimizer.state[tensor]
            for name, value in state.items():
                if value.dim() == 0:
                    target[name] = value.clone()
                else:
                    target.setdefault(name, torch.zeros_like(tensor))[shift(index, i)] = value
    return optimizer


@torch.no_grad()
def _sync_member(fused: FusedCNN, optimizer: torch.optim.Optimizer, run: _Run, i: int) -> None:
    """Copy member i's weights and optimiser state from the fused model into its own run."""
    run.model.load_state_dict(fused.member_state(i))
    params = dict(run.model.named_parameters())
    for key, tensor, index in fused.layout():
        if key in params and tensor in optimizer.state:
            run.optimizer.state[params[key]] = {
                name: value.clone() if value.dim() == 0 else value[shift(index, i)].clone()
                for name, value in optimizer.state[tensor].items()
            }


def _train_epoch(fused: FusedCNN, optimizer: torch.optim.Optimizer, members: list[_Run]) -> None:
    """One epoch of fused steps; every member reads its own batches and computes its own loss."""
    fused.train()
    device = members[0].device
    classes = members[0].manifest.num_classes
    iters = [iter(r.train_batches) for r in members]
    for _ in range(len(members[0].train_batches) - members[0].train_batches.position):
        xs, ys = [], []
        for run, it in zip(members, iters, strict=True):
            x, y = next(it)
            x, y = x.to(device, non_blocking=True).float(), y.to(device, non_blocking=True)
            if run.recipe.mixup > 0:
                rng = np.random.default_rng(
                    [run.recipe.seed, run.train_batches.epoch, run.train_batches.position - 1, 0, 1]
                )
                x, y = _mixup(x, y, run.recipe.mixup, rng, classes)
            xs.append(x)
            ys.append(y)
        with members[0]._autocast():
            logits = fused(torch.stack(xs))
        losses = [run.loss_fn(logits[i].float(), ys[i]) for i, run in enumerate(members)]
        values = [loss.item() for loss in losses]
        for run, value in zip(members, values, strict=True):
            if not math.isfinite(value):
                raise UserError(
                    f"{run.out_dir}: loss is {value} in epoch {run.train_batches.epoch + 1}; training stopped "
                    "(the last good checkpoint is kept)",
                    fix="lower the learning rate",
                )
        optimizer.zero_grad(set_to_none=True)
        torch.stack(losses).sum().backward()
        optimizer.step()
        for run, value in zip(members, values, strict=True):
            run.state.partial["loss_sum"] += value
            run.state.partial["batches"] += 1
    for it in iters:  # run each loader's epoch end: its state becomes (epoch + 1, 0)
        next(it, None)
