"""Several runs of one shape trained as one model: N CNNs as grouped convolutions, one pass per step.

Small CNNs spend much of a step in per-operation overhead, not arithmetic; N runs that differ only in
their seed (or starting state) stack into one network whose convolutions have N groups, whose BatchNorms
have N x C channels and whose linear layers are batched matrix products. Each member keeps its own data
order and crops (its own loader), its own dropout masks (drawn from a generator seeded as the engine seeds
the global one, so the masks are the same bits), its own loss, and, since Adam works element by element,
its own optimiser trajectory: a fused run gives each member the numbers it would get alone, up to the
float rounding of grouped against plain convolutions. On the demo's CPU it did not beat channels-last
convolutions alone (docs/profile.md), so the study runner trains runs one by one; `bench_gpu.py --fused`
measures it on an accelerator.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import EllipsisType
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from audiotransfer.models.cnn import AudioCNN

Index = slice | int | EllipsisType  # a member's part of a fused tensor, along its first dimension


def _stack_conv(convs: Sequence[nn.Conv2d]) -> nn.Conv2d:
    first = convs[0]
    kernel, pad = cast(tuple[int, int], first.kernel_size), cast(tuple[int, int], first.padding)
    fused = nn.Conv2d(
        first.in_channels * len(convs),
        first.out_channels * len(convs),
        kernel,
        padding=pad,
        bias=False,
        groups=len(convs),
    )
    fused.weight.data.copy_(torch.cat([c.weight.detach() for c in convs]))
    return fused


def _stack_bn(bns: Sequence[nn.BatchNorm2d]) -> nn.BatchNorm2d:
    first = bns[0]
    fused = nn.BatchNorm2d(first.num_features * len(bns), eps=first.eps, momentum=first.momentum)
    for name in ("weight", "bias", "running_mean", "running_var"):
        getattr(fused, name).data.copy_(torch.cat([getattr(b, name).detach() for b in bns]))
    cast(torch.Tensor, fused.num_batches_tracked).copy_(cast(torch.Tensor, first.num_batches_tracked))
    return fused


class StackedLinear(nn.Module):
    """N linear layers of one shape applied to (B, N, in) -> (B, N, out)."""

    def __init__(self, layers: Sequence[nn.Linear]) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.stack([lin.weight.detach() for lin in layers]).clone())
        self.bias = nn.Parameter(torch.stack([lin.bias.detach() for lin in layers]).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bni,noi->bno", x, self.weight) + self.bias


class FusedCNN(nn.Module):
    """`AudioCNN` members of one architecture as one module; `forward` takes (N, B, T, M), gives (N, B, K).

    `generators` (one per member) draw the members' dropout masks; member `i` reads and writes its weights
    through `member_state(i)` / `load_member(i, state)` in the `AudioCNN` state-dict layout.
    """

    def __init__(self, members: Sequence[AudioCNN], generators: Sequence[torch.Generator]) -> None:
        super().__init__()
        first = members[0]
        if any(m.config != first.config for m in members):
            raise ValueError("fused members must share one architecture and head size")
        self.n, self.n_mels, self.pools = len(members), first.n_mels, list(first._pools)
        self.generators = list(generators)
        self.bn0 = _stack_bn([m.bn0 for m in members])
        self.convs = nn.ModuleList()
        self.bns = nn.ModuleList()
        for i in range(1, first.num_blocks + 1):
            blocks = [getattr(m, f"conv_block{i}") for m in members]
            stages = [("conv1", "bn1")] + ([("conv2", "bn2")] if hasattr(blocks[0], "conv2") else [])
            self.convs.append(nn.ModuleList(_stack_conv([getattr(b, c) for b in blocks]) for c, _ in stages))
            self.bns.append(nn.ModuleList(_stack_bn([getattr(b, n) for b in blocks]) for _, n in stages))
        self.fc1 = StackedLinear([m.fc1 for m in members])
        self.head = StackedLinear([m.fc_audioset for m in members])

    def _stages(self, k: int) -> list[tuple[nn.Conv2d, nn.BatchNorm2d]]:
        """(conv, BatchNorm) pairs of block k (from 0)."""
        convs, bns = cast(nn.ModuleList, self.convs[k]), cast(nn.ModuleList, self.bns[k])
        return [(cast(nn.Conv2d, c), cast(nn.BatchNorm2d, b)) for c, b in zip(convs, bns, strict=True)]

    def _dropout(self, x: torch.Tensor, p: float) -> torch.Tensor:
        """Member i's slice times the mask `F.dropout` would draw from generator i: the same call on a
        tensor of the member's shape and memory layout (channels-last masks are drawn in that order)."""
        if not self.training:
            return x
        b = x.shape[0]
        per = x.view(b, self.n, -1, *x.shape[2:])
        last = x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)
        layout = torch.channels_last if last else torch.contiguous_format
        masks = [
            torch.empty(per[:, i].shape, memory_format=layout).bernoulli_(1 - p, generator=g).div_(1 - p)
            for i, g in enumerate(self.generators)
        ]
        return (per * torch.stack(masks, dim=1).to(device=x.device, dtype=x.dtype)).view_as(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, b, t, m = x.shape
        x = x.permute(1, 0, 3, 2).reshape(b, n * m, t, 1)  # (B, N*M, T, 1): BatchNorm over each member's mels
        x = self.bn0(x).view(b, n, m, t).transpose(2, 3)  # (B, N, T, M): member i is input channel i
        for k, pool in enumerate(self.pools):
            for conv, bn in self._stages(k):
                x = F.relu_(bn(conv(x)))
            x = self._dropout(F.avg_pool2d(x, pool) if pool > 1 else x, 0.2)
        x = x.mean(dim=3)
        x = x.amax(dim=2) + x.mean(dim=2)  # (B, N*C)
        x = self._dropout(x, 0.5).view(b, n, -1)
        x = F.relu_(self.fc1(x))
        return self.head(x).transpose(0, 1)  # (N, B, K)

    # ----------------------------------------------------------------- members' weights
    def layout(self) -> list[tuple[str, torch.Tensor, Index]]:
        """(AudioCNN state-dict key, fused tensor, member 0's index along its first dimension) in a fixed
        order; member i's index is `shift(index, i)`."""
        out: list[tuple[str, torch.Tensor, Index]] = []

        def bn(prefix: str, mod: nn.BatchNorm2d) -> None:
            c = mod.num_features // self.n
            for name in ("weight", "bias", "running_mean", "running_var"):
                out.append((f"{prefix}.{name}", getattr(mod, name), slice(0, c)))
            out.append((f"{prefix}.num_batches_tracked", cast(torch.Tensor, mod.num_batches_tracked), ...))

        bn("bn0", self.bn0)
        for k in range(len(self.pools)):
            for j, (conv, norm) in enumerate(self._stages(k), start=1):
                out.append((f"conv_block{k + 1}.conv{j}.weight", conv.weight, slice(0, conv.out_channels // self.n)))
                bn(f"conv_block{k + 1}.bn{j}", norm)
        for name, lin in (("fc1", self.fc1), ("fc_audioset", self.head)):
            out += [(f"{name}.weight", lin.weight, 0), (f"{name}.bias", lin.bias, 0)]
        return out

    @torch.no_grad()
    def member_state(self, i: int) -> dict[str, torch.Tensor]:
        """Member i's weights and BatchNorm statistics as an `AudioCNN` state dict (copies)."""
        return {k: t[shift(index, i)].detach().clone() for k, t, index in self.layout()}

    @torch.no_grad()
    def load_member(self, i: int, state: dict[str, torch.Tensor]) -> None:
        for key, t, index in self.layout():
            t[shift(index, i)] = state[key]


def shift(index: Index, i: int) -> Index:
    """Member i's index given member 0's (`...`: a tensor all members share, e.g. a step counter)."""
    if isinstance(index, int):
        return i
    if not isinstance(index, slice):
        return index
    width = index.stop - index.start
    return slice(i * width, (i + 1) * width)
