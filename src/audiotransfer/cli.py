"""The `audiotransfer` command line: argument parsing and printing only.

Every command calls a public function of a sub-package; the logic lives there. Each command group is
registered by one `_add_<group>` function below.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from audiotransfer.errors import UserError

Handler = Callable[[argparse.Namespace], int | None]


def _add_ontology(sub: argparse._SubParsersAction) -> None:
    """`audiotransfer ontology tree|show` (issue: ontology)."""


def _add_subsets(sub: argparse._SubParsersAction) -> None:
    """`audiotransfer subsets build|show` (issue: ontology)."""


def _add_data(sub: argparse._SubParsersAction) -> None:
    """`audiotransfer data describe` and `audiotransfer features extract` (issue: data)."""


def _add_synth(sub: argparse._SubParsersAction) -> None:
    """`audiotransfer synth preview|generate` (issue: synthetic)."""


def _add_training(sub: argparse._SubParsersAction) -> None:
    """`audiotransfer pretrain` and `audiotransfer finetune` (issue: training)."""


def _add_study(sub: argparse._SubParsersAction) -> None:
    """`audiotransfer study plan|run|status|results|report` and `audiotransfer demo` (issues: study, analysis)."""


def build_parser() -> argparse.ArgumentParser:
    from audiotransfer import __version__

    parser = argparse.ArgumentParser(
        prog="audiotransfer",
        description="Audio transfer-learning studies: subsets, features, pre-training, fine-tuning, analysis.",
    )
    parser.add_argument("--version", action="version", version=f"audiotransfer {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in (_add_ontology, _add_subsets, _add_data, _add_synth, _add_training, _add_study):
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 1
    try:
        return int(handler(args) or 0)
    except UserError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.fix:
            print(f"  fix: {exc.fix}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished work is kept; run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
