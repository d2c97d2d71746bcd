"""The advisor's driver: candidates + tasks -> embeddings (cached) -> estimator table per task.

Candidates come from a study (its pre-trained states with a finished `model.pt`) and/or checkpoints;
tasks from a study (its downstream tasks, features already in its stores), a registered corpus or a saved
task manifest (features extracted once into `OUT/stores/NAME`, resumable, then reused).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import audiotransfer.advise.baselines as baselines
import audiotransfer.advise.layers as multilayer
import audiotransfer.advise.public as public
import audiotransfer.advise.rank as rank
import audiotransfer.advise.uncertainty as uncertainty
from audiotransfer.advise.embed import Candidate, Embedded, class_labels, embed_task, labelled_rows
from audiotransfer.errors import UserError
from audiotransfer.progress import progress as show_progress


@dataclass
class Task:
    """A single-label task with its features: the manifest, its store and the crop length."""

    name: str
    manifest: Any
    store: Any
    frames: int
    stores: dict[str, Any] = field(default_factory=dict)  # a study's stores of other front-ends, by recipe hash


@dataclass
class Advice:
    """Per task: the long estimator table, the ranked table and the one-line recommendation."""

    default: str
    long: pd.DataFrame  # task, candidate, estimator, score, seconds, note
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    lines: dict[str, str] = field(default_factory=dict)
    embed_seconds: dict[str, dict[str, float]] = field(default_factory=dict)  # task -> candidate -> s
    forward_passes: int = 0
    layers: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)  # task -> cand -> estimator -> layer

    def __repr__(self) -> str:
        return (
            f"Advice(default {self.default!r}, tasks {list(self.tables)}, {len(self.long)} scores, "
            f"{self.forward_passes} forward passes)"
        )


# ------------------------------------------------------------------------------------------ candidates
def study_dir_of(path: str | Path) -> Path:
    """A study's output folder from the folder itself or its YAML; a UserError when it has not been run."""
    from audiotransfer.study.layout import StudyDir

    study = StudyDir.of(path)
    study.require_results()
    return study.root


def study_candidates(res: Any) -> list[Candidate]:
    """The study's pre-trained states that have a finished model (scratch has none), and its public
    pre-trained models (ranked as `--checkpoint NAME=PATH:FORMAT` would rank them)."""
    from audiotransfer.study.results import pretrained_dir, public_states
    from audiotransfer.study.spec import SCRATCH

    public = public_states(res)
    names = [s for s in (res.states["state"] if not res.states.empty else []) if s != SCRATCH]
    found = []
    for name in names:
        trained = None if name in public else pretrained_dir(res, name)
        if name in public:
            found.append(Candidate(name, *public[name]))
        elif trained is not None:
            found.append(Candidate(name, trained, "audiotransfer"))
    if not found:
        raise UserError(
            f"{res.study_dir}: no pre-trained state has a finished model.pt or is a public model",
            fix="run the study's pre-training first (`audiotransfer study run`)",
        )
    return found


def study_tasks(res: Any, names: list[str] | None = None) -> list[Task]:
    """The study's downstream tasks, read from its manifests and stores."""
    from audiotransfer.data.store import FeatureStore
    from audiotransfer.manifest import Manifest

    if res.tasks.empty:
        raise UserError(f"{res.study_dir}: the study records no tasks", fix="run `audiotransfer study run` first")
    rows = res.tasks.set_index("task")
    unknown = sorted(set(names or []) - set(rows.index))
    if unknown:
        raise UserError(f"{res.study_dir}: no task {', '.join(unknown)}", fix=f"tasks: {', '.join(rows.index)}")
    tasks = []
    for name in names or list(rows.index):
        row = rows.loc[name]
        manifest, store = Manifest.load(res.path(row["manifest_path"])), FeatureStore(res.path(row["store_path"]))
        frames = int(row["frames"]) if pd.notna(row.get("frames")) else _frames(manifest, store)
        tasks.append(Task(name, manifest, store, frames, _other_stores(res, name, store)))
    return tasks


