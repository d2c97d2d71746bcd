"""Benchmark: random 1001-frame crops per second from the feature store, next to CNN10 CPU training.

Packs `--clips` clips of about 10 s (64 mels, float16, 900-1100 frames) with `write_store`, reads every
shard once (warm page cache), then times `read_batch` on random rows with random crops, batched as a
training loader does. Target: >= 5,000 crops/s. The training side times CNN10 forward + backward + Adam on
the same crops on this CPU, so the two rates show how far reads are from being the bottleneck.

    .venv/bin/python benchmarks/bench_store.py [--clips N] [--batch B] [--seconds S]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from audiotransfer.data.features import RECIPES
from audiotransfer.data.store import write_store


def read_rate(store: object, batch: int, seconds: float) -> float:
    rng = np.random.default_rng(0)
    n, crops = store.num_clips, 0
    store.read_batch(rng.integers(0, n, batch), 1001, rng=rng)
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        store.read_batch(rng.integers(0, n, batch), 1001, crop="random", rng=rng)
        crops += batch
    return crops / (time.perf_counter() - start)


def train_rate(store: object, batch: int, steps: int) -> float | None:
    try:
        from audiotransfer.models import create_model
    except ImportError:
        return None
    model = create_model("cnn10", num_classes=527)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(1)
    target = torch.zeros(batch, 527)
    elapsed = 0.0
    for step in range(steps + 1):
        x = torch.from_numpy(store.read_batch(rng.integers(0, store.num_clips, batch), 1001, rng=rng))
        start = time.perf_counter()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step:  # the first step is warm-up
            elapsed += time.perf_counter() - start
    return steps * batch / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clips", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--train-batch", type=int, default=8)
    parser.add_argument("--train-steps", type=int, default=1)
    args = parser.parse_args()
    recipe = RECIPES["panns16k"]
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        feats = {
            f"clip{i:06d}": rng.normal(-30, 15, (int(rng.integers(900, 1101)), recipe.n_mels)).astype(np.float16)
            for i in range(args.clips)
        }
        store = write_store(Path(tmp) / "store", recipe, "bench", feats)
        del feats
        for shard in sorted((Path(tmp) / "store" / "shards").glob("*.bin")):
            shard.read_bytes()  # warm the page cache
        crops = read_rate(store, args.batch, args.seconds)
        print(
            f"store reads: {crops:,.0f} random 1001x64 crops/s (batch {args.batch}, "
            f"{torch.get_num_threads()} torch threads, {args.clips} clips); target >= 5,000: "
            f"{crops / 5000:.1f}x the target"
        )
        clips_s = train_rate(store, args.train_batch, args.train_steps)
        if clips_s is None:
            print("CNN10 training: audiotransfer.models.create_model not available yet; left out")
        else:
            print(
                f"CNN10 CPU training on the same crops (batch {args.train_batch}): {clips_s:.2f} clips/s; "
                f"reads are {crops / clips_s:,.0f}x faster"
            )


if __name__ == "__main__":
    main()
