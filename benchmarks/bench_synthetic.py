"""Benchmark of the synthetic world: generation speed.

Speed: renders a sample of clips serially in this process (the baseline), then generates the default
world (5,000 pre-training + 1,000 eval clips + the three tasks) into a temporary folder with all cores, and
prints clips/s of both, the speed-up and the total against the 2-minute target; then times the cached re-run.

Whether a study recovers the world's ground truth is not a speed question: `audiotransfer demo` checks it
(`audiotransfer.demo.ground_truth`).

    .venv/bin/python benchmarks/bench_synthetic.py [--clips 5000] [--jobs 2]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time


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
    print(
        f"world: {total} clips ({sizes}) with {jobs} jobs in {seconds:.1f} s = {total / seconds:.1f} clips/s "
        f"(x{total / seconds / serial:.2f} vs baseline); target < 120 s: {'met' if seconds < 120 else 'MISSED'}"
    )
    print(f"cached re-run: {cached:.3f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=5000, help="pre-training clips (eval = clips / 5)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count(), help="worker processes")
    args = parser.parse_args()
    speed(args.clips, args.jobs)


if __name__ == "__main__":
    main()
