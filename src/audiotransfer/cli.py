"""The `audiotransfer` command line: argument parsing and printing only.

Every command calls a public function of a sub-package; the logic lives there. Each command group is
registered by one `_add_<group>` function below.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from audiotransfer.errors import UserError

Handler = Callable[[argparse.Namespace], int | None]



def _metadata_args(p: argparse.ArgumentParser) -> None:
    """--ontology / --labels / --metadata: where the AudioSet metadata files are."""
    p.add_argument("--ontology", help="ontology.json (default: in --metadata)")
    p.add_argument("--labels", help="class_labels_indices.csv (default: in --metadata)")
    p.add_argument(
        "--metadata",
        default=os.environ.get("AUDIOTRANSFER_METADATA"),
        help="folder with the AudioSet metadata files (default: $AUDIOTRANSFER_METADATA)",
    )


def _add_ontology(sub: argparse._SubParsersAction) -> None:
    """`audiotransfer ontology tree|show|fetch` (issue: ontology)."""
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

    group = sub.add_parser("ontology", help="browse the AudioSet ontology").add_subparsers(
        dest="ontology_command", metavar="COMMAND", required=True
    )
    p = group.add_parser("tree", help="print the class tree (* = trainable label, [n] = labels below)")
    p.add_argument("cls", nargs="?", metavar="CLASS", help="start at this class (name or id); default: all roots")
    p.add_argument("--depth", type=int, help="levels to show below the start")
    _metadata_args(p)
    p.set_defaults(handler=tree)
    p = group.add_parser("show", help="one class: id, flags, depth, parents, children, labels below")
    p.add_argument("cls", metavar="CLASS", help="class name (case-insensitive) or id")
    _metadata_args(p)
    p.set_defaults(handler=show)
    p = group.add_parser("fetch", help="download the AudioSet metadata files (cached, md5-checked)")
    p.add_argument("dir", help="cache folder; use it as --metadata afterwards")
    p.add_argument("--base-url", help="a folder URL holding all files (mirror) instead of the canonical hosts")
    p.add_argument("--unbalanced", action="store_true", help="also the 2M-segment unbalanced list (about 100 MB)")
    p.set_defaults(handler=fetch)


def _add_subsets(sub: argparse._SubParsersAction) -> None:
    """`audiotransfer subsets build|show` (issue: ontology)."""

    def build(args: argparse.Namespace) -> None:
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

    def show(args: argparse.Namespace) -> None:
        from audiotransfer.ontology import describe_manifest

        print(describe_manifest(args.manifest, top=args.top))

    group = sub.add_parser("subsets", help="build and inspect pre-training subsets").add_subparsers(
        dest="subsets_command", metavar="COMMAND", required=True
    )
    p = group.add_parser("build", help="build the subsets of a YAML spec file into manifests")
    p.add_argument("spec", metavar="SPEC.yaml")
    p.add_argument("--segments", action="append", required=True, metavar="CSV", help="training list (repeatable)")
    p.add_argument("--eval-segments", action="append", metavar="CSV", help="evaluation list -> split 'test'")
    _metadata_args(p)
    p.add_argument("--out", required=True, metavar="DIR", help="folder for NAME.parquet + NAME.json")
    p.add_argument("--only", action="append", metavar="NAME", help="build only this subset (repeatable)")
    p.add_argument(
        "--available", metavar="PATH", help="keep only clips present locally: an audio folder or a file of YTIDs"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=build)
    p = group.add_parser("show", help="summary and largest classes of a saved manifest")
    p.add_argument("manifest", metavar="DIR/NAME")
    p.add_argument("--top", type=int, default=10, help="number of largest classes to list")
    p.set_defaults(handler=show)


def _add_data(sub: argparse._SubParsersAction) -> None:
    """`audiotransfer data describe` and `audiotransfer features extract` (issue: data)."""

    def corpus_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("corpus", metavar="CORPUS", help="corpus name, e.g. esc50, folder, csv, speech_commands")
        p.add_argument("--root", required=True, help="folder holding the corpus in its official layout")
        p.add_argument("-o", "--option", action="append", default=[], metavar="KEY=VALUE",
                       help="corpus option (YAML value), e.g. -o variant=12, -o 'train=[ff1010bird]'")

    def options(args: argparse.Namespace) -> dict:
        import yaml

        parsed = {}
        for item in args.option:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise UserError(f"option {item!r} is not KEY=VALUE", fix="write e.g. -o seed=1")
            parsed[key.strip()] = yaml.safe_load(value)
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
        from audiotransfer.data.features import get_recipe
        from audiotransfer.data.store import extract_features

        manifest = load_corpus(args.corpus, args.root, **options(args))
        store = extract_features(manifest, args.store, get_recipe(args.recipe), jobs=args.jobs,
                                 on_error=args.on_error, progress=True)
        print(f"{store.root}: {store.num_clips} clips, recipe {args.recipe} ({store.recipe.hash})")
        return 0

    data = sub.add_parser("data", help="describe corpora").add_subparsers(dest="data_command", metavar="COMMAND")
    p = data.add_parser("describe", help="clips, classes, split sizes, durations and sample rates of a corpus")
    corpus_args(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=describe)

    features = sub.add_parser("features", help="extract log-mel features into a packed store")
    p = features.add_subparsers(dest="features_command", metavar="COMMAND").add_parser(
        "extract", help="decode, resample and log-mel every clip of a corpus into a store (resumable)")
    corpus_args(p)
    p.add_argument("--store", required=True, help="store directory (created, or extended when it exists)")
    p.add_argument("--recipe", default="panns16k", help="feature recipe: panns16k (default), panns32k, demo")
    p.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--on-error", choices=["skip", "stop"], default="skip",
                   help="an unreadable, empty or too short file is skipped (listed in errors.csv) or stops")
    p.set_defaults(handler=extract)


def _add_synth(sub: argparse._SubParsersAction) -> None:
    """`audiotransfer synth preview|generate` (issue: synthetic)."""

    def generate(args: argparse.Namespace) -> None:
        from audiotransfer.data.synthetic import generate_world

        out = generate_world(args.out, seed=args.seed, num_pretrain=args.clips, num_eval=args.eval_clips,
                             num_scenes=args.scenes, num_birds=args.birds, num_commands=args.commands,
                             num_speakers=args.speakers, jobs=args.jobs, progress=not args.quiet)  # fmt: skip
        print(f"{out}: synthetic world ready (corpora: synthetic, synthetic_scenes, synthetic_birds, "
              f"synthetic_commands; --root {out})")  # fmt: skip

    def preview(args: argparse.Namespace) -> None:
        from audiotransfer.data.synthetic.preview import preview as write_preview

        pngs = write_preview(args.out, seed=args.seed, examples=args.examples, progress=not args.quiet)
        print(f"{args.out}: {len(pngs)} log-mel images (classes/, tasks/) with one WAV example each")

    group = sub.add_parser("synth", help="the synthetic sound world (AudioSet classes, three tasks)").add_subparsers(
        dest="synth_command", metavar="COMMAND", required=True
    )
    p = group.add_parser("generate", help="write the world: AudioSet-format lists + WAVs, tasks (cached, resumable)")
    p.add_argument("--out", required=True, metavar="DIR", help="world folder (the --root of its corpora)")
    p.add_argument("--seed", type=int, default=0, help="same seed -> bit-identical audio (default 0)")
    p.add_argument("--clips", type=int, default=5000, help="pre-training clips (default 5000)")
    p.add_argument("--eval-clips", type=int, default=1000, help="pre-training evaluation clips (default 1000)")
    p.add_argument("--scenes", type=int, default=480, help="scene clips (default 480)")
    p.add_argument("--birds", type=int, default=480, help="bird-activity clips (default 480)")
    p.add_argument("--commands", type=int, default=720, help="command clips (default 720)")
    p.add_argument("--speakers", type=int, default=60, help="command speakers, split 70/15/15 (default 60)")
    p.add_argument("--jobs", type=int, default=None, help="worker processes (default: all cores)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=generate)
    p = group.add_parser("preview", help="log-mel PNGs and WAV examples of every class and task class")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for classes/ and tasks/")
    p.add_argument("--seed", type=int, default=0, help="seed of the examples (default 0)")
    p.add_argument("--examples", type=int, default=3, help="examples per image (default 3)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=preview)


def _add_training(sub: argparse._SubParsersAction) -> None:
    """`audiotransfer pretrain` and `audiotransfer finetune` (issue: training)."""
    from typing import Any

    overrides = {  # flag -> TrainRecipe field; unset flags keep the study recipe (training/recipe.py)
        "model": str, "width": float, "epochs": int, "steps": int, "batch_size": int, "eval_batch_size": int,
        "lr": float, "optimizer": str, "weight_decay": float, "scheduler": str, "frames": int, "seed": int,
        "device": str,
        "mixup": float, "select_metric": str, "checkpoint_every": int,
    }

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--store", required=True, help="feature store directory holding the manifest's clips")
        p.add_argument("--out", required=True, help="run directory (rerun the same command to resume)")
        for field, kind in overrides.items():
            p.add_argument(f"--{field.replace('_', '-')}", dest=field, type=kind, default=None,
                           help=f"recipe field {field} (default: the study recipe)")
        p.add_argument("--balanced", action="store_true", default=None, help="class-balanced sampling (PANNs)")
        p.add_argument("--no-progress", action="store_true", help="hide progress bars")

    def recipe(args: argparse.Namespace, base: Any, extra: tuple[str, ...] = ()) -> Any:
        from pydantic import ValidationError

        fields = (*overrides, "balanced", *extra)
        changes = {f: getattr(args, f) for f in fields if getattr(args, f, None) is not None}
        try:
            return base.replace(**changes)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise UserError(f"option --{'-'.join(map(str, first['loc']))}: {first['msg']}",
                            fix="see `audiotransfer pretrain --help` / `finetune --help`") from None

    def report(metrics: dict, out: str) -> None:
        test = ", ".join(f"{k} {v:.4f}" for k, v in metrics["test"].items() if k != "classes_scored")
        print(f"{metrics['kind']} done in {out}: best epoch {metrics['best_epoch']}"
              + (f"; test {test}" if test else ""))

    def run_pretrain(args: argparse.Namespace) -> None:
        from audiotransfer.data.store import FeatureStore
        from audiotransfer.manifest import Manifest
        from audiotransfer.training import PRETRAIN, pretrain

        metrics = pretrain(Manifest.load(args.manifest), FeatureStore(args.store), recipe(args, PRETRAIN),
                           args.out, progress=not args.no_progress)
        report(metrics, args.out)

    def run_finetune(args: argparse.Namespace) -> None:
        from audiotransfer.data.corpora import load_corpus
        from audiotransfer.data.store import FeatureStore
        from audiotransfer.manifest import Manifest
        from audiotransfer.training import FINETUNE, finetune

        if (args.manifest is None) == (args.task is None):
            raise UserError("give the task as either --task CORPUS --root DIR or --manifest M",
                            fix="e.g. --task dcase2020_task1a --root /data/TAU2020")
        if args.task is not None and args.root is None:
            raise UserError(f"--task {args.task} needs --root, the folder that holds the corpus",
                            fix="add --root DIR")
        manifest = Manifest.load(args.manifest) if args.manifest else load_corpus(args.task, args.root)
        init = None if args.init == "scratch" else args.init
        chosen = recipe(args, FINETUNE, ("protocol", "backbone_lr_scale"))
        metrics = finetune(manifest, FeatureStore(args.store), chosen, args.out, init=init,
                           progress=not args.no_progress)
        report(metrics, args.out)

    p = sub.add_parser("pretrain", help="pre-train a model from scratch on a subset manifest")
    p.add_argument("--manifest", required=True, help="subset manifest (DIR/NAME, .json or .parquet)")
    common(p)
    p.set_defaults(handler=run_pretrain)

    p = sub.add_parser("finetune", help="fine-tune / probe a model state on a downstream task")
    p.add_argument("--from", dest="init", required=True, help="run dir or checkpoint file, or 'scratch'")
    p.add_argument("--task", help="corpus name of the task (see `audiotransfer data describe`)")
    p.add_argument("--root", help="folder holding the task corpus")
    p.add_argument("--manifest", help="task manifest instead of --task/--root")
    p.add_argument("--protocol", help="finetune | linear | freeze:K | scratch (default finetune)")
    p.add_argument("--backbone-lr-scale", dest="backbone_lr_scale", type=float, help="backbone lr = lr * this")
    common(p)
    p.set_defaults(handler=run_finetune)


def _add_study(sub: argparse._SubParsersAction) -> None:
    """`audiotransfer study plan|run|status|results|report` and `audiotransfer demo` (issues: study, analysis)."""

    def show(frame: object, fmt: str = "markdown") -> None:
        from audiotransfer.study.status import to_markdown

        print(frame.to_csv(index=False) if fmt == "csv" else to_markdown(frame))  # type: ignore[attr-defined]

    def run_plan(args: argparse.Namespace) -> None:
        from audiotransfer.study import plan

        table = plan(args.study)
        show(table[["run_id", "depends_on", "clips", "epochs", "clip_epochs", "status"]], args.format)
        done = int((table["status"] == "done").sum())
        print(f"\n{len(table)} runs ({(table['kind'] == 'pretrain').sum()} pre-training), {done} done; "
              f"cost {table['clip_epochs'].sum():,} clip-epochs in all, "
              f"{table.loc[table['status'] != 'done', 'clip_epochs'].sum():,} still to run")

    def run_study(args: argparse.Namespace) -> int:
        from audiotransfer.study import run

        outcome = run(args.study, jobs=args.jobs, backend=args.backend, retries=args.retries, mlflow=args.mlflow,
                      progress=not args.no_progress, ray_address=args.ray_address)
        print(f"{outcome.study_dir}: {len(outcome.done)} runs done now, {len(outcome.skipped)} done before, "
              f"{len(outcome.failed)} failed, {len(outcome.blocked)} blocked")
        for run_id, error in outcome.failed.items():
            print(f"  failed {run_id}: {error.strip().splitlines()[-1]}")
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

        table = results_table(args.study, kind=None if args.kind == "all" else args.kind)
        if args.format == "parquet":
            if not args.out:
                raise UserError("--format parquet writes a file", fix="add --out FILE.parquet")
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

    def run_export(args: argparse.Namespace) -> None:
        from audiotransfer.study import export_runs
        from audiotransfer.study.status import open_store

        study_dir = open_store(args.study).path.parent
        print(f"logged {export_runs(study_dir, args.uri)} new runs to {args.uri}")

    def run_demo_cmd(args: argparse.Namespace) -> int:
        import time

        from audiotransfer.study import run_demo

        start = time.perf_counter()
        result = run_demo(args.out, quick=args.quick, jobs=args.jobs, progress=not args.no_progress, spec=args.spec)
        minutes = (time.perf_counter() - start) / 60
        phases = ", ".join(f"{k} {v:.0f} s" for k, v in result.seconds.items())
        o = result.outcome
        print(f"\ndemo {'(quick) ' if args.quick else ''}finished in {minutes:.1f} min ({phases}): "
              f"{len(o.done) + len(o.skipped)} runs done, {len(o.failed)} failed, {len(o.blocked)} blocked")
        print(f"study: {result.study_dir}")
        for key in ("html", "markdown"):
            if key in result.report:
                print(f"report ({key}): {result.report[key]}")
        if result.headline:
            print("\nsamples vs classes vs similarity:")
            for line in result.headline:
                print(f"  {line}")
        if result.advisor:
            print("\nbefore fine-tuning (audiotransfer advise):")
            for line in result.advisor:
                print(f"  {line}")
        if result.ground_truth:
            agree = sum(c.agrees for c in result.ground_truth)
            small = " (--quick is a smoke test: too small a world and too few epochs to expect agreement)"
            print(f"\nagainst the world's ground truth ({agree} of {len(result.ground_truth)} checks agree)"
                  f"{small if args.quick else ''}:")
            for check in result.ground_truth:
                print(f"  {check.line()}")
        return 0 if o.ok else 1

    cores = os.cpu_count() or 1
    study = sub.add_parser("study", help="plan, run and inspect a pre-train x fine-tune study (YAML)")
    study_sub = study.add_subparsers(dest="study_command", metavar="SUBCOMMAND")
    study.set_defaults(handler=lambda _args: study.print_help() or 1)

    p = study_sub.add_parser("plan", help="list the runs of a study, which are done, and their cost")
    p.add_argument("study", help="study YAML")
    p.add_argument("--format", choices=("markdown", "csv"), default="markdown")
    p.set_defaults(handler=run_plan)

    p = study_sub.add_parser("run", help="run or resume a study (skips finished runs)")
    p.add_argument("study", help="study YAML")
    p.add_argument("--jobs", type=int, default=1, help="runs in parallel (local: worker processes)")
    p.add_argument("--backend", choices=("local", "ray"), default="local")
    p.add_argument("--retries", type=int, default=0, help="extra attempts for a failed run")
    p.add_argument("--mlflow", metavar="URI", help="also log every run to this MLflow tracking URI")
    p.add_argument("--ray-address", help="Ray cluster address (default: RAY_ADDRESS or a local Ray)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(handler=run_study)

    p = study_sub.add_parser("status", help="runs by kind and status; failed and blocked runs with their error")
    p.add_argument("study", help="study directory or study YAML")
    p.set_defaults(handler=run_status)

    p = study_sub.add_parser("results", help="final metrics of finished runs, one row per run")
    p.add_argument("study", help="study directory or study YAML")
    p.add_argument("--format", choices=("markdown", "csv", "parquet"), default="markdown")
    p.add_argument("--kind", choices=("finetune", "pretrain", "all"), default="finetune")
    p.add_argument("--out", help="write to this file instead of the terminal")
    p.set_defaults(handler=run_results)

    p = study_sub.add_parser("export-mlflow", help="log a study's finished runs to an MLflow tracking URI")
    p.add_argument("study", help="study directory or study YAML")
    p.add_argument("--uri", required=True, help="MLflow tracking URI, e.g. file:///tmp/mlruns")
    p.set_defaults(handler=run_export)

    def run_report(args: argparse.Namespace) -> None:
        from pathlib import Path

        from audiotransfer.analysis import write_report
        from audiotransfer.analysis.report import DEFAULT_SIMILARITY

        study_dir = Path(args.study)
        if study_dir.is_file():
            from audiotransfer.study.spec import load_study

            study_dir = load_study(study_dir).out
        out = write_report(study_dir, metric=args.metric, similarity=args.similarity or DEFAULT_SIMILARITY,
                           max_inputs=args.max_inputs, progress=not args.no_progress)
        print(f"report (html): {out['html']}\nreport (markdown): {out['markdown']}")
        print("\nsamples vs classes vs similarity:")
        for line in out["headline"]:
            print(f"  {line}")

    p = study_sub.add_parser("report", help="what transferred and why: scores, similarity, factors (HTML + Markdown)")
    p.add_argument("study", help="study directory or study YAML")
    p.add_argument("--metric", default="uar", help="test metric to analyse (default: uar)")
    p.add_argument("--similarity", choices=("frechet", "mmd", "label_share"),
                   help="data-similarity measure used as the regression's similarity factor (default: frechet)")
    p.add_argument("--max-inputs", type=int, default=256, help="clips per data set for CKA and data similarity")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(handler=run_report)

    p = sub.add_parser("demo", help="the main job: a complete small study on the synthetic world")
    p.add_argument("--out", help="study folder (default ./audiotransfer-demo or ./audiotransfer-demo-quick)")
    p.add_argument("--quick", action="store_true", help="the three-minute variant (smaller world, fewer epochs)")
    p.add_argument("--jobs", type=int, default=max(1, min(2, cores)), help="runs in parallel")
    p.add_argument("--spec", help="demo spec (default examples/studies/demo.yaml)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(handler=run_demo_cmd)


def _add_advise(sub: argparse._SubParsersAction) -> None:
    """`audiotransfer advise` (issue 13): rank pre-trained states for a task before any fine-tuning."""

    def handler(args: argparse.Namespace) -> int:
        from audiotransfer.advise.command import run

        return run(args)

    from audiotransfer.advise.rank import DEFAULT, ESTIMATORS

    p = sub.add_parser("advise", help="rank candidate pre-trained states for a task in minutes, before fine-tuning")
    p.add_argument("study", nargs="?", metavar="STUDY", help="a study folder or YAML: its pre-trained states are "
                   "candidates and, without --task, its tasks are ranked on")
    p.add_argument("--checkpoint", action="append", default=[], metavar="NAME=PATH[:format]",
                   help="a candidate checkpoint (run folder, model.pt, PANNs .pth, autrainer state dict); "
                   "format auto|audiotransfer|panns|autrainer")
    p.add_argument("--task", metavar="CORPUS", help="task corpus (any registered corpus, e.g. csv, folder, esc50)")
    p.add_argument("--root", help="the task corpus's folder")
    p.add_argument("-o", "--option", action="append", default=[], metavar="KEY=VALUE", help="corpus option")
    p.add_argument("--manifest", help="a saved task manifest (DIR/NAME) instead of --task")
    p.add_argument("--recipe", help="feature recipe for --task (default: the study's, else panns16k)")
    p.add_argument("--estimators", nargs="+", metavar="NAME", help=f"subset of {', '.join(ESTIMATORS)} (default all)")
    p.add_argument("--default", default=DEFAULT, help=f"estimator that ranks and recommends (default {DEFAULT})")
    p.add_argument("--out", help="output folder: advice.csv/json, cache/, stores/ (default STUDY/advise or "
                   "./advise-out)")
    p.add_argument("--tagger", metavar="STATE_OR_CHECKPOINT",
                   help="instead of ranking: the ontology categories the task resembles, and a subset spec")
    p.add_argument("--tagger-format", default="auto", help="the tagger checkpoint's format (default auto)")
    p.add_argument("--budget", type=int, help="clip budget (num_samples) of the written subset spec")
    p.add_argument("--level", type=int, default=0, help="ontology depth of the recommended categories (0 = roots)")
    p.add_argument("--cover", type=float, default=0.5, help="choose categories until this share of mass")
    p.add_argument("--most", type=int, default=3, help="at most this many categories")
    p.add_argument("--soft-mass", action="store_true", help="spread each clip's mass over its normalised "
                   "scores instead of giving it to its top-1 label")
    p.add_argument("--jobs", type=int, default=1, help="feature-extraction processes")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    _metadata_args(p)
    p.set_defaults(handler=handler)


def build_parser() -> argparse.ArgumentParser:
    from audiotransfer import __version__

    parser = argparse.ArgumentParser(
        prog="audiotransfer",
        description="Audio transfer-learning studies: subsets, features, pre-training, fine-tuning, analysis.",
    )
    parser.add_argument("--version", action="version", version=f"audiotransfer {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in (_add_ontology, _add_subsets, _add_data, _add_synth, _add_training, _add_study, _add_advise):
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