def _other_stores(res: Any, task: str, store: Any) -> dict[str, Any]:
    """The task's recorded stores of front-ends other than `store`'s, by recipe hash."""
    from audiotransfer.data.store import FeatureStore

    rows = res.task_stores[res.task_stores["task"] == task] if not res.task_stores.empty else res.task_stores
    return {
        str(h): FeatureStore(path)
        for h, p in zip(rows.get("frontend_hash", []), rows.get("store_path", []), strict=True)
        if h != store.recipe.hash and (path := res.path(p)) is not None and path.is_dir()
    }


def task_for(cand: Candidate, task: Task) -> Task:
    """The task as a trained candidate reads it: in the study's store of the front-end it declares, when
    that is not the task's usual store and the study recorded one."""
    from audiotransfer.models.load import declared_frontend

    if not task.stores:
        return task
    try:
        own = declared_frontend(cand.weights_file)
    except UserError:  # unreadable: the embedding pass reports it
        return task
    if own is None or own.hash not in task.stores:
        return task
    store = task.stores[own.hash]
    frames = round(task.frames * _frame_rate(store.recipe) / _frame_rate(task.store.recipe))  # the same seconds
    return Task(task.name, task.manifest, store, frames, task.stores)


def _frame_rate(recipe: Any) -> float:
    """Frames per second of a store's front-end (a waveform's: its samples)."""
    return float(recipe.sample_rate) / getattr(recipe, "hop_length", 1)


def corpus_task(
    corpus: str,
    root: str | Path,
    out: Path,
    recipe: Any = "panns16k",
    jobs: int = 1,
    progress: bool = True,
    **options: Any,
) -> Task:
    """A registered corpus as a task; its features extracted once into OUT/stores/CORPUS-RECIPEHASH."""
    from audiotransfer.data.corpora import load_corpus

    return manifest_task(load_corpus(corpus, root, **options), out, recipe, jobs, progress)


def manifest_task(manifest: Any, out: Path, recipe: Any = "panns16k", jobs: int = 1, progress: bool = True) -> Task:
    """A task manifest (object or saved DIR/NAME path) with its features extracted (once) under OUT/stores;
    `recipe` a FeatureRecipe or a recipe name."""
    from audiotransfer.data.features import get_recipe
    from audiotransfer.data.store import extract_features
    from audiotransfer.manifest import Manifest

    if not hasattr(manifest, "clips"):
        manifest = Manifest.load(manifest)
    feats = get_recipe(recipe) if isinstance(recipe, str) else recipe
    rows = labelled_rows(manifest)
    class_labels(manifest, rows)  # refuse a multi-label task before extracting anything
    name = manifest.name or "task"
    store = extract_features(
        manifest.take(rows),
        out / "stores" / f"{name}-{feats.hash}",
        feats,
        jobs=jobs,
        on_error="stop",
        progress=progress,
    )
    return Task(name, manifest, store, _frames(manifest, store))


def _frames(manifest: Any, store: Any) -> int:
    from audiotransfer.training.engine import default_frames

    return default_frames(manifest, store)


