"""`audiotransfer advise`: gather candidates and tasks from the arguments, run the advisor, print and write.

Kept apart from `cli.py` (which only declares the arguments) so the command moves with the package.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pandas as pd

import audiotransfer.advise.baselines as baselines
import audiotransfer.advise.categories as categories
import audiotransfer.advise.driver as driver
import audiotransfer.advise.layers as multilayer
import audiotransfer.advise.rank as rank
from audiotransfer.advise.embed import Candidate, embed_task, labelled_rows, load_candidate, parse_checkpoints
from audiotransfer.errors import UserError


def _study(args: argparse.Namespace) -> Any:
    from audiotransfer.study.results import load_results

    return load_results(driver.study_dir_of(args.study)) if args.study else None


def _tasks(args: argparse.Namespace, res: Any, out: Path) -> list[driver.Task]:
    if args.task or args.manifest:
        recipe = args.recipe or (_study_recipe(res) if res is not None else "panns16k")
        progress = not args.no_progress
        if args.manifest:
            return [driver.manifest_task(args.manifest, out, recipe, args.jobs, progress)]
        if not args.root:
            raise UserError("--task needs --root", fix="e.g. --task esc50 --root ~/data/ESC-50")
        return [driver.corpus_task(args.task, args.root, out, recipe, args.jobs, progress, **_options(args.option))]
    if res is None:
        raise UserError("no task given", fix="pass --task CORPUS --root ROOT, --manifest DIR/NAME, or a STUDY")
    return driver.study_tasks(res)


def _study_recipe(res: Any) -> Any:
    from audiotransfer.data.store import FeatureStore

    row = res.tasks.iloc[0] if not res.tasks.empty else None
    return FeatureStore(res.path(row["store_path"])).recipe if row is not None else "panns16k"


def _options(items: list[str]) -> dict[str, Any]:
    from audiotransfer.files import load_yaml

    parsed = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"option {item[:60]!r} is not KEY=VALUE", fix="write e.g. -o seed=1")
        parsed[key.strip()] = load_yaml(value)  # aliases bounded
    return parsed


def _candidates(res: Any, given: list[Candidate]) -> list[Candidate]:
    found = driver.study_candidates(res) if res is not None else []
    found += given
    if not found:
        raise UserError("no candidates", fix="pass a STUDY (its pre-trained states) and/or --checkpoint NAME=PATH")
    return found


def _print_table(task: str, table: pd.DataFrame, default: str) -> None:
    shown = table.copy()
    for col in rank.NAMES:
        if col in shown:
            shown[col] = shown[col].map(lambda v: "skipped" if pd.isna(v) else f"{v:.3f}")
    shown["seconds"] = shown["seconds"].map(lambda v: f"{v:.1f}")
    notes = shown.pop("note")
    print(f"\n{task} (ranked by {default}; rank 1 = best):")
    print(shown.to_string())
    for cand, note in notes.items():
        if note:
            print(f"  {cand}: {note}")


def run(args: argparse.Namespace) -> int:
    """The command's handler."""
    estimators = rank.check_estimators(args.estimators)  # before any extraction
    if args.layers is not None:
        multilayer.parse_spec(args.layers)
    default = _default(args.default, estimators)
    res = _study(args)
    given = [c for arg in args.checkpoint for c in parse_checkpoints(arg)]  # malformed: refused before any write
    out = _out(args, res)
    tasks = _tasks(args, res, out)
    if args.tagger:
        return _tagger(args, res, tasks, out)
    candidates = _candidates(res, given)
    sizes = baselines.study_sizes(res).join(baselines.parameter_counts(candidates).rename("parameters"), how="outer")
    cache = _cache(res, out)
    advice = driver.advise(
        candidates, tasks, cache, estimators, default, not args.no_progress, sizes, layers=args.layers
    )
    for task, table in advice.tables.items():
        _print_table(task, table, advice.default)
    print(f"\n{advice.forward_passes} forward pass(es); embeddings cached in {cache}")
    for path in driver.write_advice(advice, out).values():
        print(f"wrote {path}")
    print()
    for line in advice.lines.values():
        print(line)
    return 0


def _cache(res: Any, out: Path) -> Path:
    """A study's embedding cache (its linear probes filled it), else the advice folder's own."""
    from audiotransfer.study.layout import StudyDir

    return StudyDir(res.study_dir).embeddings if res is not None else out / "cache"


def _default(given: str | None, estimators: list[str]) -> str:
    """The ranking estimator: `--default` (which must be among `--estimators`), else the house default
    when selected, else the first selected."""
    if given is not None and given not in estimators:
        raise UserError(
            f"--default {given} is not among --estimators ({', '.join(estimators)})",
            fix=f"add {given} to --estimators, or pick --default from them",
        )
    return given or (rank.DEFAULT if rank.DEFAULT in estimators else estimators[0])


def _out(args: argparse.Namespace, res: Any) -> Path:
    """`--out`, else `STUDY/advise` for a study; never the working directory unless told. A folder that
    holds other files than an earlier advice is refused (they could be overwritten)."""
    from audiotransfer.files import make_output_folder

    if args.out:
        out = Path(args.out)
    elif res is not None:
        out = res.study_dir / "advise"
    else:
        raise UserError(
            "advise writes advice.csv/json and an embedding cache: where?",
            fix="pass --out DIR (or a STUDY, whose advise/ folder is the default)",
        )
    return make_output_folder(out, ["advice.json", "advice.csv", "cache"], "folder of advice")


def _tagger(args: argparse.Namespace, res: Any, tasks: list[driver.Task], out: Path) -> int:
    """--tagger: the ontology categories each task resembles, and a subset spec for each."""
    from audiotransfer.ontology import load_ontology

    onto = load_ontology(*_metadata(args, res))
    path = Path(args.tagger)
    if res is not None and not path.exists():
        from audiotransfer.study.results import pretrained_dir

        path = pretrained_dir(res, args.tagger) or path
    cand = Candidate("tagger", path, args.tagger_format)
    model = load_candidate(cand)
    labels = categories.tagger_labels(cand.weights_file, model.num_classes, onto)
    for task in tasks:
        logits = embed_task(cand, task.manifest, task.store, task.frames, _cache(res, out)).logits
        cmass = categories.category_mass(categories.label_mass(logits, labels, args.soft_mass), onto)
        table = categories.top_categories(cmass, onto, args.level, args.cover, args.most)
        print(
            f"\n{task.name}: ontology categories (depth {args.level}) by the tagger's mass over "
            f"{len(labelled_rows(task.manifest))} clips:"
        )
        print(table.head(8).to_string(float_format=lambda v: f"{v:.3f}"))
        spec = categories.subset_spec(task.name, table, args.budget)
        written = categories.write_spec(spec, out / f"subset_like_{task.name}.yaml")
        print(
            f"{task.name}: most like {', '.join(spec['subsets'][f'like_{task.name}']['categories'])}; "
            f"subset spec: {written} (`audiotransfer subsets build {written} ...`)"
        )
    return 0


def _metadata(args: argparse.Namespace, res: Any) -> tuple[Any, Any, Any]:
    """(ontology, labels, metadata folder) from the flags, else from the study's spec."""
    if args.ontology or args.metadata:
        return args.ontology, args.labels, args.metadata
    if res is not None and (res.study_dir / "study.yaml").exists():
        from audiotransfer.study.spec import load_study

        meta = load_study(res.study_dir / "study.yaml").spec.pretraining.metadata
        if meta.ontology is not None:
            return meta.ontology, meta.labels, None
    raise UserError("--tagger needs the AudioSet ontology", fix="pass --metadata DIR (ontology.json + labels)")
