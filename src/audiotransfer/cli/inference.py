"""`audiotransfer predict` and `audiotransfer embed`: a trained (or imported) model on sound files."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from audiotransfer.cli._common import Subparsers
from audiotransfer.errors import UserError

if TYPE_CHECKING:
    import numpy as np

    from audiotransfer.models.inference import Loaded


def _model(args: argparse.Namespace) -> Loaded:
    from audiotransfer.models.load import load_model

    return load_model(args.model, format=args.model_format, recipe=args.recipe)


def _batches(model: Loaded, args: argparse.Namespace, what: str) -> Iterator[tuple[list[Path], list[np.ndarray]]]:
    from audiotransfer.models.inference import audio_files, decoded
    from audiotransfer.progress import progress

    files = audio_files(args.inputs)
    with progress(total=len(files), unit="file", desc=what, enabled=not args.no_progress) as bar:
        for names, waves in decoded(files, model.sample_rate, skip_errors=not args.stop_on_error):
            yield names, waves
            bar.update(len(names))


def _print_top(names: list[Path], probs: np.ndarray, labels: list[str], top: int, fmt: str) -> None:
    order = (-probs).argsort(axis=1)[:, :top]
    for name, row, picks in zip(names, probs, order, strict=True):
        if fmt == "json":
            print(
                json.dumps(
                    {
                        "file": str(name),
                        "top": [{"label": labels[k], "probability": round(float(row[k]), 6)} for k in picks],
                    }
                )
            )
        elif fmt == "csv":
            for rank, k in enumerate(picks, start=1):
                print(f"{json.dumps(str(name))},{rank},{json.dumps(labels[k])},{row[k]:.6f}")
        else:
            print(f"{name}\t" + "\t".join(f"{labels[k]} {row[k]:.3f}" for k in picks))


def run_predict(args: argparse.Namespace) -> None:
    model = _model(args)
    if args.format == "csv":
        print("file,rank,label,probability")
    for names, waves in _batches(model, args, "predict"):
        _print_top(names, model.predict(waves), model.labels, args.top, args.format)


def run_embed(args: argparse.Namespace) -> None:
    import numpy as np
    import pandas as pd

    out = Path(args.out)
    if out.suffix not in (".parquet", ".npy"):
        raise UserError(f"--out {out}: unknown suffix {out.suffix!r}", fix="end the name in .parquet or .npy")
    model = _model(args)
    names: list[str] = []
    rows = []
    for chunk, waves in _batches(model, args, "embed"):
        rows.append(model.embed(waves, layer=args.layer))
        names += map(str, chunk)
    embeddings = np.concatenate(rows)
    if out.suffix == ".npy":
        np.save(out, embeddings)
        out.with_suffix(".files.txt").write_text("\n".join(names) + "\n")
        where = f"{out} (file names in {out.with_suffix('.files.txt')})"
    else:
        table = pd.DataFrame(embeddings, columns=[f"e{i}" for i in range(embeddings.shape[1])])
        table.insert(0, "file", names)
        table.to_parquet(out, index=False)
        where = str(out)
    print(f"{len(names)} embeddings of {embeddings.shape[1]} dimensions -> {where}")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="a run folder, a model.pt, or a checkpoint (PANNs .pth, autrainer state dict)")
    p.add_argument("inputs", nargs="+", metavar="FILE_OR_FOLDER", help="audio files, or folders searched for them")
    p.add_argument(
        "--model-format",
        default="auto",
        help="auto (default), audiotransfer, panns, autrainer; a public family: hf, torchcrepe, efficientat, beats, "
        "or hear:MODULE (any HEAR-API module; MODEL its weights file)",
    )
    p.add_argument("--recipe", help="front-end of a checkpoint that declares none: panns16k, panns32k, demo")
    p.add_argument("--stop-on-error", action="store_true", help="stop at an unreadable file (default: skip it)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def add_inference(sub: Subparsers) -> None:
    """`audiotransfer predict` and `audiotransfer embed`."""
    p = sub.add_parser("predict", help="label probabilities of sound files under a model")
    _common(p)
    p.add_argument("--top", type=int, default=5, help="labels shown per file (default 5)")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output (default table)")
    p.set_defaults(handler=run_predict)
    p = sub.add_parser("embed", help="clip embeddings of sound files, to .parquet or .npy")
    _common(p)
    p.add_argument("--out", required=True, help="FILE.parquet (a 'file' column) or FILE.npy (+ FILE.files.txt)")
    p.add_argument("--layer", help="a stage (conv_block1..N, embedding) instead of the head's input")
    p.set_defaults(handler=run_embed)
