"""The `audiotransfer` command line: argument parsing and printing only.

Every command calls a public function of a sub-package; the logic lives there. Each command group is a
module of this package with top-level handler functions and one `add_<group>(sub)` that registers them.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence

from audiotransfer.cli._common import Handler
from audiotransfer.cli.advise import add_advise
from audiotransfer.cli.data import add_data
from audiotransfer.cli.demo import add_demo
from audiotransfer.cli.inference import add_inference
from audiotransfer.cli.ontology import add_ontology, add_subsets
from audiotransfer.cli.study import add_study
from audiotransfer.cli.synth import add_synth
from audiotransfer.cli.training import add_training
from audiotransfer.errors import UserError
from audiotransfer.progress import log_to

GROUPS = (add_ontology, add_subsets, add_data, add_synth, add_training, add_study, add_demo, add_advise, add_inference)


def build_parser() -> argparse.ArgumentParser:
    from audiotransfer import __version__

    parser = argparse.ArgumentParser(
        prog="audiotransfer",
        description="Audio transfer-learning studies: subsets, features, pre-training, fine-tuning, analysis.",
    )
    parser.add_argument("--version", action="version", version=f"audiotransfer {__version__}")
    parser.add_argument(
        "--no-progress",
        dest="global_no_progress",
        action="store_true",
        help="no progress bars or progress lines (warnings and results are still shown)",
    )
    parser.add_argument(
        "--log-file",
        metavar="FILE",
        help="also write every message (with time and level) to FILE; progress goes there as "
        "plain lines when stderr is not a terminal",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in GROUPS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 1
    if hasattr(signal, "SIGXFSZ"):  # a file-size limit (ulimit -f) fails the write (EFBIG), not the process
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        quiet = args.global_no_progress or getattr(args, "no_progress", False) or getattr(args, "quiet", False)
        with log_to(args.log_file, show_progress=not quiet):
            return int(handler(args) or 0)
    except UserError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.fix:
            print(f"  fix: {exc.fix}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished work is kept; run the same command again to resume", file=sys.stderr)
        return 130


__all__ = ["build_parser", "main"]
