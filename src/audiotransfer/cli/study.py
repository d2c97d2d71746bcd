"""`audiotransfer study plan|run|status|results|export-mlflow|report`."""

from __future__ import annotations

import argparse
from typing import Any

from audiotransfer.cli._common import Subparsers, at_least_one, positive_number
from audiotransfer.errors import UserError


def show(frame: Any, fmt: str = "markdown") -> None:
    from audiotransfer.study.status import to_markdown

    print(frame.to_csv(index=False) if fmt == "csv" else to_markdown(frame))


def run_plan(args: argparse.Namespace) -> None:
    from audiotransfer.study import plan
    from audiotransfer.study.cost import cost_line, public_rows

    table = plan(args.study)
    table, source = _plan_hours(table, args.clips_per_second)
    table["disk_mb"] = table["disk_bytes"] / 1e6
    columns = ["run_id", "depends_on", "clips", "epochs", "clip_epochs", "disk_mb"] + (["hours"] if source else [])
    if "frontend" in table and table["frontend"].nunique() > 1:  # states of their own front-end
        columns.append("frontend")
    show(table[[*columns, "status"]].round({"hours": 2, "disk_mb": 3}), args.format)
    done = int((table["status"] == "done").sum())
    todo = table["status"] != "done"
    print(f"\n{len(table)} runs ({(table['kind'] == 'pretrain').sum()} pre-training), {done} done; {cost_line(table)}")
    if source:
        print(
            f"estimated {table['hours'].sum():,.1f} accelerator-hours in all "
            f"({table.loc[todo, 'hours'].sum():,.1f} still to run; pre-training "
            f"{table.loc[table['kind'] == 'pretrain', 'hours'].sum():,.1f}) at {source}"
            + ("; public models' runs not estimated" if public_rows(table).any() else "")
        )
    else:
        print("add --clips-per-second N (or run benchmarks/bench_gpu.py once) for the hours")
    for store, frontend, clips in table.attrs.get("stores", []):
        print(f"task store {store}: {clips:,} clips, front-end {frontend}")
    stores, runs = table.attrs.get("store_bytes", 0), int(table["disk_bytes"].sum())
    print(
        f"disk: about {(stores + runs) / 1e6:,.0f} MB when done (feature stores {stores / 1e6:,.0f} MB, "
        f"run folders {runs / 1e6:,.0f} MB; corpus audio"
        + (" and public models' run folders" if public_rows(table).any() else "")
        + " not counted)"
    )


def _plan_hours(table: Any, clips_per_second: float | None) -> tuple[Any, str]:
    """The plan table with estimated hours per run, and where the throughput figure came from."""
    from audiotransfer.study.cost import add_hours

    return add_hours(table, clips_per_second)


def run_study(args: argparse.Namespace) -> int:
    from audiotransfer.study import run
    from audiotransfer.study.runner import error_summary

    outcome = run(
        args.study,
        jobs=args.jobs,
        backend=args.backend,
        retries=args.retries,
        mlflow=args.mlflow,
        progress=not args.no_progress,
        ray_address=args.ray_address,
        force=args.force,
    )
    print(
        f"{outcome.study_dir}: {len(outcome.done)} runs done now, {len(outcome.skipped)} done before, "
        f"{len(outcome.failed)} failed, {len(outcome.blocked)} blocked"
    )
    for run_id, error in outcome.failed.items():
        print(f"  failed {run_id}: {error_summary(error)}")
    return 0 if outcome.ok else 1


def run_status(args: argparse.Namespace) -> None:
    from audiotransfer.study import status_table

    counts, bad = status_table(args.study)
    show(counts.reset_index() if len(counts) else counts)
    if len(bad):
        print()
        show(bad)


def run_results(args: argparse.Namespace) -> None:
    from audiotransfer.study import results_table
    from audiotransfer.study.status import to_markdown

    if args.format == "parquet" and not args.out:
        raise UserError("--format parquet writes a file", fix="add --out FILE.parquet")
    if args.out:
        _check_results_out(args)
    table = results_table(args.study, kind=None if args.kind == "all" else args.kind)
    if args.format == "parquet":
        table.to_parquet(args.out, index=False)
        print(f"wrote {len(table)} runs to {args.out}")
        return
    text = table.to_csv(index=False) if args.format == "csv" else to_markdown(table) + "\n"
    if args.out:
        with open(args.out, "w") as handle:
            handle.write(text)
        print(f"wrote {len(table)} runs to {args.out}")
    else:
        print(text, end="")


def _check_results_out(args: argparse.Namespace) -> None:
    """`--out` never overwrites the study's YAML or database (or any input), nor a file that is not an
    earlier results export, unless --force."""
    from pathlib import Path

    from audiotransfer.files import check_output_file
    from audiotransfer.study.layout import StudyDir

    folder = StudyDir.of(args.study)
    inputs = [Path(args.study), folder.results, folder.spec, folder.root]
    check_output_file(Path(args.out), inputs, "results table", force=args.force, ours=_is_results_export)


