"""Linear probe vs full fine-tuning: seconds per training epoch on the same task, model and batch.

The probe computes the backbone's embeddings once per split (reported separately) and then trains only
the head on them; full fine-tuning runs the whole network every epoch. Epochs after the first are timed.
Target: a probe epoch at least 20x faster than a fine-tuning epoch.

    .venv/bin/python benchmarks/bench_linear.py [--clips 128] [--width 0.125] [--frames 1001] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from audiotransfer.data.features import FeatureRecipe
from audiotransfer.data.store import write_store
from audiotransfer.manifest import from_label_lists
from audiotransfer.training import FINETUNE, RunResult, finetune


def epoch_seconds(metrics: RunResult) -> float:
    return float(np.mean([e["seconds"] for e in metrics.epochs[1:]]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=128)
    parser.add_argument("--width", type=float, default=0.125)
    parser.add_argument("--frames", type=int, default=1001)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    ids = [f"c{i}" for i in range(args.clips)]
    classes = np.arange(args.clips) % 10
    split = np.where(np.arange(args.clips) % 8 == 0, "dev", "train")
    manifest = from_label_lists(
        "bench",
        pd.DataFrame({"clip_id": ids, "split": split}),
        [[str(c)] for c in classes],
        labels=[str(c) for c in range(10)],
        task_type="multiclass",
        meta={"clip_seconds": 10.0},
    )
    recipe = FINETUNE.replace(model="cnn10", width=args.width, epochs=args.epochs, frames=args.frames)
    with tempfile.TemporaryDirectory() as tmp:
        feats = {i: rng.normal(-20, 5, (args.frames, 64)).astype(np.float32) for i in ids}
        store = write_store(Path(tmp) / "store", FeatureRecipe(), "bench", feats)
        full = finetune(manifest, store, recipe, Path(tmp) / "full", progress=True)
        probe = finetune(manifest, store, recipe.replace(protocol="linear"), Path(tmp) / "probe", progress=True)
    full_s, probe_s = epoch_seconds(full), epoch_seconds(probe)
    embed_s = probe.duration_s - sum(e["seconds"] for e in probe.epochs)
    print(
        json.dumps(
            {
                "model": f"cnn10 width {args.width}",
                "frames": args.frames,
                "train_clips": full.num_train_clips,
                "batch": recipe.batch_size,
                "threads": args.threads,
                "finetune_epoch_s": round(full_s, 4),
                "linear_epoch_s": round(probe_s, 5),
                "linear_setup_incl_embeddings_s": round(embed_s, 3),
                "speedup_per_epoch": round(full_s / probe_s, 1),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
