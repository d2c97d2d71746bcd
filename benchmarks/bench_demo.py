"""The demo's training, old path against new, side by side in one process: the ratio is the speed-up.

A fixed slice of the demo grid at the demo's shapes (CNN6 at width 0.125, batch 32, 2 s crops = 101 frames
of 32 mels): one pre-training run (`--pretrain-steps` steps on `--pretrain-clips` clips) and the fine-tuning
of one state on a scenes-sized task (1,200 clips, 70/15/15) under `finetune` with three seeds, `--epochs`
epochs each, then three seeds of its linear probe (the demo's 60 epochs). Paths: `old`: NCHW convolutions on
CPU in float32, epoch-end checkpoints, the seeds one after another, each probe embedding the task itself (as
before); `new`: what the engine and the demo's recipe now do: channels-last convolutions, bfloat16 autocast on
CPU (`bf16_on_cpu`), resume checkpoints at most once a minute, the probes' embeddings computed once and shared
(`training.embedding_cache`); `fused`: `new`, and the three fine-tuning seeds as one fused model
(`training.group.finetune_group`, a measured option the runner does not use). The step timing also shows
channels-last alone.
Features are random (the cost does not depend on their values). The paths alternate `--repeats` times and
the best time of each is kept. On a shared machine the load drifts between passes of a minute, so the script
first times single training steps of the three paths interleaved (`--rounds` rounds of one step each, three
members for the fused path), whose median per-round ratio the drift hardly touches.

    .venv/bin/python benchmarks/bench_demo.py [--epochs 10] [--pretrain-steps 300] [--repeats 2]
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

import audiotransfer.training.engine as engine
from audiotransfer.data.features import RECIPES
from audiotransfer.data.store import FeatureStore, write_store
from audiotransfer.manifest import Manifest, from_label_lists
from audiotransfer.training import FINETUNE, PRETRAIN, finetune, pretrain
from audiotransfer.training.group import finetune_group

SEEDS = (1, 2, 3)
FRAMES = 101  # 2 s at the demo recipe's hop of 320 samples


def task_data(root: Path, name: str, clips: int, classes: int, multilabel: bool) -> tuple[Manifest, FeatureStore]:
    """Random demo-shaped features in the store format, with a 70/15/15 split."""
    rng = np.random.default_rng(0)
    recipe = RECIPES["demo"]
    ids = [f"{name}{i:05d}" for i in range(clips)]
    feats = {i: rng.normal(-40, 10, (FRAMES, recipe.n_mels)).astype(np.float16) for i in ids}
    split = ["dev" if i % 20 in (2, 9, 16) else "test" if i % 20 in (4, 13, 19) else "train" for i in range(clips)]
    if multilabel:
        labels = [[str(j) for j in rng.choice(classes, 2, replace=False)] for _ in ids]
        split = ["test" if s == "dev" else s for s in split]  # pre-training states have no dev split
    else:
        labels = [[str(i % classes)] for i in range(clips)]
    manifest = from_label_lists(
        name,
        pd.DataFrame({"clip_id": ids, "split": split}),
        labels,
        labels=[str(j) for j in range(classes)],
        task_type="multilabel" if multilabel else "multiclass",
        meta={"clip_seconds": 2.0},
    )
    return manifest, write_store(root / f"store_{name}", recipe, name, feats)


# (channels-last, fused seeds, linear probes share their embeddings across seeds, the demo recipe's
# runtime settings: bfloat16 on CPU and resume checkpoints at most once a minute)
PATHS = {"old": (False, False, False, False), "new": (True, False, True, True), "fused": (True, True, True, True)}


def one_pass(path: str, data: dict[str, Any], args: argparse.Namespace, out: Path) -> dict[str, float]:
    """Seconds of the pre-training run, the three fine-tuning runs and the three linear probes on one path."""
    engine.CHANNELS_LAST, fuse, shared, demo = PATHS[path]
    settings = {"bf16_on_cpu": demo, "checkpoint_interval_s": 60.0 if demo else 0.0}
    manifest, store = data["pretrain"]
    recipe = PRETRAIN.replace(model="cnn6", width=0.125, steps=args.pretrain_steps, batch_size=32, **settings)
    start = time.perf_counter()
    pretrain(manifest, store, recipe, out / "pre", progress=False)
    seconds = {"pretrain_s": time.perf_counter() - start}
    manifest, store = data["task"]
    tune = FINETUNE.replace(model="cnn6", width=0.125, epochs=args.epochs, batch_size=32, **settings)
    recipes = [tune.replace(seed=s) for s in SEEDS]
    start = time.perf_counter()
    finetune_group(manifest, store, recipes, [out / f"ft{s}" for s in SEEDS], [out / "pre"] * len(SEEDS), fuse=fuse)
    seconds["finetune_s"] = time.perf_counter() - start
    probe = tune.replace(epochs=60, lr=0.03, protocol="linear")
    start = time.perf_counter()
    for s in SEEDS:
        cache = out / "cache" if shared else None
        finetune(manifest, store, probe.replace(seed=s), out / f"lin{s}", out / "pre", False, embedding_cache=cache)
    seconds["linear_s"] = time.perf_counter() - start
    return seconds


def step_ratios(rounds: int, batch: int = 32, mels: int = 32) -> dict[str, float]:
    """Median per-round speed-up of a training step (3 seeds' worth) over the old path, paths interleaved."""
    from audiotransfer.models import create_model
    from audiotransfer.models.cnn import AudioCNN
    from audiotransfer.training.fused import FusedCNN

    def models(last: bool) -> list[AudioCNN]:
        nets = [create_model("cnn6", 6, width=0.125, n_mels=mels) for _ in SEEDS]
        return [n.to(memory_format=torch.channels_last) if last else n for n in nets]  # type: ignore[call-overload]

    xs, y = torch.randn(len(SEEDS), batch, FRAMES, mels), torch.randint(0, 6, (batch,))
    fused = FusedCNN(models(True), [torch.Generator().manual_seed(s) for s in SEEDS])
    fused.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    setups: dict[str, list[torch.nn.Module]] = {
        "old": [*models(False)],
        "channels_last": [*models(True)],
        "new": [*models(True)],  # channels-last + bfloat16 autocast (the demo's recipe)
        "fused": [fused],
    }
    optims = {k: [torch.optim.Adam(m.parameters()) for m in ms] for k, ms in setups.items()}

    def step(key: str) -> float:
        start = time.perf_counter()
        for model, opt in zip(setups[key], optims[key], strict=True):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=key in ("new", "fused")):
                out = model(xs) if key == "fused" else model(xs[0])  # (3, B, 6) or (B, 6)
            target = y.repeat(len(SEEDS)) if key == "fused" else y
            loss = torch.nn.functional.cross_entropy(out.reshape(-1, 6), target)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return time.perf_counter() - start

    times: dict[str, list[float]] = {k: [] for k in setups}
    for r in range(rounds + 2):
        for key in setups:
            seconds = step(key)
            if r >= 2:  # warm-up rounds
                times[key].append(seconds)
    old = np.array(times["old"])
    return {f"step_speedup_{k}": round(float(np.median(old / np.array(v))), 3) for k, v in times.items() if k != "old"}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10, help="fine-tuning epochs (the demo: 10)")
    parser.add_argument("--pretrain-steps", type=int, default=300, help="pre-training steps (the demo: 1,500)")
    parser.add_argument("--pretrain-clips", type=int, default=900)
    parser.add_argument("--task-clips", type=int, default=1200)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the demo: 1 per job)")
    parser.add_argument("--rounds", type=int, default=60, help="interleaved single-step rounds")
    parser.add_argument("--steps-only", action="store_true", help="only the interleaved step timing")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    steps = step_ratios(args.rounds)
    print(json.dumps(steps))
    if args.steps_only:
        return steps
    best: dict[str, dict[str, float]] = {p: {} for p in PATHS}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = {
            "pretrain": task_data(root, "pre", args.pretrain_clips, 40, True),
            "task": task_data(root, "task", args.task_clips, 6, False),
        }
        for r in range(args.repeats):
            for path in PATHS:
                seconds = one_pass(path, data, args, root / f"{path}{r}")
                for key, value in seconds.items():
                    best[path][key] = min(best[path].get(key, np.inf), value)
    engine.CHANNELS_LAST = True
    result: dict[str, Any] = {
        **steps,
        "threads": args.threads,
        "epochs": args.epochs,
        "pretrain_steps": args.pretrain_steps,
        **{f"{p}_{k}": round(v, 2) for p, s in best.items() for k, v in s.items()},
    }
    for path in ("new", "fused"):
        for key in ("pretrain_s", "finetune_s", "linear_s"):
            result[f"speedup_{path}_{key[:-2]}"] = round(best["old"][key] / best[path][key], 3)
        result[f"speedup_{path}_slice"] = round(sum(best["old"].values()) / sum(best[path].values()), 3)
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
