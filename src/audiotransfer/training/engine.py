"""The training engine: one loop for pre-training (multi-label BCE) and fine-tuning (CE / binary).

A run lives in one directory. Every epoch it trains on the train split, scores the dev split, keeps the
best weights by the recipe's dev metric (the last epoch when there is no dev split), and saves a resume
checkpoint atomically; the test split is scored once, at the end, with the best weights. Rerunning on the
same directory resumes from `checkpoint.pt` with exactly the batches, crops and dropout masks an
uninterrupted run would have used; a finished directory just returns its metrics. A linear probe
(`_LinearProbe`) is the same run with its own data and epoch loop: the backbone embeds every split once
and only the head trains; scoring, best-epoch selection and checkpoints are shared.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

import audiotransfer.training.ddp as ddp
from audiotransfer.data.loader import BatchLoader, BatchSource, TensorBatches, clip_outputs
from audiotransfer.errors import UserError, unknown_name
from audiotransfer.manifest import Manifest
from audiotransfer.models.artifact import ModelCard, save_model_file
from audiotransfer.models.checkpoints import backbone_reference
from audiotransfer.models.public import PUBLIC_FORMATS
from audiotransfer.progress import progress as show_progress
from audiotransfer.training.checkpoint import (
    CHECKPOINT,
    METRICS,
    MODEL,
    atomic_save,
    atomic_write_text,
    load_checkpoint,
    rng_state,
    seed_everything,
    set_rng_state,
)
from audiotransfer.training.embedding_cache import EmbeddingKey, load_or_embed
from audiotransfer.training.metric_registry import METRICS as METRIC_REGISTRY
from audiotransfer.training.metrics import compute_scores
from audiotransfer.training.protocols import build_model, embed_all, frozen_modules, param_groups
from audiotransfer.training.recipe import DEFAULT_SELECT, FINETUNE, PRETRAIN, TASK_METRICS, TrainRecipe
from audiotransfer.training.result import RunResult

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from audiotransfer.data.store import FeatureStore

CHANNELS_LAST = True  # channels-last convolutions on every device (False: the old CPU path, for benchmarks)


def default_frames(manifest: Manifest, store: FeatureStore) -> int:
    """Crop length in frames of the manifest's `clip_seconds` (`FeatureRecipe.frames_for`)."""
    frames = store.recipe.frames_for(manifest.meta.get("clip_seconds"))
    if frames is None:
        raise UserError(
            f"manifest {manifest.name!r}: meta field 'clip_seconds' is missing, so the crop length is unknown",
            fix="set the recipe's frames (--frames) or add clip_seconds to the manifest meta",
        )
    return frames


def _check_task(manifest: Manifest) -> None:
    if manifest.num_classes < 2:
        raise UserError(
            f"manifest {manifest.name!r} has {manifest.num_classes} class(es) {manifest.labels}; "
            "a classifier needs at least two",
            fix="choose a task or subset with two or more labels",
        )
    if not (manifest.clips["split"] == "train").any():
        raise UserError(
            f"manifest {manifest.name!r}: field 'split' has no 'train' clips (splits: {manifest.split_sizes()})",
            fix="assign a train split to the manifest",
        )
    if manifest.task_type != "multilabel":
        try:
            manifest.class_indices()
        except ValueError as exc:
            raise UserError(
                f"manifest {manifest.name!r}: {exc}", fix="single-label tasks need exactly one label per clip"
            ) from None


def _device(spec: str) -> torch.device:
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(spec)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"recipe device {spec!r} asked for CUDA but none is available", fix="use device cpu")
    return device


def _class_weights(manifest: Manifest) -> torch.Tensor:
    """Balanced weights n / (C * count) per class (as sklearn's 'balanced'); 0 for absent classes."""
    counts = np.bincount(manifest.class_indices(), minlength=manifest.num_classes).astype(np.float64)
    weights = np.where(counts > 0, counts.sum() / (manifest.num_classes * np.maximum(counts, 1)), 0.0)
    return torch.tensor(weights, dtype=torch.float32)


