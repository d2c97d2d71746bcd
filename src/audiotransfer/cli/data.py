"""`audiotransfer data describe` and `audiotransfer features extract`."""

from __future__ import annotations

import argparse
from typing import Any

from audiotransfer.cli._common import Subparsers, at_least_one, worker_count
from audiotransfer.errors import UserError, cut


def corpus_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("corpus", metavar="CORPUS", help="corpus name, e.g. esc50, folder, csv, speech_commands")
    p.add_argument("--root", required=True, help="folder holding the corpus in its official layout")
    p.add_argument(
        "-o",
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="corpus option (YAML value), e.g. -o variant=12, -o 'train=[ff1010bird]'",
    )


def options(args: argparse.Namespace) -> dict[str, Any]:
    import yaml

    from audiotransfer.files import load_yaml

    parsed = {}
    for item in args.option:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"option {cut(item)} is not KEY=VALUE", fix="write e.g. -o seed=1")
        try:
            parsed[key.strip()] = load_yaml(value)
        except yaml.YAMLError as exc:
            raise UserError(
                f"option {cut(item)}: not a YAML value ({exc})", fix="quote it, e.g. -o 'group=_(x)_'"
            ) from None
    return parsed


def describe(args: argparse.Namespace) -> int:
    import json

    from audiotransfer.data.corpora import describe_corpus

    info = describe_corpus(args.corpus, args.root, **options(args))
    if args.json:
        print(json.dumps(info, indent=1))
        return 0
    labels = info.pop("labels")
    for key, value in info.items():
        print(f"{key:>18}: {value}")
    print(f"{'labels':>18}: {', '.join(labels[:12])}" + (f", ... ({len(labels)})" if len(labels) > 12 else ""))
    return 0


def extract(args: argparse.Namespace) -> int:
    from audiotransfer.data.corpora import load_corpus
    from audiotransfer.data.features import named_frontend
    from audiotransfer.data.store import extract_features

    manifest = load_corpus(args.corpus, args.root, **options(args))
    if args.backend == "ray":
        store = _extract_on_ray(manifest, args)
    else:
        store = extract_features(
            manifest, args.store, named_frontend(args.recipe), jobs=args.jobs, on_error=args.on_error, progress=True
        )
    if store.num_clips == 0:
        raise UserError(
            f"{store.root}: none of the {manifest.num_clips} clips could be read; the store is empty "
            f"(see {store.root / 'errors.csv'})",
            fix="check the corpus root and the files' formats",
        )
    print(f"{store.root}: {store.num_clips} clips, recipe {args.recipe} ({store.recipe.hash})")
    return 0


def _extract_on_ray(manifest: Any, args: argparse.Namespace) -> Any:
    from audiotransfer.data.extract_ray import extract_distributed
    from audiotransfer.data.features import get_recipe

    return extract_distributed(
        manifest,
        args.store,
        get_recipe(args.recipe),
        clips_per_task=args.clips_per_task,
        on_error=args.on_error,
        address=args.ray_address,
    )


def _add_ray_extract_args(p: argparse.ArgumentParser) -> None:
    """`features extract --backend ray`: clips split over Ray tasks writing their own shards, one merge."""
    p.add_argument(
        "--backend",
        choices=("local", "ray"),
        default="local",
        help="local worker processes (--jobs), or tasks on a Ray cluster",
    )
    p.add_argument("--ray-address", help="Ray cluster address (default: RAY_ADDRESS or a local Ray)")
    p.add_argument("--clips-per-task", type=at_least_one, default=2000, help="clips per Ray task (default 2000)")


def add_data(sub: Subparsers) -> None:
    """`audiotransfer data describe` and `audiotransfer features extract`."""
    data = sub.add_parser("data", help="describe corpora").add_subparsers(dest="data_command", metavar="COMMAND")
    p = data.add_parser("describe", help="clips, classes, split sizes, durations and sample rates of a corpus")
    corpus_args(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=describe)

    features = sub.add_parser("features", help="extract log-mel features into a packed store")
    p = features.add_subparsers(dest="features_command", metavar="COMMAND").add_parser(
        "extract", help="decode, resample and log-mel every clip of a corpus into a store (resumable)"
    )
    corpus_args(p)
    p.add_argument("--store", required=True, help="store directory (created, or extended when it exists)")
    p.add_argument(
        "--recipe",
        default="panns16k",
        help="feature recipe: panns16k (default), panns32k, demo, or waveformN (raw samples at N Hz: public models)",
    )
    p.add_argument("--jobs", type=worker_count, default=1, help="worker processes (default 1)")
    p.add_argument(
        "--on-error",
        choices=["skip", "stop"],
        default="skip",
        help="an unreadable, empty or too short file is skipped (listed in errors.csv) or stops",
    )
    _add_ray_extract_args(p)
    p.set_defaults(handler=extract)