# ---------------------------------------------------------------------------------------------- advise
def advise(
    candidates: list[Candidate],
    tasks: list[Task],
    cache_dir: Path,
    estimators: list[str] | None = None,
    default: str = rank.DEFAULT,
    progress: bool = True,
    sizes: pd.DataFrame | None = None,
    intervals: bool = True,
    layers: str | None = None,
) -> Advice:
    """Score every candidate on every task with the estimators; candidates that fail to load are listed.

    Also `audiotransfer.advise(...)`. A candidate is a run folder or checkpoint; a task is a single-label
    manifest with its feature store and crop length. `sizes` (candidate -> clips, classes, parameters) adds
    the free baselines' ranks; `intervals` the default's bootstrap interval over the task's clips; `layers`
    (`all` or `K,L,...`) scores each candidate at those layers too, each estimator at its best one (the
    table's `layer` column: the default's). Here two untrained candidates on a toy task:

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> import numpy as np, pandas as pd, torch
        >>> from audiotransfer.data.features import RECIPES
        >>> from audiotransfer.data.store import write_store
        >>> from audiotransfer.manifest import from_label_lists
        >>> from audiotransfer.models import create_model
        >>> from audiotransfer.training.checkpoint import save_model
        >>> folder, rng = Path(tempfile.mkdtemp()), np.random.default_rng(0)
        >>> ids, labels = [f"c{i}" for i in range(24)], ["low", "high"] * 12
        >>> clips = pd.DataFrame({"clip_id": ids, "split": "train"})
        >>> manifest = from_label_lists("toy", clips, [[lab] for lab in labels], task_type="multiclass")
        >>> features = {i: rng.normal(lab == "high", 1, (40, 32)).astype("float32") for i, lab in zip(ids, labels)}
        >>> store = write_store(folder / "store", RECIPES["demo"], "toy", features)
        >>> candidates = []
        >>> for name, seed in (("a", 0), ("b", 1)):
        ...     _ = torch.manual_seed(seed)
        ...     save_model(folder / f"{name}.pt", create_model("cnn6", 5, width=0.125, n_mels=32), labels=list("vwxyz"))
        ...     candidates.append(Candidate(name, folder / f"{name}.pt"))
        >>> advice = advise(candidates, [Task("toy", manifest, store, 40)], folder / "cache", progress=False)
        >>> advice
        Advice(default 'gbc', tasks ['toy'], 22 scores, 2 forward passes)
        >>> sorted(advice.tables["toy"].index) == ["a", "b"], advice.lines["toy"].startswith("toy: start from")
        (True, True)
    """
    names = rank.check_estimators(estimators)
    spec = multilayer.parse_spec(layers) if layers is not None else None
    if default not in names:
        default = names[0]
    if len({c.name for c in candidates}) != len(candidates):
        raise UserError("two candidates share a name", fix="give every --checkpoint a distinct NAME")
    advice = Advice(default, pd.DataFrame())
    longs = []
    for task in tasks:
        try:
            y = class_labels(task.manifest, labelled_rows(task.manifest))
        except UserError as exc:  # a multi-label task of a study: the others are still ranked
            advice.lines[task.name] = f"{task.name}: skipped ({exc.message})"
            continue
        inputs, seconds, failed, views = {}, {}, {}, {}
        for cand in show_progress(candidates, desc=f"embed {task.name}", unit="candidate", enabled=progress):
            try:
                emb, view = _embed_layers(cand, candidates, task, cache_dir, progress, layers, spec)
            except UserError as exc:
                failed[cand.name] = exc.message
                continue
            advice.forward_passes += (not emb.cached) + (view.passes if view else 0)
            inputs[cand.name] = rank.Inputs(emb.embeddings, emb.logits, y)
            seconds[cand.name] = emb.seconds + (view.seconds if view else 0.0)
            if view:
                views[cand.name] = view
        if not inputs:  # nothing to rank: say why instead of ranking an empty table
            why = "; ".join(f"{name}: {msg}" for name, msg in failed.items())
            advice.lines[task.name] = f"{task.name}: skipped (no candidate could be used: {why[:300]})"
            continue
        chosen: dict[str, str] = {}
        if views:
            long, inputs, chosen = multilayer.score(views, inputs, names, default)
        else:
            long = rank.score(inputs, names)
        long = _headless(long, [c for c, d in inputs.items() if d.logits.shape[1] == 0])
        long = (
            pd.concat(
                [
                    long,
                    pd.DataFrame(
                        [
                            dict(candidate=c, estimator=e, score=np.nan, seconds=0.0, note=f"not loaded: {msg}")
                            for c, msg in failed.items()
                            for e in names
                        ]
                    ),
                ],
                ignore_index=True,
            )
            if failed
            else long
        )
        table = rank.ranked(long, seconds, default)
        if views:
            table["layer"] = pd.Series(chosen, dtype=object).reindex(table.index)
            advice.layers[task.name] = multilayer.all_winners(long)
        advice.lines[task.name] = rank.recommendation(table, task.name, default)
        notes = _uncertainty(table, inputs, default) if intervals else ""
        if sizes is not None:
            table, free = baselines.annotate(table, sizes)
            notes = "; ".join(n for n in (notes, free) if n)
        advice.tables[task.name] = table
        advice.lines[task.name] += f"; {notes}" if notes else ""
        advice.embed_seconds[task.name] = seconds
        longs.append(long.assign(task=task.name))
    advice.long = pd.concat(longs, ignore_index=True) if longs else pd.DataFrame()
    return advice


