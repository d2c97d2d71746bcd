"""Where a training run's seconds go: one pre-training and one fine-tuning run of the demo's shapes, profiled.

Runs the engine under cProfile on a finished (or prepared) demo study folder (its manifests and stores) and
splits each run's time into setup, data wait, forward, loss, backward, optimiser, dev/test evaluation,
checkpoint and metrics writes, and the rest (Python overhead of the loop: batch bookkeeping, progress, the
loss check). cProfile slows Python-heavy code, so the same run is also timed without it.

    .venv/bin/python benchmarks/profile_runs.py --study audiotransfer-demo-quick [--steps 300] [--epochs 10]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from audiotransfer.data.store import FeatureStore
from audiotransfer.manifest import Manifest
from audiotransfer.training import finetune, pretrain
from audiotransfer.training.recipe import TrainRecipe

# (category, file, function): cumulative seconds of these functions (none nested in another of the list,
# except forward and data wait, which are corrected below)
PARTS = [
    ("evaluation (dev, test)", "engine.py", "_score"),
    ("checkpoint + metrics writes", "engine.py", "_checkpoint"),
    ("checkpoint + metrics writes", "engine.py", "_write_metrics"),
    ("setup (model, loaders, resume)", "engine.py", "_setup"),
    ("setup (model, loaders, resume)", "engine.py", "_resume"),
    ("finish (best weights, model.pt)", "engine.py", "_finish"),
    ("backward", "_tensor.py", "backward"),
    ("optimiser", "optimizer.py", "wrapper"),
    ("optimiser", "optimizer.py", "zero_grad"),
    ("loss", "loss.py", "forward"),
    ("forward", "cnn.py", "_stages"),  # AudioCNN.forward minus the head (ConvBlock.forward is nested)
    ("data wait", "_base.py", "result"),
]


def _cumulative(stats: pstats.Stats) -> dict[tuple[str, str], float]:
    table: dict[tuple[str, str], float] = {}
    for (file, _line, name), (_cc, _nc, _tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        key = (Path(file).name, name)
        table[key] = table.get(key, 0.0) + ct
    return table


def split(stats: pstats.Stats, total: float) -> dict[str, float]:
    """Seconds per category; the training loop's remainder is its Python overhead."""
    cum = _cumulative(stats)
    out: dict[str, float] = {}
    for category, file, name in PARTS:
        out[category] = out.get(category, 0.0) + cum.get((file, name), 0.0)
    out["forward"] -= cum.get(("engine.py", "predict"), 0.0)  # forwards of evaluation count as evaluation
    loop = cum.get(("engine.py", "_train_epoch"), 0.0)
    inner = sum(out[k] for k in ("forward", "loss", "backward", "optimiser", "data wait"))
    out["python overhead (training loop)"] = max(0.0, loop - inner)
    out["other (epoch ends, bars, imports)"] = max(0.0, total - sum(out.values()))
    return {k: round(v, 2) for k, v in out.items()}


def profile(fn: Any, out: Path) -> dict[str, Any]:
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    fn(out)
    profiler.disable()
    total = time.perf_counter() - start
    stats = pstats.Stats(profiler)
    return {"seconds_profiled": round(total, 2), "parts": split(stats, total)}


def op_table(steps: int = 20, batch: int = 32, frames: int = 101, mels: int = 32) -> list[dict[str, Any]]:
    """The top operators by self CPU time in `steps` training steps of the demo's model (torch.profiler)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    from audiotransfer.models import create_model

    model = create_model("cnn6", 10, width=0.125, n_mels=mels)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = torch.randn(batch, frames, mels), torch.randint(0, 10, (batch,))

    def step() -> None:
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(3):
        step()
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    return [
        {"op": e.key, "calls_per_step": e.count // steps, "share": round(e.self_cpu_time_total / total, 3)}
        for e in events[:10]
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", required=True, help="a demo study folder (manifests and stores prepared)")
    parser.add_argument("--state", default="all")
    parser.add_argument("--task", default="scenes")
    parser.add_argument("--steps", type=int, default=300, help="pre-training steps (the demo: 1500)")
    parser.add_argument("--epochs", type=int, default=10, help="fine-tuning epochs (the demo: 10)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    root = Path(args.study)
    state = Manifest.load(root / "manifests" / "states" / f"{args.state}.json")
    task = Manifest.load(root / "manifests" / "tasks" / f"{args.task}.json")
    pstore, tstore = FeatureStore(root / "stores" / "pretrain"), FeatureStore(root / "stores" / args.task)
    pre = TrainRecipe(model="cnn6", width=0.125, steps=args.steps, batch_size=32, protocol="scratch")
    fine = TrainRecipe(model="cnn6", width=0.125, epochs=args.epochs, batch_size=32, select_metric="accuracy")
    result: dict[str, Any] = {"threads": args.threads}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        runs = {
            "pretrain": lambda o: pretrain(state, pstore, pre, o, progress=False),
            "finetune": lambda o: finetune(task, tstore, fine, o, init=base / "p0" / "model.pt", progress=False),
        }
        for name, fn in runs.items():
            start = time.perf_counter()
            fn(base / f"{name[0]}0")
            plain = time.perf_counter() - start
            result[name] = {"seconds_plain": round(plain, 2), **profile(fn, base / f"{name[0]}1")}
    result["top_ops"] = op_table()
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