def _is_results_export(path: Any) -> bool:
    """An earlier `study results` file: its header starts with the run id column (CSV, Markdown, Parquet)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(64)
        if head.startswith(b"PAR1"):
            import pyarrow.parquet as pq

            return "run_id" in pq.read_schema(path).names
        return head.lstrip(b"| ").startswith(b"run_id")
    except (OSError, ValueError):
        return False


def run_export(args: argparse.Namespace) -> None:
    from audiotransfer.study import export_runs
    from audiotransfer.study.layout import StudyDir

    folder = StudyDir.of(args.study)
    folder.require_results()
    print(f"logged {export_runs(folder.root, args.uri)} new runs to {args.uri}")


def run_report(args: argparse.Namespace) -> None:
    from audiotransfer.analysis import write_report
    from audiotransfer.analysis.report import DEFAULT_SIMILARITY
    from audiotransfer.study.layout import StudyDir

    folder = StudyDir.of(args.study)
    if folder.root.is_dir():
        folder.require_results()  # never write a report into a folder that is not a study
    out = write_report(
        folder.root,
        metric=args.metric,
        similarity=args.similarity or DEFAULT_SIMILARITY,
        max_inputs=args.max_inputs,
        progress=not args.no_progress,
    )
    print(f"report (html): {out['html']}\nreport (markdown): {out['markdown']}")
    print("\nsamples vs classes vs similarity:")
    for line in out["headline"]:
        print(f"  {line}")


def add_study(sub: Subparsers) -> None:
    """`audiotransfer study ...` (an argument table)."""
    study = sub.add_parser("study", help="plan, run and inspect a pre-train x fine-tune study (YAML)")
    study_sub = study.add_subparsers(dest="study_command", metavar="SUBCOMMAND")
    study.set_defaults(handler=lambda _args: study.print_help() or 1)

    p = study_sub.add_parser("plan", help="list the runs of a study, which are done, and their cost")
    p.add_argument("study", help="study YAML")
    p.add_argument("--format", choices=("markdown", "csv"), default="markdown")
    p.add_argument(
        "--clips-per-second",
        type=positive_number,
        metavar="N",
        help="training throughput for 10 s crops on one accelerator (default: bench_gpu.py's saved figure)",
    )
    p.set_defaults(handler=run_plan)

    p = study_sub.add_parser("run", help="run or resume a study (skips finished runs)")
    p.add_argument("study", help="study YAML")
    p.add_argument("--jobs", type=at_least_one, default=1, help="runs in parallel (local: worker processes)")
    p.add_argument("--backend", choices=("local", "ray"), default="local")
    p.add_argument("--retries", type=int, default=0, help="extra attempts for a failed run")
    p.add_argument("--mlflow", metavar="URI", help="also log every run to this MLflow tracking URI")
    p.add_argument("--ray-address", help="Ray cluster address (default: RAY_ADDRESS or a local Ray)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.add_argument(
        "--force",
        action="store_true",
        help="write into an existing `out` folder that is not a study (its files may be overwritten)",
    )
    p.set_defaults(handler=run_study)

    p = study_sub.add_parser("status", help="runs by kind and status; failed and blocked runs with their error")
    p.add_argument("study", help="study directory or study YAML")
    p.set_defaults(handler=run_status)

    p = study_sub.add_parser("results", help="final metrics of finished runs, one row per run")
    p.add_argument("study", help="study directory or study YAML")
    p.add_argument("--format", choices=("markdown", "csv", "parquet"), default="markdown")
    p.add_argument("--kind", choices=("finetune", "pretrain", "all"), default="finetune")
    p.add_argument("--out", help="write to this file instead of the terminal")
    p.add_argument("--force", action="store_true", help="overwrite --out even if it is not an earlier export")
    p.set_defaults(handler=run_results)

    p = study_sub.add_parser("export-mlflow", help="log a study's finished runs to an MLflow tracking URI")
    p.add_argument("study", help="study directory or study YAML")
    p.add_argument("--uri", required=True, help="MLflow tracking URI, e.g. file:///tmp/mlruns")
    p.set_defaults(handler=run_export)

    p = study_sub.add_parser("report", help="what transferred and why: scores, similarity, factors (HTML + Markdown)")
    p.add_argument("study", help="study directory or study YAML")
    p.add_argument("--metric", default="uar", help="test metric to analyse (default: uar)")
    p.add_argument(
        "--similarity",
        choices=("frechet", "mmd", "label_share"),
        help="data-similarity measure used as the regression's similarity factor (default: frechet)",
    )
    p.add_argument("--max-inputs", type=int, default=256, help="clips per data set for CKA and data similarity")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(handler=run_report)