def _uncertainty(table: pd.DataFrame, inputs: dict[str, rank.Inputs], default: str) -> str:
    """Adds DEFAULT_low / DEFAULT_high (bootstrap over the clips) to the table; the 'cannot be told apart' note."""
    if default not in rank.ESTIMATORS or default not in table or not inputs:
        return ""
    spread = uncertainty.spread(default, inputs, table[default])
    table[f"{default}_low"], table[f"{default}_high"] = spread.low, spread.high
    return spread.line()


def _embed(cand: Candidate, candidates: list[Candidate], task: Task, cache_dir: Path, progress: bool) -> Any:
    """A candidate's embeddings: a public model's from the task's audio (one pass for all its layers asked
    for), any other's from the task's feature store."""
    if not public.is_public(cand):
        return embed_task(cand, task.manifest, task.store, task.frames, cache_dir)
    layers = [c.layer for c in candidates if (c.path, c.source) == (cand.path, cand.source)]
    rows = task.manifest.take(labelled_rows(task.manifest))
    return public.embed_public(cand, rows, cache_dir, layers, progress)


def _embed_layers(
    cand: Candidate,
    candidates: list[Candidate],
    task: Task,
    cache_dir: Path,
    progress: bool,
    layers: str | None,
    spec: list[int] | None,
) -> tuple[Embedded, multilayer.View | None]:
    """The candidate's usual embeddings, and with `--layers` its view of every layer asked for (a public
    model's usual layer is one of them: its cost is counted once, in the view); a trained candidate reads
    the task's store of its own front-end."""
    task = task if public.is_public(cand) else task_for(cand, task)
    if layers is None:
        return _embed(cand, candidates, task, cache_dir, progress), None
    if not public.is_public(cand):  # its usual pass first: it refuses a front-end the store does not match
        emb = _embed(cand, candidates, task, cache_dir, progress)
        return emb, multilayer.views(cand, task.manifest, task.store, task.frames, cache_dir, spec, progress)
    view = multilayer.views(cand, task.manifest, task.store, task.frames, cache_dir, spec, progress)
    emb = view.layers[multilayer.usual(cand)]
    return Embedded(emb, np.zeros((len(emb), 0)), 0.0, True), view


def _headless(long: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """LEEP and NCE read a pre-training head; a public model has none: say so instead of an error."""
    rows = long["candidate"].isin(names) & long["estimator"].isin(rank.HEAD)
    long.loc[rows, ["score", "note"]] = [np.nan, "no pre-training head (a public model gives embeddings only)"]
    return long


def write_advice(advice: Advice, out: Path) -> dict[str, Path]:
    """`OUT/advice.csv` (every task's ranked table, stacked) and `OUT/advice.json` (tables + lines)."""
    out.mkdir(parents=True, exist_ok=True)
    parts = [t.reset_index().assign(task=name) for name, t in advice.tables.items()]
    stacked = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["candidate", "task"])
    paths = {"csv": out / "advice.csv", "json": out / "advice.json"}
    stacked.to_csv(paths["csv"], index=False)
    paths["json"].write_text(
        json.dumps(
            {
                "default": advice.default,
                "recommendations": advice.lines,
                "forward_passes": advice.forward_passes,
                **({"layers": advice.layers} if advice.layers else {}),
                "tables": {
                    name: json.loads(t.reset_index().to_json(orient="records")) for name, t in advice.tables.items()
                },
                "written": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
            },
            indent=2,
        )
    )
    return paths
