"""Training and evaluation batches from a manifest and a feature store, resumable at any batch.

A loader's state is `(epoch, position)`: the clip order of an epoch and the crop of each batch are
functions of `(seed, epoch, batch index, rank)` only, so a resumed run sees exactly the batches an
uninterrupted one would. Under DDP each rank reads its own shard of every epoch's order, padded to equal
length like torch's DistributedSampler. The next batch is read in a background thread while the current
one trains.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from scipy import sparse

from audiotransfer.errors import UserError
from audiotransfer.manifest import Manifest

if TYPE_CHECKING:
    from audiotransfer.data.store import FeatureStore

Batch = tuple[torch.Tensor, torch.Tensor]


def balanced_order(targets: sparse.csr_matrix, n: int, rng: np.random.Generator) -> np.ndarray:
    """`n` clip indices drawn class by class in shuffled rounds, as PANNs' balanced sampler does.

    Each round visits every class with clips once, in random order, and takes that class's next clip
    from a reshuffled cycle of its members; rare classes are thus seen as often as common ones.
    """
    csc = sparse.csc_matrix(targets)
    members = [csc.indices[csc.indptr[c] : csc.indptr[c + 1]] for c in range(csc.shape[1])]
    active = np.array([c for c, m in enumerate(members) if len(m)], dtype=np.int64)
    if len(active) == 0:
        return rng.permutation(targets.shape[0])[:n]
    rounds = -(-n // len(active))
    sequence = np.concatenate([rng.permutation(active) for _ in range(rounds)])[:n]
    order = np.empty(n, dtype=np.int64)
    for c in np.unique(sequence):
        slots = np.flatnonzero(sequence == c)
        pool = members[c]
        cycles = -(-len(slots) // len(pool))
        order[slots] = np.concatenate([rng.permutation(pool) for _ in range(cycles)])[: len(slots)]
    return order


def clip_windows(lengths: np.ndarray, frames: int, slack: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Whole-clip evaluation windows: (owner, start) per window of `frames` frames.

    A clip up to `slack` longer than a window gets one centred window (as the centre crop did); a longer
    one gets ceil(length / frames) windows spread evenly from its first to its last frame, so every frame
    is scored. `owner` is the clip's position in `lengths`.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    counts = np.where(lengths <= frames * (1 + slack), 1, -(-lengths // frames))
    owner = np.repeat(np.arange(len(lengths)), counts)
    spare = np.maximum(lengths - frames, 0)[owner]
    first = np.concatenate([[0], np.cumsum(counts)[:-1]]) if len(counts) else np.zeros(0, np.int64)
    k = np.arange(len(owner)) - first[owner]  # window number within its clip
    n = counts[owner]
    starts = np.where(n == 1, spare // 2, np.round(spare * k / np.maximum(n - 1, 1)).astype(np.int64))
    return owner, starts


def clip_outputs(
    loader: BatchLoader, fn: Callable[[torch.Tensor], torch.Tensor], desc: str | None = None
) -> torch.Tensor:
    """`fn` over a loader's batches from its start, one row per clip: with `crop="whole"` the outputs of a
    clip's windows are averaged (the CNNs pool globally, so this scores the whole clip). With `desc`, the
    pass shows its progress under that name."""
    from audiotransfer.progress import progress

    loader.load_state_dict({"epoch": 0, "position": 0})
    parts = []
    for x, owner in progress(loader, total=len(loader), desc=desc, unit="batch", leave=False, enabled=desc is not None):
        out = fn(x)
        if loader.crop == "whole":
            owner = owner.to(out.device)
            sums = torch.zeros(int(owner.max()) + 1, *out.shape[1:], dtype=out.dtype, device=out.device)
            sums.index_add_(0, owner, out)
            out = sums / torch.bincount(owner).to(out.dtype).view(-1, *([1] * (out.dim() - 1)))
        parts.append(out)
    return torch.cat(parts)


class BatchSource:
    """Epoch order, sharding and (epoch, position) state shared by the loaders.

    `wait_s` accumulates the seconds the consumer spent blocked waiting for a batch.
    """

    def __init__(self, n: int, batch_size: int, shuffle: bool, seed: int, rank: int, world_size: int) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.n, self.batch_size, self.shuffle, self.seed = n, batch_size, shuffle, seed
        self.rank, self.world_size = rank, world_size
        self.epoch, self.position = 0, 0
        self.wait_s = 0.0

    def _epoch_order(self, rng: np.random.Generator) -> np.ndarray:
        return rng.permutation(self.n) if self.shuffle else np.arange(self.n)

    def order(self, epoch: int) -> np.ndarray:
        """Indices into the manifest that this rank visits in `epoch`."""
        order = self._epoch_order(np.random.default_rng([self.seed, epoch]))
        if self.world_size > 1:
            padded = -(-len(order) // self.world_size) * self.world_size
            order = np.resize(order, padded)[self.rank :: self.world_size]
        return order

    def __len__(self) -> int:
        per_rank = -(-self.n // self.world_size)
        return -(-per_rank // self.batch_size)

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])

    def _make(self, idx: np.ndarray, batch: int) -> Batch:
        raise NotImplementedError

    def _indices(self) -> list[np.ndarray]:
        order = self.order(self.epoch)
        return [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]

    def __iter__(self) -> Iterator[Batch]:
        """The rest of the current epoch from `position`; afterwards the state is (epoch + 1, 0)."""
        chunks = self._indices()
        for b in range(self.position, len(chunks)):
            batch = self._make(chunks[b], b)
            self.position = b + 1
            yield batch
        self.epoch, self.position = self.epoch + 1, 0


class BatchLoader(BatchSource):
    """`(x (B, frames, mels) float32, y)` batches of a manifest's clips from a feature store.

    `y` is a float multi-hot (B, C) tensor for multi-label manifests and int64 class indices otherwise.
    `half=True` yields x as the store's float16 (for an accelerator to convert: half the bytes to copy).
    `crop="random"` draws a random window per clip (training), `"center"` takes the middle, `"whole"`
    covers each clip with windows (`clip_windows`): x holds every window of the batch's clips and y, in
    place of targets, the clip position (0..B-1) of each window; `clip_outputs` averages them per clip.
    """

    def __init__(
        self,
        manifest: Manifest,
        store: FeatureStore,
        batch_size: int,
        frames: int,
        crop: Literal["random", "center", "whole"] = "random",
        shuffle: bool = True,
        seed: int = 0,
        balanced: bool = False,
        rank: int = 0,
        world_size: int = 1,
        pin_memory: bool = False,
        readers: int = 1,
        half: bool = False,
    ) -> None:
        super().__init__(manifest.num_clips, batch_size, shuffle, seed, rank, world_size)
        self.readers, self.dtype = max(1, readers), np.float16 if half else np.float32
        if manifest.num_clips == 0:
            raise UserError(f"manifest {manifest.name!r} has no clips", fix="check its splits")
        self.store, self.frames, self.crop, self.balanced = store, frames, crop, balanced
        self.pin_memory = pin_memory
        self.rows = store.rows(manifest.clips["clip_id"].tolist())
        self.multilabel = manifest.task_type == "multilabel"
        self.targets = manifest.targets.tocsr()
        self.classes = None if self.multilabel else torch.from_numpy(manifest.class_indices())

    def _epoch_order(self, rng: np.random.Generator) -> np.ndarray:
        if self.balanced and self.shuffle:
            return balanced_order(self.targets, self.n, rng)
        return super()._epoch_order(rng)

    def labels(self) -> np.ndarray:
        """All targets in manifest order: (N, C) bool for multi-label, (N,) class indices otherwise."""
        if self.multilabel:
            return self.targets.toarray()
        assert self.classes is not None
        return self.classes.numpy()

    def _targets(self, idx: np.ndarray) -> torch.Tensor:
        if self.multilabel:
            return torch.from_numpy(self.targets[idx].toarray().astype(np.float32))
        assert self.classes is not None
        return self.classes[idx]

    def _make(self, idx: np.ndarray, batch: int) -> Batch:
        rng = np.random.default_rng([self.seed, self.epoch, batch, self.rank])
        if self.crop == "whole":
            owner, starts = clip_windows(self.store.lengths(self.rows[idx]), self.frames)
            x = torch.from_numpy(
                self.store.read_batch(self.rows[idx][owner], self.frames, starts=starts, dtype=self.dtype)
            )
            y = torch.from_numpy(owner)
        else:
            x = torch.from_numpy(
                self.store.read_batch(self.rows[idx], self.frames, crop=self.crop, rng=rng, dtype=self.dtype)
            )
            y = self._targets(idx)
        return (x.pin_memory(), y.pin_memory()) if self.pin_memory else (x, y)

    def __iter__(self) -> Iterator[Batch]:
        """Like `BatchSource.__iter__`, with `readers` threads reading the next `readers` batches ahead
        (the memory-mapped reads and float16 copies release the GIL); batches come in order."""
        chunks = self._indices()
        if self.position >= len(chunks):
            self.epoch, self.position = self.epoch + 1, 0
            return
        with ThreadPoolExecutor(max_workers=self.readers) as pool:
            ahead: dict[int, Future[Any]] = {}
            for b in range(self.position, len(chunks)):
                for k in range(b, min(b + self.readers + 1, len(chunks))):
                    if k not in ahead:
                        ahead[k] = pool.submit(self._make, chunks[k], k)
                waited = time.perf_counter()
                batch = ahead.pop(b).result()
                self.wait_s += time.perf_counter() - waited
                self.position = b + 1
                yield batch
        self.epoch, self.position = self.epoch + 1, 0


class TensorBatches(BatchSource):
    """Batches of in-memory tensors (linear probe on precomputed embeddings), same order and state."""

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        super().__init__(len(x), batch_size, shuffle, seed, rank, world_size)
        self.x, self.y = x, y

    def _make(self, idx: np.ndarray, batch: int) -> Batch:
        index = torch.from_numpy(idx)
        return self.x[index], self.y[index]
