"""Distributed data parallel under `torchrun`: process group setup, wrapping and small collectives.

A process started by torchrun sees RANK / WORLD_SIZE / LOCAL_RANK in its environment; then the engine
joins a process group (gloo on CPU, NCCL on CUDA), shards the loader by rank and wraps the trained
module in DistributedDataParallel. Rank 0 evaluates and writes files; the others wait at barriers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel


@dataclass
class World:
    """This process's place in the run: rank, number of processes, local rank, whether it owns the group."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    owns_group: bool = False

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def place(device: torch.device) -> torch.device:
    """Under torchrun with CUDA, this process's own GPU (LOCAL_RANK), made current; else `device`."""
    if device.type != "cuda" or int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return device
    local = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    torch.cuda.set_device(local)
    return local


def join(device: torch.device) -> World:
    """Join the torchrun process group when WORLD_SIZE > 1 (idempotent); a single process otherwise."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")), owns)


def leave(world: World) -> None:
    if world.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def wrap(module: nn.Module, world: World, device: torch.device) -> nn.Module:
    if not world.distributed:
        return module
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=ids)


def barrier(world: World) -> None:
    if world.distributed:
        dist.barrier()


def gather(obj: Any, world: World) -> list[Any]:
    """Every rank's `obj`, in rank order (on every rank)."""
    if not world.distributed:
        return [obj]
    out: list[Any] = [None] * world.size
    dist.all_gather_object(out, obj)
    return out


def mean(value: torch.Tensor, world: World) -> float:
    """A scalar averaged over ranks: every rank gets the same number, so a NaN on one rank is a NaN on
    all of them and they stop together, rather than the others waiting in the next all-reduce."""
    if not world.distributed:
        return value.item()
    total = value.detach().float().reshape(1).clone()
    dist.all_reduce(total)
    return total.item() / world.size


def params_checksum(module: nn.Module) -> float:
    """Sum of all parameters: equal on every rank when DDP kept the replicas in sync."""
    with torch.no_grad():
        return float(sum(p.double().sum() for p in module.parameters()))
