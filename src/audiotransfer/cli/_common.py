"""Helpers shared by the command groups: the handler type and the AudioSet metadata flags."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

Handler = Callable[[argparse.Namespace], int | None]
Subparsers = argparse._SubParsersAction  # what `add_subparsers` returns


def metadata_args(p: argparse.ArgumentParser) -> None:
    """--ontology / --labels / --metadata: where the AudioSet metadata files are."""
    p.add_argument("--ontology", help="ontology.json (default: in --metadata)")
    p.add_argument("--labels", help="class_labels_indices.csv (default: in --metadata)")
    p.add_argument(
        "--metadata",
        default=os.environ.get("AUDIOTRANSFER_METADATA"),
        help="folder with the AudioSet metadata files (default: $AUDIOTRANSFER_METADATA)",
    )


def at_least_one(text: str) -> int:
    """argparse type of --jobs: an integer >= 1 (0 would run nothing and still exit 0)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is below 1: nothing would run")
    return value
