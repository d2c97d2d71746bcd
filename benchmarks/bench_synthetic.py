"""Benchmark of the synthetic world: generation speed, and (with --transfer) whether similarity shows.

Speed: renders a sample of clips serially in this process (the baseline), then generates the default
world (5,000 pre-training + 1,000 eval clips + the three tasks) into a temporary folder with all cores, and
prints clips/s of both, the speed-up and the total against the 2-minute target; then times the cached re-run.

Transfer (`--transfer`): a tiny CNN (about 6k parameters) is pre-trained for a few epochs on equally large
root-category subsets of pre-training clips (and left random as a control); a linear probe on its pooled
features is then cross-validated on each task. By construction the diagonal should win: Human sounds for
commands, Animal for birds, Things + Natural for scenes, and Music should help least.

    .venv/bin/python benchmarks/bench_synthetic.py [--clips 5000] [--jobs 2] [--transfer]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np


def speed(clips: int, jobs: int) -> None:
    from audiotransfer.data.synthetic import generate_world, world

    sample = 200
    t = time.perf_counter()
    for i in range(sample):
        world.render_pretrain(0, "train", i)
    serial = sample / (time.perf_counter() - t)
    print(f"baseline: serial rendering in memory, {sample} clips: {serial:.1f} clips/s")
    sizes = {"num_pretrain": clips, "num_eval": clips // 5, "num_scenes": 480, "num_birds": 480, "num_commands": 720}
    total = sum(sizes.values())
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        generate_world(tmp, jobs=jobs, progress=False, **sizes)
        seconds = time.perf_counter() - t
        t = time.perf_counter()
        generate_world(tmp, jobs=jobs, progress=False, **sizes)
        cached = time.perf_counter() - t
    print(f"world: {total} clips ({sizes}) with {jobs} jobs in {seconds:.1f} s = {total / seconds:.1f} clips/s "
          f"(x{total / seconds / serial:.2f} vs baseline); target < 120 s: {'met' if seconds < 120 else 'MISSED'}")
    print(f"cached re-run: {cached:.3f} s")


def transfer(pool: int, epochs: int, seeds: int) -> None:
    """Pre-train a tiny CNN per root-category subset (equal clip counts), then probe every task linearly."""
    import torch
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.model_selection import GroupKFold, cross_val_score
    from torch import nn

    from audiotransfer.data.features import RECIPES, LogMel
    from audiotransfer.data.synthetic import CLASSES, world

    logmel = LogMel(RECIPES["demo"])

    def mel(clips: list[np.ndarray]) -> torch.Tensor:
        with torch.no_grad():
            return logmel(torch.from_numpy(np.stack(clips).astype(np.float32)))

    roots = {c.id: c.root for c in CLASSES}
    groups = {"Human sounds": {"Human sounds"}, "Animal": {"Animal"},
              "Things + Natural": {"Sounds of things", "Natural sounds"}, "Music": {"Music"}}  # fmt: skip
    labels = [world.pretrain_labels(0, "train", i) for i in range(pool)]
    subsets = {}
    for name, members in groups.items():
        rows = [i for i, lab in enumerate(labels) if any(roots[x] in members for x in lab)]
        subsets[name] = (rows, [c.id for c in CLASSES if c.root in members])
    size = min(len(rows) for rows, _ in subsets.values())
    needed = sorted({i for rows, _ in subsets.values() for i in rows[:size]})
    features = dict(zip(needed, mel([world.render_pretrain(0, "train", i).audio for i in needed]), strict=True))
    tasks = {}
    for task, count in (("commands", 1200), ("birds", 800), ("scenes", 900)):
        specs = [world.task_spec(task, 0, i, 60) for i in range(count)]
        x = mel([world.render_task(task, 0, i, s) for i, s in enumerate(specs)])
        groups = [s["speaker"] or str(i) for i, s in enumerate(specs)]
        tasks[task] = (x, np.array([s["label"] for s in specs]), np.array(groups))
    print(f"transfer: tiny CNN (8-16-32 channels) pre-trained {epochs} epochs on {size} clips per subset; "
          "5-fold cross-validated accuracy of a linear probe (LDA) on its pooled features (folds disjoint in speakers)")

    class Tiny(nn.Module):
        def __init__(self, n: int) -> None:
            super().__init__()

            def block(a: int, b: int) -> nn.Sequential:
                return nn.Sequential(nn.Conv2d(a, b, 3, padding=1), nn.BatchNorm2d(b), nn.ReLU())

            self.body = nn.Sequential(nn.BatchNorm2d(1), block(1, 8), nn.MaxPool2d(2), block(8, 16), nn.MaxPool2d(2),
                                      block(16, 32))  # fmt: skip
            self.head = nn.Linear(32, n)

        def embed(self, x: torch.Tensor) -> torch.Tensor:
            h = self.body(x[:, None])
            return torch.cat([h.mean((2, 3)), h.amax((2, 3))], dim=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.body(x[:, None]).mean((2, 3)))

    def pretrained(name: str, seed: int) -> nn.Module:
        torch.manual_seed(seed)
        if name == "random init":
            return Tiny(1).eval()
        rows, ids = subsets[name]
        rows = rows[:size]
        net = Tiny(len(ids))
        x = torch.stack([features[i] for i in rows])
        y = torch.tensor([[c in labels[i] for c in ids] for i in rows], dtype=torch.float32)
        opt = torch.optim.Adam(net.parameters(), 1e-3)
        g = torch.Generator().manual_seed(seed)
        for _ in range(epochs):
            for batch in torch.randperm(len(x), generator=g).split(32):
                opt.zero_grad()
                nn.functional.binary_cross_entropy_with_logits(net(x[batch]), y[batch]).backward()
                opt.step()
        return net.eval()

    print(f"  {'pre-trained on':18s}" + "".join(f"{t:>14s}" for t in tasks) + f"   (mean ± sd over {seeds} seeds)")
    for name in ("random init", *subsets):
        t = time.perf_counter()
        scores = np.zeros((seeds, len(tasks)))
        for seed in range(seeds):
            net = pretrained(name, seed)
            for j, (x, y, groups) in enumerate(tasks.values()):
                with torch.no_grad():
                    emb = net.embed(x).numpy()
                probe = LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto")
                scores[seed, j] = cross_val_score(probe, emb, y, groups=groups, cv=GroupKFold(5)).mean()
        cells = "".join(f"{m:8.3f} ±{sd:.3f}" for m, sd in zip(scores.mean(0), scores.std(0), strict=True))
        print(f"  {name:18s}{cells}   ({time.perf_counter() - t:.0f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=5000, help="pre-training clips (eval = clips / 5)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count(), help="worker processes")
    parser.add_argument("--transfer", action="store_true", help="also run the transfer check (minutes)")
    parser.add_argument("--no-speed", action="store_true", help="skip the generation benchmark")
    parser.add_argument("--pool", type=int, default=4000, help="pre-training clips the transfer subsets come from")
    parser.add_argument("--epochs", type=int, default=20, help="pre-training epochs of the transfer check")
    parser.add_argument("--seeds", type=int, default=3, help="pre-training seeds of the transfer check")
    args = parser.parse_args()
    if not args.no_speed:
        speed(args.clips, args.jobs)
    if args.transfer:
        transfer(args.pool, args.epochs, args.seeds)


if __name__ == "__main__":
    main()
