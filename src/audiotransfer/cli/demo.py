"""`audiotransfer demo`: the main job, a complete small study on the synthetic world."""

from __future__ import annotations

import argparse
import os

from audiotransfer.cli._common import Subparsers, at_least_one, non_negative


def run_demo_cmd(args: argparse.Namespace) -> int:
    import time

    from audiotransfer.demo import run_demo

    start = time.perf_counter()
    result = run_demo(
        args.out,
        quick=args.quick,
        jobs=args.jobs,
        progress=not args.no_progress,
        spec=args.spec,
        world_seed=args.world_seed,
        keep_audio=args.keep_audio,
    )
    minutes = (time.perf_counter() - start) / 60
    phases = ", ".join(f"{k} {v:.0f} s" for k, v in result.seconds.items())
    o = result.outcome
    print(
        f"\ndemo {'(quick) ' if args.quick else ''}finished in {minutes:.1f} min ({phases}): "
        f"{len(o.done) + len(o.skipped)} runs done, {len(o.failed)} failed, {len(o.blocked)} blocked"
    )
    print(f"study: {result.study_dir}")
    for key in ("html", "markdown"):
        if key in result.report:
            print(f"report ({key}): {result.report[key]}")
    if result.headline:
        print("\nsamples vs classes vs similarity:")
        for line in result.headline:
            print(f"  {line}")
    if result.advisor:
        print("\nbefore fine-tuning (audiotransfer advise):")
        for line in result.advisor:
            print(f"  {line}")
    if result.ground_truth:
        agree = sum(c.agrees for c in result.ground_truth)
        small = " (--quick is a smoke test: too small a world and too few epochs to expect agreement)"
        print(
            f"\nagainst the world's ground truth ({agree} of {len(result.ground_truth)} checks agree)"
            f"{small if args.quick else ''}:"
        )
        for check in result.ground_truth:
            print(f"  {check.line()}")
    return 0 if o.ok else 1


def add_demo(sub: Subparsers) -> None:
    """`audiotransfer demo`."""
    cores = os.cpu_count() or 1
    p = sub.add_parser("demo", help="the main job: a complete small study on the synthetic world")
    p.add_argument("--out", help="study folder (default ./audiotransfer-demo or ./audiotransfer-demo-quick)")
    p.add_argument("--quick", action="store_true", help="the three-minute variant (smaller world, fewer epochs)")
    p.add_argument("--jobs", type=at_least_one, default=max(1, min(2, cores)), help="runs in parallel")
    p.add_argument("--spec", help="demo spec (default examples/studies/demo.yaml)")
    p.add_argument(
        "--world-seed",
        type=non_negative,
        help="generate another world (same design); default folder ./audiotransfer-demo-worldN",
    )
    p.add_argument(
        "--keep-audio",
        action="store_true",
        help="keep the world's audio files (by default they "
        "are removed once their features are extracted: `synth generate` renders them again)",
    )
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(handler=run_demo_cmd)
