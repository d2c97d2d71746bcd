"""`audiotransfer ontology tree|show|fetch` and `audiotransfer subsets build|show`."""

from __future__ import annotations

import argparse
import sys

from audiotransfer.cli._common import Subparsers, metadata_args


def tree(args: argparse.Namespace) -> None:
    from audiotransfer.ontology import load_ontology

    print(load_ontology(args.ontology, args.labels, args.metadata).tree_text(args.cls, args.depth))


def show(args: argparse.Namespace) -> None:
    from audiotransfer.ontology import load_ontology

    print(load_ontology(args.ontology, args.labels, args.metadata).describe(args.cls))


def fetch(args: argparse.Namespace) -> None:
    from audiotransfer.ontology.fetch import STANDARD_FILES, fetch_metadata

    files = [*STANDARD_FILES, "unbalanced_train_segments.csv"] if args.unbalanced else STANDARD_FILES
    for path in fetch_metadata(args.dir, files, base_url=args.base_url).values():
        print(path)


def add_ontology(sub: Subparsers) -> None:
    """`audiotransfer ontology tree|show|fetch`."""
    group = sub.add_parser("ontology", help="browse the AudioSet ontology").add_subparsers(
        dest="ontology_command", metavar="COMMAND", required=True
    )
    p = group.add_parser("tree", help="print the class tree (* = trainable label, [n] = labels below)")
    p.add_argument("cls", nargs="?", metavar="CLASS", help="start at this class (name or id); default: all roots")
    p.add_argument("--depth", type=int, help="levels to show below the start")
    metadata_args(p)
    p.set_defaults(handler=tree)
    p = group.add_parser("show", help="one class: id, flags, depth, parents, children, labels below")
    p.add_argument("cls", metavar="CLASS", help="class name (case-insensitive) or id")
    metadata_args(p)
    p.set_defaults(handler=show)
    p = group.add_parser("fetch", help="download the AudioSet metadata files (cached, md5-checked)")
    p.add_argument("dir", help="cache folder; use it as --metadata afterwards")
    p.add_argument("--base-url", help="a folder URL holding all files (mirror) instead of the canonical hosts")
    p.add_argument("--unbalanced", action="store_true", help="also the 2M-segment unbalanced list (about 100 MB)")
    p.set_defaults(handler=fetch)


def build_subsets(args: argparse.Namespace) -> None:
    from audiotransfer.ontology import (
        build_subsets,
        filter_available,
        load_ontology,
        read_segments,
        summary_table,
    )

    onto = load_ontology(args.ontology, args.labels, args.metadata)
    lists = {"train": read_segments(args.segments, onto.trainable)}
    if args.eval_segments:
        lists["test"] = read_segments(args.eval_segments, onto.trainable)
    if args.available:
        for split, segments in lists.items():
            lists[split], report = filter_available(segments, args.available)
            worst = report.missing_per_label.sort_values(ascending=False).iloc[:5]
            detail = ", ".join(f"{onto.name(lab)} {n}" for lab, n in worst.items() if n)
            print(
                f"{split}: {report.num_present} of {report.num_listed} listed clips available, "
                f"{report.num_missing} missing" + (f" (most missing: {detail})" if detail else ""),
                file=sys.stderr,
            )
    summaries = build_subsets(
        args.spec, lists["train"], onto, args.out, lists.get("test"), names=args.only, progress=not args.quiet
    )
    print(summary_table(summaries))
    print(f"{len(summaries)} manifest(s) in {args.out}")


def show_subset(args: argparse.Namespace) -> None:
    from audiotransfer.ontology import describe_manifest

    print(describe_manifest(args.manifest, top=args.top))


def add_subsets(sub: Subparsers) -> None:
    """`audiotransfer subsets build|show`."""
    group = sub.add_parser("subsets", help="build and inspect pre-training subsets").add_subparsers(
        dest="subsets_command", metavar="COMMAND", required=True
    )
    p = group.add_parser("build", help="build the subsets of a YAML spec file into manifests")
    p.add_argument("spec", metavar="SPEC.yaml")
    p.add_argument("--segments", action="append", required=True, metavar="CSV", help="training list (repeatable)")
    p.add_argument("--eval-segments", action="append", metavar="CSV", help="evaluation list -> split 'test'")
    metadata_args(p)
    p.add_argument("--out", required=True, metavar="DIR", help="folder for NAME.parquet + NAME.json")
    p.add_argument("--only", action="append", metavar="NAME", help="build only this subset (repeatable)")
    p.add_argument(
        "--available", metavar="PATH", help="keep only clips present locally: an audio folder or a file of YTIDs"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=build_subsets)
    p = group.add_parser("show", help="summary and largest classes of a saved manifest")
    p.add_argument("manifest", metavar="DIR/NAME")
    p.add_argument("--top", type=int, default=10, help="number of largest classes to list")
    p.set_defaults(handler=show_subset)