def _mixup(
    x: torch.Tensor, y: torch.Tensor, alpha: float, rng: np.random.Generator, classes: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mix each example with the batch's reversed order, weights Beta(alpha, alpha) (targets too)."""
    lam = torch.from_numpy(rng.beta(alpha, alpha, size=len(x)).astype(np.float32)).to(x.device)
    if y.dtype == torch.long:
        y = F.one_hot(y, classes).float()
    lx = lam.view(-1, *([1] * (x.ndim - 1)))
    ly = lam.view(-1, 1)
    return lx * x + (1 - lx) * x.flip(0), ly * y + (1 - ly) * y.flip(0)


@dataclass
class RunState:
    """What a run has done so far, saved in every resume checkpoint (under these names)."""

    history: list[dict[str, Any]] = field(default_factory=list)  # one record per finished epoch
    best: dict[str, Any] = field(default_factory=lambda: {"epoch": None, "value": math.nan, "state": None})
    partial: dict[str, Any] = field(default_factory=lambda: {"loss_sum": 0.0, "batches": 0})  # the epoch so far
    elapsed: float = 0.0  # seconds of earlier sessions
    skipped_dev: list[str] = field(default_factory=list)
    skipped_test: list[str] = field(default_factory=list)

    def saved(self, seconds: float) -> dict[str, Any]:
        """The checkpoint entries, with `seconds` of this session added to the elapsed time."""
        return {
            "partial": dict(self.partial),
            "history": self.history,
            "best": self.best,
            "elapsed": self.elapsed + seconds,
            "skipped_dev": self.skipped_dev,
        }

    @classmethod
    def from_checkpoint(cls, ckpt: dict[str, Any]) -> RunState:
        return cls(
            history=ckpt["history"],
            best=ckpt["best"],
            partial=ckpt["partial"],
            elapsed=ckpt["elapsed"],
            skipped_dev=ckpt["skipped_dev"],
        )


class _Run:
    """One full-network training run in `out_dir` (pre-training, or fine-tuning under finetune, scratch or
    freeze:k); `execute()` trains (or resumes) and returns its metrics.

    Names: `model` is the whole network that model.pt holds; `trainable` the part of it the optimiser
    updates, checkpoints and keeps at its best epoch (here all of it); `wrapped` that part as DDP wraps
    it for training steps (itself on one process); `train_batches` the training data, `eval_loaders` and
    `eval_labels` the whole clips of the dev and test splits.
    """

    pooling = "probabilities"  # how model.pt combines a clip's window outputs

    def __init__(
        self,
        kind: str,
        manifest: Manifest,
        store: FeatureStore,
        recipe: TrainRecipe,
        out_dir: Path,
        init: Path | None,
        progress: bool,
        embedding_cache: Path | None = None,
    ) -> None:
        self.kind, self.manifest, self.store, self.recipe = kind, manifest, store, recipe
        self.out_dir, self.init, self.progress = out_dir, init, progress
        self.embedding_cache = embedding_cache  # where a probe's backbone embeddings are shared (None: its folder)
        self.multilabel = manifest.task_type == "multilabel"
        self.protocol = recipe.protocol if kind == "finetune" else "scratch"  # as metrics.json records it
        self.notes: list[str] = []
        self.select = recipe.select_metric or DEFAULT_SELECT[manifest.task_type]
        if self.select not in TASK_METRICS[manifest.task_type]:
            self._note(
                f"select_metric {self.select!r} does not apply to a {manifest.task_type} task; the best "
                f"epoch is chosen on dev {DEFAULT_SELECT[manifest.task_type]}"
            )
            self.select = DEFAULT_SELECT[manifest.task_type]

    def _note(self, text: str) -> None:
        """Something the run does other than its recipe says: logged now, kept in metrics.json."""
        if text not in self.notes:
            self.notes.append(text)
            if self.progress:
                log.warning(f"{self.kind} {self.out_dir}: {text}")

    # --------------------------------------------------------------------- setup
    def _setup(self) -> None:
        recipe = self.recipe
        self.device = ddp.place(_device(recipe.device))
        self.world = ddp.join(self.device)
        seed_everything(recipe.seed)
        self._build_model()
        torch.manual_seed(recipe.seed + 7919 * self.world.rank)  # per-rank dropout masks under DDP
        self.splits = {s: self.manifest.split(s) for s in ("train", "dev", "test")}
        self.frames = recipe.frames or default_frames(self.manifest, self.store)
        loaders = {
            s: BatchLoader(m, self.store, recipe.eval_batch_size, self.frames, crop="whole", shuffle=False)
            for s, m in self.splits.items()
            if m.num_clips
        }
        self.eval_loaders = {s: ld for s, ld in loaders.items() if s != "train"}
        self.eval_labels = {s: ld.labels() for s, ld in self.eval_loaders.items()}
        self.train_batches = self._train_data(loaders, max(1, recipe.batch_size // self.world.size))
        self.trainable = self._trainable()
        self.wrapped = ddp.wrap(self.trainable, self.world, self.device)
        self.epochs = recipe.epochs_for(len(self.train_batches))
        self.optimizer = self._optimizer()
        self.scheduler = self._scheduler()
        self.loss_fn = self._loss()

    def _build_model(self) -> None:
        """The starting model on the run's device and the modules its protocol freezes; notes on both."""
        recipe, manifest = self.recipe, self.manifest
        self.model = build_model(recipe, manifest.num_classes, self.store.recipe.n_mels, self.init, self.store.recipe)
        self.frozen = frozen_modules(self.model, recipe)
        if (self.model.name, self.model.width) != (recipe.model, recipe.width):
            self._note(
                f"the starting state is a {self.model.name} of width {self.model.width:g}, not the recipe's "
                f"{recipe.model} of width {recipe.width:g}: that architecture is trained and recorded"
            )
        if not manifest.split("dev").num_clips:
            self._note("the task has no dev split: the last epoch is kept (no best-epoch selection)")
        if recipe.bf16_on_cpu and recipe.device == "cpu" and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
            self._note("bf16_on_cpu: this CPU has no native bfloat16, so training runs slower than in float32")
        self.model.to(self.device)
        # channels-last convolutions: faster on CUDA and, for the small CNNs, on CPU (docs/profile.md)
        if CHANNELS_LAST or self.device.type == "cuda":
            self.model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch stubs lack it
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True

    def _autocast(self) -> torch.autocast:
        """bfloat16 forward passes: always on CUDA, on CPU when the recipe asks (`bf16_on_cpu`)."""
        on = self.device.type == "cuda" or (self.device.type == "cpu" and self.recipe.bf16_on_cpu)
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=on)

    def _train_data(self, loaders: dict[str, BatchLoader], per_rank: int) -> BatchSource:
        """Random crops of the train split, shuffled (class-balanced if the recipe says so), per rank."""
        return BatchLoader(
            self.splits["train"],
            self.store,
            per_rank,
            self.frames,
            crop="random",
            shuffle=True,
            seed=self.recipe.seed,
            balanced=self.recipe.balanced,
            rank=self.world.rank,
            world_size=self.world.size,
            pin_memory=self.device.type == "cuda",
            readers=self.recipe.readers,
            half=self.device.type == "cuda",
        )

    def _trainable(self) -> nn.Module:
        return self.model

    def _loss(self) -> nn.Module:
        if self.multilabel:
            return nn.BCEWithLogitsLoss()
        weights = _class_weights(self.splits["train"]) if self.recipe.class_weights else None
        return nn.CrossEntropyLoss(weight=weights).to(self.device)

    def _optimizer(self) -> torch.optim.Optimizer:
        groups = param_groups(self.model, self.recipe)
        r = self.recipe
        if r.optimizer == "sgd":
            return torch.optim.SGD(groups, lr=r.lr, momentum=0.9, weight_decay=r.weight_decay)
        cls = torch.optim.AdamW if r.optimizer == "adamw" else torch.optim.Adam
        return cls(groups, lr=r.lr, weight_decay=r.weight_decay)

    def _scheduler(self) -> torch.optim.lr_scheduler.LRScheduler | None:
        r = self.recipe
        if r.scheduler == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=self.epochs)
        if r.scheduler == "step":
            return torch.optim.lr_scheduler.StepLR(self.optimizer, step_size=r.step_epochs, gamma=r.step_gamma)
        return None

    # ------------------------------------------------------------ checkpoints
    def _identity(self) -> dict[str, Any]:
        return {
            "recipe_hash": self.recipe.hash,
            "manifest_hash": self.manifest.hash,
            "init": str(self.init) if self.init else None,
            "kind": self.kind,
        }

    def _checkpoint_due(self) -> bool:
        """An epoch-end checkpoint is written when `checkpoint_interval_s` passed since the last (always under
        DDP, where every rank must agree to take part)."""
        since = time.perf_counter() - self.last_checkpoint
        return self.world.distributed or since >= self.recipe.checkpoint_interval_s

    def _checkpoint(self) -> None:
        """Save the resume state (all ranks take part: RNG states are gathered from each)."""
        self.last_checkpoint = time.perf_counter()
        rngs = ddp.gather(rng_state(), self.world)
        if not self.world.main:
            return
        atomic_save(
            {
                **self._identity(),
                "model": self.trainable.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict() if self.scheduler else None,
                "loader": self.train_batches.state_dict(),
                "rng": rngs,
                **self.state.saved(time.perf_counter() - self.started),
                "world_size": self.world.size,
            },
            self.out_dir / CHECKPOINT,
        )

    def _resume(self) -> None:
        self.state = RunState()
        path = self.out_dir / CHECKPOINT
        if not path.exists():
            return
        ckpt = load_checkpoint(path)
        mine = self._identity()
        differs = [k for k in mine if ckpt.get(k) != mine[k]]
        if differs or ckpt["world_size"] != self.world.size:
            raise UserError(
                f"{path}: the checkpoint belongs to a different run (differs in: "
                f"{', '.join(differs) or 'number of processes'})",
                fix="use a new output directory, or delete this one to start over",
            )
        self.trainable.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.scheduler and ckpt["scheduler"]:
            self.scheduler.load_state_dict(ckpt["scheduler"])
        self.train_batches.load_state_dict(ckpt["loader"])
        set_rng_state(ckpt["rng"][self.world.rank])
        self.state = RunState.from_checkpoint(ckpt)

    # ------------------------------------------------------------------ steps
    def _train_epoch(self, bar: tqdm) -> None:
        """The rest of the current epoch; the frozen modules keep their BatchNorm statistics (eval mode)."""
        self.wrapped.train()
        for module in self.frozen:
            module.eval()
        for x, y in self.train_batches:
            self._step(x, y, bar)

    def _step(self, x: torch.Tensor, y: torch.Tensor, bar: tqdm) -> None:
        """One optimiser step on a batch (mixed up if the recipe says so); a mid-epoch checkpoint when due."""
        batches, recipe = self.train_batches, self.recipe
        epoch, batch = batches.epoch, batches.position - 1
        x, y = x.to(self.device, non_blocking=True).float(), y.to(self.device, non_blocking=True)
        if recipe.mixup > 0:
            rng = np.random.default_rng([recipe.seed, epoch, batch, self.world.rank, 1])
            x, y = _mixup(x, y, recipe.mixup, rng, self.manifest.num_classes)
        with self._autocast():
            logits = self.wrapped(x)
        loss = self.loss_fn(logits.float(), y)
        value = ddp.mean(loss, self.world)  # the batch loss over all ranks (= loss.item() on one process)
        if not math.isfinite(value):
            raise UserError(
                f"{self.out_dir}: loss is {value} at epoch {epoch + 1}, batch {batch + 1}; training stopped "
                "(the last good checkpoint is kept)",
                fix="lower the learning rate, or check the features for NaN/inf values",
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.state.partial["loss_sum"] += value
        self.state.partial["batches"] += 1
        bar.update()
        bar.set_postfix(loss=f"{value:.4f}", refresh=False)
        every = recipe.checkpoint_every
        if every and (batch + 1) % every == 0 and batches.position < len(batches):
            self._checkpoint()

    @torch.no_grad()
    def _score(self, split: str) -> tuple[dict[str, float], list[str]]:
        """Metrics of the (unwrapped) trainable part on a split, and the names of classes it could not score."""
        self.trainable.eval()

        def predict(x: torch.Tensor) -> torch.Tensor:
            with self._autocast():
                logits = self.trainable(x.to(self.device, non_blocking=True)).float()
            return torch.sigmoid(logits) if self.multilabel else torch.softmax(logits, dim=1)

        probs = self._probabilities(split, predict)
        scores = compute_scores(self.manifest.task_type, self.eval_labels[split], probs)
        return scores.values, [self.manifest.label_names[i] for i in scores.skipped]

    def _probabilities(self, split: str, predict: Callable[[torch.Tensor], torch.Tensor]) -> np.ndarray:
        """`predict` on the split's whole clips, window outputs averaged per clip."""
        return clip_outputs(self.eval_loaders[split], predict, self._desc(f"evaluate {split}")).cpu().numpy()

    def _end_epoch(self, seconds: float, data_wait: float) -> dict[str, Any]:
        totals = ddp.gather((self.state.partial["loss_sum"], self.state.partial["batches"]), self.world)
        loss = sum(t[0] for t in totals) / max(1, sum(t[1] for t in totals))
        record: dict[str, Any] = {
            "epoch": self.train_batches.epoch,
            "train_loss": loss,
            "dev": None,
            "seconds": round(seconds, 3),
            "data_wait_s": round(data_wait, 3),
        }
        if self.world.main and "dev" in self.eval_labels:
            record["dev"], self.state.skipped_dev = self._score("dev")
        value = (record["dev"] or {}).get(self.select, math.nan)
        improved = METRIC_REGISTRY[self.select].better(value, self.state.best["value"])
        if improved:
            state = {k: v.detach().cpu().clone() for k, v in self.trainable.state_dict().items()}
            self.state.best = {"epoch": record["epoch"], "value": value, "state": state}
        if self.scheduler:
            self.scheduler.step()
        self.state.history.append(record)
        self.state.partial = {"loss_sum": 0.0, "batches": 0}
        return record

    # -------------------------------------------------------------- reporting
    def _metrics(self, status: str, test: dict[str, float] | None = None) -> RunResult:
        return RunResult(
            status=status,
            kind=self.kind,
            select_metric=self.select,
            best_epoch=self.state.best["epoch"],
            best_epoch_rule=f"best dev {self.select}" if "dev" in self.eval_labels else "last epoch (no dev split)",
            notes=self.notes,
            epochs=self.state.history,
            test=test or {},
            num_train_clips=self.splits["train"].num_clips,
            num_params=sum(p.numel() for p in self.model.parameters()),
            num_trainable_params=sum(p.numel() for p in self.model.parameters() if p.requires_grad),
            duration_s=round(self.state.elapsed + time.perf_counter() - self.started, 3),
            manifest_hash=self.manifest.hash,
            init=str(self.init) if self.init else None,
            protocol=self.protocol,
            task_type=self.manifest.task_type,
            labels=self.manifest.labels,
            model=self.model.config,
            recipe=self.recipe.model_dump(),
            recipe_hash=self.recipe.hash,
            skipped_classes={"dev": self.state.skipped_dev, "test": self.state.skipped_test},
            world_size=self.world.size,
        )

    def _card(self) -> ModelCard:
        """What model.pt says besides the weights."""
        source = self.init if self.init is not None and self.kind == "finetune" else self.out_dir
        state = source.parent.name if source.name == MODEL else source.name  # a study state's run folder
        return ModelCard(
            config=self.model.config,
            frontend=self.store.recipe.to_dict(),
            feature_dtype=self.store.dtype.name,
            crop_frames=self.frames,
            pooling=self.pooling,
            labels=self.manifest.labels,
            label_names=self.manifest.label_names,
            task_type=self.manifest.task_type,
            kind=self.kind,
            protocol=self.protocol,
            best_epoch=self.state.best["epoch"],
            select_metric=self.select,
            provenance={
                "state": state,
                "init": str(self.init) if self.init else None,
                "manifest": self.manifest.name,
                "manifest_hash": self.manifest.hash,
                "recipe_hash": self.recipe.hash,
                "frontend_hash": self.store.recipe.hash,
            },
            backbone=self._backbone(),
        )

    def _backbone(self) -> dict[str, Any] | None:
        """The backbone model.pt references instead of holding a copy (none: it holds the whole model)."""
        return None

    def _save_model(self) -> None:
        save_model_file(self.out_dir / MODEL, self.model, self._card())

    def _write_metrics(self, metrics: RunResult) -> None:
        atomic_write_text(json.dumps(metrics.to_json(), indent=1) + "\n", self.out_dir / METRICS)

    def _desc(self, name: str) -> str | None:
        """A pass's progress name when this process shows progress, else None (no display)."""
        return name if self.progress and self.world.main else None

    # ------------------------------------------------------------------- main
    def execute(self) -> RunResult:
        self.started = self.last_checkpoint = time.perf_counter()
        self.state = RunState()
        self._setup()
        try:
            self._resume()
            show = self.progress and self.world.main
            with show_progress(
                total=self.epochs,
                initial=len(self.state.history),
                desc=f"{self.kind} epochs",
                unit="epoch",
                enabled=show,
            ) as epochs:
                self._epochs(epochs, show)
            return self._finish()
        finally:
            ddp.leave(self.world)

    def _stale(self) -> bool:
        """Early stopping: the dev metric has not improved for `patience` epochs (the best epoch is kept)."""
        patience, best = self.recipe.patience, self.state.best["epoch"]
        if patience is None or "dev" not in self.eval_labels or not self.state.history or best is None:
            return False
        return self.state.history[-1]["epoch"] - best >= patience

    def _epochs(self, epochs: tqdm, show: bool) -> None:
        batches = self.train_batches
        while batches.epoch < self.epochs and not self._stale():
            t0, wait0 = time.perf_counter(), batches.wait_s
            with show_progress(
                total=len(batches),
                initial=batches.position,
                leave=False,
                unit="batch",
                desc=f"epoch {batches.epoch + 1}",
                enabled=show,
                mininterval=0.5,
            ) as bar:
                self._train_epoch(bar)
            record = self._end_epoch(time.perf_counter() - t0, batches.wait_s - wait0)
            if self._checkpoint_due():  # the resume state and the running metrics.json, together
                self._checkpoint()
                if self.world.main:
                    self._write_metrics(self._metrics("running"))
            dev = (record["dev"] or {}).get(self.select)
            epochs.set_postfix(
                {self.select: "-" if dev is None else f"{dev:.4f}", "loss": f"{record['train_loss']:.4f}"}
            )
            epochs.update()
        if self._stale() and batches.epoch < self.epochs:
            self._note(
                f"stopped early after epoch {batches.epoch} of {self.epochs}: dev {self.select} did not improve "
                f"for {self.recipe.patience} epochs (best epoch {self.state.best['epoch']})"
            )

    def _finish(self) -> RunResult:
        checksums = ddp.gather(ddp.params_checksum(self.trainable), self.world)
        metrics = RunResult()
        if self.world.main:
            self.trainable.load_state_dict(self.state.best["state"])
            test: dict[str, float] = {}
            if "test" in self.eval_labels:
                test, self.state.skipped_test = self._score("test")
            metrics = self._metrics("done", test)
            if self.world.distributed:
                metrics.ddp_params_in_sync = len(set(checksums)) == 1
            self._save_model()
            self._write_metrics(metrics)
        ddp.barrier(self.world)
        return metrics if self.world.main else RunResult.from_json(json.loads((self.out_dir / METRICS).read_text()))


class _LinearProbe(_Run):
    """A linear probe: the backbone embeds every split once (cached in the run directory), and only the
    head (`trainable`) trains, on those embeddings standardised with train statistics; it is scored
    through the shared evaluation code and saved with the standardisation folded into its weights."""

    pooling = "embedding"

    def _train_data(self, loaders: dict[str, BatchLoader], per_rank: int) -> BatchSource:
        """The train split's embeddings as shuffled batches; dev and test embeddings kept for scoring."""
        if self.recipe.balanced:
            raise UserError(
                "the linear protocol trains on fixed embeddings; 'balanced' does not apply",
                fix="set balanced to false for linear probes",
            )
        embeddings = self._embeddings(loaders)
        train = TensorBatches(
            embeddings["train"],
            self._label_tensor(loaders["train"]),
            per_rank,
            seed=self.recipe.seed,
            rank=self.world.rank,
            world_size=self.world.size,
        )
        self.eval_embeddings = {
            s: TensorBatches(embeddings[s], self._label_tensor(ld), self.recipe.eval_batch_size, shuffle=False)
            for s, ld in self.eval_loaders.items()
        }
        return train

    def _trainable(self) -> nn.Module:
        return self.model.fc_audioset

    def _autocast(self) -> torch.autocast:
        """The head on fixed embeddings: float32 on CPU (bfloat16 would only add casts to a small matmul)."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.device.type == "cuda")

    def _label_tensor(self, loader: BatchLoader) -> torch.Tensor:
        labels = loader.labels()
        return torch.from_numpy(labels.astype(np.float32) if self.multilabel else labels)

    def _embeddings(self, loaders: dict[str, BatchLoader]) -> dict[str, torch.Tensor]:
        """Standardised embeddings of every split, each computed once and shared through the embedding cache
        (the study's, so every seed's probe and the advisor reuse them; else the run folder's)."""
        weights = self._backbone_key()
        cache_dir = self.embedding_cache if weights is not None and self.embedding_cache else self.out_dir
        # a random backbone differs per recipe (its seed): its embeddings are this run's alone
        weights = weights or f"random-{self.recipe.hash}"
        splits = {}
        for split, loader in loaders.items():
            key = EmbeddingKey(weights, self.manifest.hash, split, self.frames, self.store.recipe.hash)
            embed = functools.partial(embed_all, self.model, loader, self.device, self._desc(f"embed {split}"))
            splits[split] = load_or_embed(key, cache_dir, embed, save=self.world.main).embeddings
        # the head trains on embeddings standardised with train statistics (as probes usually do: one
        # learning rate then suits every state's embedding scale); _save_model folds this into the head
        std = splits["train"].std(0)
        self.standardise = (splits["train"].mean(0), torch.where(std < 1e-6, torch.ones_like(std), std))
        mean, std = self.standardise  # constant units keep scale 1, as in scikit-learn's StandardScaler
        return {s: (e - mean) / std for s, e in splits.items()}

    @functools.cached_property
    def _backbone_ref(self) -> dict[str, Any] | None:
        """The frozen backbone's file reference (path, size, sha256), hashed once per run."""
        return backbone_reference(self.init) if self.init is not None else None

    def _backbone_key(self) -> str | None:
        """The content hash that names the frozen backbone in the embedding cache (None: a random one)."""
        return self._backbone_ref["sha256"] if self._backbone_ref else None

    def _train_epoch(self, bar: tqdm) -> None:
        """The rest of the current epoch: head steps on the fixed embeddings (the backbone is not run)."""
        self.wrapped.train()
        for x, y in self.train_batches:
            self._step(x, y, bar)

    def _probabilities(self, split: str, predict: Callable[[torch.Tensor], torch.Tensor]) -> np.ndarray:
        """`predict` on the split's standardised whole-clip embeddings, one row per clip."""
        source = self.eval_embeddings[split]
        source.load_state_dict({"epoch": 0, "position": 0})
        return torch.cat([predict(x) for x, _ in source]).cpu().numpy()

    def _backbone(self) -> dict[str, Any] | None:
        return self._backbone_ref

    def _save_model(self) -> None:
        """The head made to act on raw embeddings, then model.pt as for any run."""
        _fold_standardisation(self.model.fc_audioset, *self.standardise)
        super()._save_model()


@torch.no_grad()
def _fold_standardisation(head: nn.Linear, mean: torch.Tensor, std: torch.Tensor) -> None:
    """Make a head trained on (e - mean) / std act on raw embeddings e: W' = W / std, b' = b - W' mean."""
    head.weight.div_(std.to(head.weight))
    head.bias.sub_(head.weight @ mean.to(head.weight))


def _execute(
    kind: str,
    manifest: Manifest,
    store: FeatureStore,
    recipe: TrainRecipe,
    out_dir: str | Path,
    init: str | Path | None,
    progress: bool,
    format: str | None = None,
    embedding_cache: str | Path | None = None,
) -> RunResult:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    init_path = Path(init).resolve() if init is not None else None
    if format is not None and init is not None and not Path(init).exists():
        init_path = Path(init)  # a name a public family resolves itself (CREPE's 'tiny')
    metrics_path = out / METRICS
    if metrics_path.exists():
        done = RunResult.from_json(json.loads(metrics_path.read_text()))
        if done.status == "done":
            mine = (recipe.hash, manifest.hash, str(init_path) if init_path else None)
            if (done.recipe_hash, done.manifest_hash, done.init) != mine:
                raise UserError(
                    f"{out}: holds a finished run with a different recipe, manifest or starting state",
                    fix="use a new output directory, or delete this one to rerun",
                )
            return done
    _check_task(manifest)
    try:
        store.rows(manifest.clips["clip_id"].tolist())
    except UserError as exc:
        raise UserError(f"manifest {manifest.name!r}: {exc.message}", fix=exc.fix) from None
    cache = Path(embedding_cache) if embedding_cache is not None else None
    if format is not None:  # a public pre-trained family (models.public.PUBLIC_FORMATS)
        import audiotransfer.training.public as public

        if init_path is None or recipe.protocol == "scratch":
            raise UserError(
                f"a {format} model is fine-tuned from its pre-trained weights; protocol {recipe.protocol!r} "
                f"{'has no starting state' if init_path is None else 'does not apply'}",
                fix="give the model (--from PATH --format FORMAT) and protocol linear, finetune or freeze:K",
            )
        cls = public.PublicProbe if recipe.protocol == "linear" else public.PublicRun
        return cls(kind, manifest, store, recipe, out, init_path, progress, cache, format=format).execute()
    run = _LinearProbe if recipe.protocol == "linear" else _Run
    return run(kind, manifest, store, recipe, out, init_path, progress, cache).execute()


def pretrain(
    manifest: Manifest, store: FeatureStore, recipe: TrainRecipe | None, out_dir: str | Path, progress: bool = True
) -> RunResult:
    """Train a model from scratch on a (multi-label) manifest; resumable; returns the run result."""
    recipe = recipe or PRETRAIN
    if recipe.protocol not in ("scratch", "finetune"):
        raise UserError(
            f"pre-training trains every weight from scratch; protocol {recipe.protocol!r} does not apply",
            fix="use protocol 'scratch' (the PRETRAIN default) for pre-training",
        )
    return _execute("pretrain", manifest, store, recipe, out_dir, None, progress)


def finetune(
    manifest: Manifest,
    store: FeatureStore,
    recipe: TrainRecipe | None,
    out_dir: str | Path,
    init: str | Path | None = None,
    progress: bool = True,
    format: str | None = None,
    embedding_cache: str | Path | None = None,
) -> RunResult:
    """Train on a downstream task from state `init` (run dir or checkpoint; None: random) under the
    recipe's protocol; resumable; returns the run result (also written as metrics.json). A linear probe
    reads and writes its backbone's embeddings in `embedding_cache` (shared with other seeds' probes and
    the advisor; None: the run folder). `format` names a public pre-trained family
    (`models.public.PUBLIC_FORMATS`): `init` is then that model, trained on its own waveform store
    (`training.public`)."""
    if format is not None and format not in PUBLIC_FORMATS:
        raise UserError(
            unknown_name("public model format", format, PUBLIC_FORMATS), fix=f"use one of {', '.join(PUBLIC_FORMATS)}"
        )
    return _execute("finetune", manifest, store, recipe or FINETUNE, out_dir, init, progress, format, embedding_cache)
