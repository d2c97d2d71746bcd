"""`audiotransfer synth preview|generate`."""

from __future__ import annotations

import argparse

from audiotransfer.cli._common import Subparsers, non_negative, worker_count


def generate(args: argparse.Namespace) -> None:
    from audiotransfer.data.synthetic import generate_world

    out = generate_world(args.out, seed=args.seed, num_pretrain=args.clips, num_eval=args.eval_clips,
                         num_scenes=args.scenes, num_birds=args.birds, num_commands=args.commands,
                         num_speakers=args.speakers, jobs=args.jobs, progress=not args.quiet)  # fmt: skip
    print(f"{out}: synthetic world ready (corpora: synthetic, synthetic_scenes, synthetic_birds, "
          f"synthetic_commands; --root {out})")  # fmt: skip


def preview(args: argparse.Namespace) -> None:
    from audiotransfer.data.synthetic.preview import preview as write_preview

    pngs = write_preview(args.out, seed=args.seed, examples=args.examples, progress=not args.quiet)
    print(f"{args.out}: {len(pngs)} log-mel images (classes/, tasks/) with one WAV example each")


def add_synth(sub: Subparsers) -> None:
    """`audiotransfer synth generate|preview` (an argument table)."""
    group = sub.add_parser("synth", help="the synthetic sound world (AudioSet classes, three tasks)").add_subparsers(
        dest="synth_command", metavar="COMMAND", required=True
    )
    p = group.add_parser("generate", help="write the world: AudioSet-format lists + WAVs, tasks (cached, resumable)")
    p.add_argument("--out", required=True, metavar="DIR", help="world folder (the --root of its corpora)")
    p.add_argument("--seed", type=non_negative, default=0, help="same seed -> bit-identical audio (default 0)")
    p.add_argument("--clips", type=int, default=5000, help="pre-training clips (default 5000)")
    p.add_argument("--eval-clips", type=int, default=1000, help="pre-training evaluation clips (default 1000)")
    p.add_argument("--scenes", type=int, default=480, help="scene clips (default 480)")
    p.add_argument("--birds", type=int, default=480, help="bird-activity clips (default 480)")
    p.add_argument("--commands", type=int, default=720, help="command clips (default 720)")
    p.add_argument("--speakers", type=int, default=60, help="command speakers, split 70/15/15 (default 60)")
    p.add_argument("--jobs", type=worker_count, default=None, help="worker processes (default: all cores)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=generate)
    p = group.add_parser("preview", help="log-mel PNGs and WAV examples of every class and task class")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for classes/ and tasks/")
    p.add_argument("--seed", type=non_negative, default=0, help="seed of the examples (default 0)")
    p.add_argument("--examples", type=int, default=3, help="examples per image (default 3)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=preview)
