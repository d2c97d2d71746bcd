"""Benchmark: pre-training throughput on one accelerator, fed by the real loader from a real store.

For each model (CNN6/10/14) and with/without `torch.compile`: clips/s of training steps (forward, BCE,
backward, Adam) at batch 128 on 10 s crops, bf16 autocast and channels-last as the engine trains on CUDA,
with batches read by `BatchLoader` (`--readers` threads) from a packed feature store: `--store DIR` (a
real extracted store), else a store of `--clips` random 10 s clips written in the store format to a
temporary folder. Prints per configuration: clips/s, the fraction of the time spent waiting for data,
peak GPU memory. `--fused N` adds each model trained as N fused runs (`training.fused.FusedCNN`: N seeds
as one grouped-convolution model, each reading its own batches), bf16 and channels-last likewise. The last
line turns the best figure into runs per hour and GPU-hours for the paper's grid (`PAPER_GRID`, the cost
model's count of `examples/studies/paper.yaml`). `--save` records each model's best clips/s for
`audiotransfer study plan`'s hours.

On a machine without CUDA it runs a tiny smoke configuration (tested in CI) and says that GPU figures
need a GPU.

    .venv/bin/python benchmarks/bench_gpu.py --models cnn10 --fused 3 --save   # on a GPU machine
    .venv/bin/python benchmarks/bench_gpu.py                                # anywhere: CPU smoke run
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from audiotransfer.data.features import RECIPES
from audiotransfer.data.loader import BatchLoader
from audiotransfer.data.store import FeatureStore, write_store
from audiotransfer.manifest import Manifest, from_label_lists
from audiotransfer.models import create_model
from audiotransfer.training.fused import FusedCNN

CLASSES = 527
SMOKE = {
    "models": ["cnn6"],
    "batch": 4,
    "seconds": 1.0,
    "steps": 2,
    "warmup": 1,
    "clips": 16,
    "width": 0.125,
    "compile": "off",
    "fused": 2,
}
# The paper's grid by the cost model (README): 139 runs, 3.35e8 clip-epochs in 10 s crop equivalents
# (31 GPU-hours at 3,000 clips/s), 2.27e8 of them in the 13 pre-training runs.
PAPER_GRID = {"runs": 139, "clip_epochs_10s": 31 * 3600 * 3000, "pretrain_share": 21 / 31}


def synthetic_store(root: Path, clips: int, seconds: float) -> tuple[Manifest, FeatureStore]:
    """`clips` random log-mel clips of about `seconds` (+-10%) in the store format, multi-hot targets."""
    recipe = RECIPES["panns16k"]
    frames = round(seconds * recipe.sample_rate / recipe.hop_length) + 1
    rng = np.random.default_rng(0)
    features = {
        f"clip{i:07d}": rng.normal(-40, 10, (int(frames * rng.uniform(0.9, 1.1)), recipe.n_mels)).astype(np.float16)
        for i in range(clips)
    }
    store = write_store(root, recipe, "bench", features)
    labels = [[str(j) for j in rng.choice(CLASSES, 2, replace=False)] for _ in range(clips)]
    manifest = from_label_lists(
        "bench",
        pd.DataFrame({"clip_id": list(features), "split": "train"}),
        labels,
        labels=[str(j) for j in range(CLASSES)],
        meta={"clip_seconds": seconds},
    )
    return manifest, store


def store_manifest(store: FeatureStore) -> Manifest:
    """Every clip of an existing store with random multi-hot targets (the benchmark needs no labels)."""
    rng = np.random.default_rng(0)
    ids = list(store.clip_ids)
    labels = [[str(j) for j in rng.choice(CLASSES, 2, replace=False)] for _ in ids]
    return from_label_lists(
        "bench", pd.DataFrame({"clip_id": ids, "split": "train"}), labels, labels=[str(j) for j in range(CLASSES)]
    )


def measure(
    model_name: str,
    compiled: bool,
    manifest: Manifest,
    store: FeatureStore,
    args: Any,
    device: torch.device,
    fused: int = 0,
) -> dict[str, Any]:
    """Train `warmup` then `steps` steps; clips/s, data-wait fraction and peak memory of the timed steps.
    `fused` > 1: that many models as one `FusedCNN`, each step one batch per member."""
    frames = round(args.seconds * store.recipe.sample_rate / store.recipe.hop_length) + 1
    members = max(1, fused)
    nets = [create_model(model_name, CLASSES, width=args.width, n_mels=store.recipe.n_mels) for _ in range(members)]
    model: torch.nn.Module = (
        nets[0] if fused <= 1 else FusedCNN(nets, [torch.Generator().manual_seed(i) for i in range(members)])
    )
    model = model.to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch stubs lack it
        torch.backends.cudnn.benchmark = True
        torch.cuda.reset_peak_memory_stats(device)
    step_fn = torch.compile(model) if compiled else model
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = BatchLoader(
        manifest,
        store,
        args.batch,
        frames,
        readers=args.readers,
        pin_memory=device.type == "cuda",
        half=device.type == "cuda",
    )  # as the engine
    batches = iter(_forever(loader))
    started = time.perf_counter()
    for step in range(args.warmup + args.steps):
        if step == args.warmup:  # compile and cudnn autotuning happen in the warm-up
            _sync(device)
            warmup_s, wait0, start = time.perf_counter() - started, loader.wait_s, time.perf_counter()
        pairs = [next(batches) for _ in range(members)]
        x = torch.stack([p[0] for p in pairs]).to(device, non_blocking=True).float()
        y = torch.stack([p[1] for p in pairs]).to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            out = step_fn(x if fused > 1 else x[0]).float()  # fused: (N, B, K); one model: (B, K)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(out, y if fused > 1 else y[0])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    _sync(device)
    elapsed = time.perf_counter() - start
    return {
        "model": model_name,
        "fused": members,
        "compile": compiled,
        "batch": args.batch,
        "crop_s": args.seconds,
        "clips_per_s": round(args.steps * args.batch * members / elapsed, 1),
        "data_wait": round((loader.wait_s - wait0) / elapsed, 3),
        "warmup_s": round(warmup_s, 1),
        "peak_gib": round(torch.cuda.max_memory_allocated(device) / 2**30, 2) if device.type == "cuda" else None,
    }


def _forever(loader: BatchLoader) -> Any:
    while True:
        yield from loader


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="cnn6,cnn10,cnn14", help="comma-separated (default all three)")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--seconds", type=float, default=10.0, help="crop length in seconds")
    parser.add_argument("--steps", type=int, default=50, help="timed steps per configuration")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps first (compile, autotuning)")
    parser.add_argument("--clips", type=int, default=4096, help="clips of the temporary store (no --store)")
    parser.add_argument("--store", help="an extracted feature store to read instead of a temporary one")
    parser.add_argument("--readers", type=int, default=4, help="loader reader threads")
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--compile", choices=("both", "on", "off"), default="both")
    parser.add_argument("--fused", type=int, default=0, help="also train N runs as one fused model (0: not)")
    parser.add_argument("--save", action="store_true", help="save each model's best clips/s for `study plan`")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    args.models = args.models.split(",")
    return args


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    args = parse(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type != "cuda":
        print(
            "no CUDA device: running the CPU smoke configuration; GPU figures need a GPU "
            "(run this script on a GPU machine for them)"
        )
        vars(args).update(SMOKE, save=False)
    else:
        print(f"device: {torch.cuda.get_device_name(device)}, torch {torch.__version__}")
    compiles = {"both": [False, True], "on": [True], "off": [False]}[args.compile]
    with tempfile.TemporaryDirectory() as tmp:
        if args.store:
            store = FeatureStore(args.store)
            manifest = store_manifest(store)
        else:
            manifest, store = synthetic_store(Path(tmp) / "store", args.clips, args.seconds)
        results = [measure(m, c, manifest, store, args, device) for m in args.models for c in compiles]
        if args.fused > 1:
            results += [measure(m, False, manifest, store, args, device, fused=args.fused) for m in args.models]
    print(pd.DataFrame(results).to_string(index=False))
    best = max(r["clips_per_s"] for r in results)
    hours = PAPER_GRID["clip_epochs_10s"] / (best * args.seconds / 10.0) / 3600  # as 10 s crops
    smoke = " of a CPU smoke run" if device.type != "cuda" else ""
    print(
        f"the paper's grid at the best figure ({best:,.0f} clips/s of {args.seconds:g} s crops{smoke}"
        f"): {hours:,.1f} device-hours, {PAPER_GRID['runs'] / hours:,.2f} runs per hour (cost-model estimate; "
        "evaluation and feature extraction not counted)"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    if args.save:
        from audiotransfer.study.cost import save_throughput

        for name in args.models:
            best = max((r for r in results if r["model"] == name), key=lambda r: r["clips_per_s"])
            path = save_throughput(
                name,
                best["clips_per_s"],
                torch.cuda.get_device_name(device),
                batch=args.batch,
                compile=best["compile"],
                data_wait=best["data_wait"],
            )
        print(f"saved clips/s per model to {path} (read by `audiotransfer study plan`)")
    return results


if __name__ == "__main__":
    main()
