"""Engine overhead: training clips/s of `pretrain` against a bare PyTorch loop, same model, batches, crops.

The bare loop reads the same crops from the store up front and only runs forward, loss, backward and
step; the engine additionally streams batches from the store, checks the loss, keeps its loader state
and shows progress. Throughput counts training epochs after the first (warm-up); runs alternate and the
best of each is kept, so load from other processes affects both alike. Target: overhead <= 5%.

    .venv/bin/python benchmarks/bench_engine.py [--model cnn10] [--width 0.125] [--frames 501] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from audiotransfer.data.features import FeatureRecipe
from audiotransfer.data.loader import BatchLoader
from audiotransfer.data.store import FeatureStore, write_store
from audiotransfer.manifest import Manifest, from_label_lists
from audiotransfer.models import create_model
from audiotransfer.training import PRETRAIN, TrainRecipe, pretrain
from audiotransfer.training.checkpoint import seed_everything


def bare_loop(manifest: Manifest, store: FeatureStore, recipe: TrainRecipe, frames: int) -> float:
    """Clips/s of a plain loop over the engine's own batches (prepared in memory beforehand)."""
    loader = BatchLoader(manifest, store, recipe.batch_size, frames, seed=recipe.seed)
    epochs = [list(loader) for _ in range(recipe.epochs)]
    seed_everything(recipe.seed)
    model = create_model(recipe.model, manifest.num_classes, width=recipe.width, n_mels=store.recipe.n_mels)
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    model.train()
    timed = 0.0
    for epoch, batches in enumerate(epochs):
        start = time.perf_counter()
        for x, y in batches:
            loss = loss_fn(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        if epoch:
            timed += time.perf_counter() - start
    return manifest.num_clips * (recipe.epochs - 1) / timed


def engine(manifest: Manifest, store: FeatureStore, recipe: TrainRecipe, out: Path) -> tuple[float, float]:
    """Clips/s of `pretrain` over training epochs after the first, and over its whole run."""
    metrics = pretrain(manifest, store, recipe, out, progress=True)
    timed = sum(e["seconds"] for e in metrics.epochs[1:])
    whole = manifest.num_clips * recipe.epochs / metrics.duration_s
    return manifest.num_clips * (recipe.epochs - 1) / timed, whole


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=64)
    parser.add_argument("--width", type=float, default=0.125)
    parser.add_argument("--model", default="cnn10")
    parser.add_argument("--frames", type=int, default=501)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: steadiest on a shared CPU)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    ids = [f"c{i}" for i in range(args.clips)]
    lists = [[str(j) for j in rng.choice(10, size=2, replace=False)] for _ in ids]
    manifest = from_label_lists(
        "bench",
        pd.DataFrame({"clip_id": ids, "split": "train"}),
        lists,
        labels=[str(j) for j in range(10)],
        meta={"clip_seconds": 10.0},
    )
    recipe = PRETRAIN.replace(
        model=args.model, width=args.width, epochs=args.epochs, batch_size=args.batch, frames=args.frames
    )
    with tempfile.TemporaryDirectory() as tmp:
        feats = {i: rng.normal(-20, 5, (args.frames + 100, 64)).astype(np.float32) for i in ids}
        store = write_store(Path(tmp) / "store", FeatureRecipe(), "bench", feats)
        bare, eng, whole = [], [], []
        for r in range(args.repeats):
            bare.append(bare_loop(manifest, store, recipe, args.frames))
            e, w = engine(manifest, store, recipe, Path(tmp) / f"run{r}")
            eng.append(e)
            whole.append(w)
    result = {
        "model": f"{args.model} width {args.width}",
        "batch": args.batch,
        "frames": args.frames,
        "threads": torch.get_num_threads(),
        "bare_clips_per_s": round(max(bare), 2),
        "engine_clips_per_s": round(max(eng), 2),
        "engine_whole_run_clips_per_s": round(max(whole), 2),
        "overhead_pct": round(100 * (1 - max(eng) / max(bare)), 2),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
