"""Helpers shared by the command groups: the handler type and the AudioSet metadata flags."""

from __future__ import annotations

import argparse
import math
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


def non_negative(text: str) -> int:
    """argparse type of a seed: a whole number >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative; use a seed >= 0")
    return value


def positive_number(text: str) -> float:
    """argparse type of a rate (e.g. --clips-per-second): a finite number > 0 (nan would plan 0 hours)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number above 0")
    return value


def worker_count(text: str) -> int:
    """argparse type of --jobs for local worker processes: >= 1, capped at the usable cores (warning)."""
    from audiotransfer.files import cap_jobs

    return cap_jobs(at_least_one(text))
