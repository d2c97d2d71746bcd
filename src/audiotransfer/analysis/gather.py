"""Reading a study for analysis: finished scores, model states, inputs, and the measured similarities.

Everything here reads the study directory (results store, manifests, feature stores, run folders) and
records what is missing in `notes` instead of failing, so the report can say so and render the rest.
Expensive measurements (CKA, data similarity) are cached in `report/cache/` under a key made of the model
files they used and the settings, so rerunning the report after an interruption or a new run only
recomputes what changed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from audiotransfer.analysis.cka import model_cka
from audiotransfer.analysis.similarity import (
    block_weight_distances,
    frechet_distance,
    label_share,
    mmd_rbf,
    weight_distance_matrix,
)
from audiotransfer.errors import UserError
from audiotransfer.files import write_atomic
from audiotransfer.study.results import StudyResults, finetuned_dir, pretrained_dir
from audiotransfer.study.spec import SCRATCH
from audiotransfer.training.recipe import DEFAULT_SELECT

FT = "/ft"  # suffix of a fine-tuned model's key in the CKA tables
TAGGER_MAP = 0.3  # below this pre-training mAP, label shares are flagged as unreliable


def _load_models(res: StudyResults, dirs: dict[str, Path]) -> dict[str, Any]:
    """The models that load; an unreadable `model.pt` (truncated, corrupt) is left out with a note."""
    from audiotransfer.training import load_model

    models = {}
    for key, folder in dirs.items():
        try:
            models[key] = load_model(folder).eval()
        except UserError as exc:
            note = f"The model of '{key}' ({folder / 'model.pt'}) could not be read and is missing from the measures"
            if not any(n.startswith(note) for n in res.notes):
                res.notes.append(f"{note}: {exc.message.splitlines()[0][:300]}")
    return models


def fingerprint(dirs: dict[str, Path], **settings: Any) -> str:
    """A key for a cached measure: the model files it used (path, mtime, size) and its settings."""
    parts = {
        k: [str(p), (p / "model.pt").stat().st_mtime_ns, (p / "model.pt").stat().st_size]
        for k, p in sorted(dirs.items())
    }
    blob = json.dumps({"models": parts, "settings": settings}, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def cached(cache_dir: Path, name: str, key: str, compute: Callable[[], pd.DataFrame]) -> pd.DataFrame:
    """`compute()` once per key: the table is stored as `cache_dir/name.json` with the key beside it."""
    path = cache_dir / f"{name}.json"
    if path.exists():
        stored = json.loads(path.read_text())
        if stored.get("key") == key:
            return pd.DataFrame(stored["records"], columns=stored["columns"])
    table = compute()
    cache_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(
        {"key": key, "columns": list(table.columns), "records": table.to_dict(orient="records")}, default=float
    )
    write_atomic(path, lambda tmp: tmp.write_text(text))
    return table


# ---------------------------------------------------------------------------------------------- inputs
def clip_inputs(
    res: StudyResults,
    manifest_path: Any,
    store_path: Any,
    split: str,
    max_inputs: int,
    frames: int | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Up to `max_inputs` centre-cropped log-mels (B, T, M) of a manifest's split (all clips if it has none)."""
    from audiotransfer.data.store import FeatureStore
    from audiotransfer.manifest import Manifest

    mpath, spath = res.path(manifest_path), res.path(store_path)
    if mpath is None or spath is None:
        raise UserError(
            f"{res.dir.results}: a manifest_path or store_path is empty",
            fix="rerun `audiotransfer study run` so the store records its data",
        )
    manifest = Manifest.load(mpath)
    clips = manifest.clips[manifest.clips["split"] == split]
    if clips.empty:
        clips = manifest.clips
    rng = np.random.default_rng(seed)
    take = np.sort(rng.choice(len(clips), size=min(max_inputs, len(clips)), replace=False))
    store = FeatureStore(spath)
    rows = store.rows(clips["clip_id"].to_numpy()[take])
    frames = frames or store.recipe.frames_for(manifest.meta.get("clip_seconds"))
    if frames is None:
        raise UserError(
            f"manifest {manifest.name!r}: meta field 'clip_seconds' is missing, so the crop length is unknown",
            fix="add clip_seconds to the manifest meta",
        )
    return store.read_batch(rows, frames, crop="center")


def _inputs_or_note(res: StudyResults, what: str, *args: Any, **kwargs: Any) -> np.ndarray | None:
    """`clip_inputs`, or None with a note when the data is gone (moved study, deleted store)."""
    try:
        return clip_inputs(res, *args, **kwargs)
    except UserError as exc:
        res.notes.append(f"Inputs of {what} could not be read, so it is left out of the measures: {exc.message}")
        return None


def _task_inputs(res: StudyResults, task: str, row: pd.Series, max_inputs: int) -> np.ndarray | None:
    """Test-split inputs of a task (its row of the tasks table), cropped to the task's frames when recorded."""
    frames = int(row["frames"]) if pd.notna(row.get("frames")) else None
    return _inputs_or_note(
        res, f"task '{task}'", row["manifest_path"], row["store_path"], "test", max_inputs, frames=frames
    )


def _batches(x: np.ndarray, size: int) -> Iterator[np.ndarray]:
    for start in range(0, len(x), size):
        yield x[start : start + size]


def _forward(model: Any, x: np.ndarray, size: int, what: str) -> np.ndarray:
    import torch

    outs = []
    with torch.inference_mode():
        for batch in _batches(x, size):
            t = torch.from_numpy(np.ascontiguousarray(batch))
            outs.append((torch.sigmoid(model(t)) if what == "probs" else model.embed(t)).numpy())
    return np.concatenate(outs).astype(np.float64)


# -------------------------------------------------------------------------------------------- measures
def weight_similarity(res: StudyResults, states: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """First-conv weight distance matrix between pre-trained states, and per-block distances (long)."""
    dirs = {s: d for s in states if (d := pretrained_dir(res, s)) is not None}
    weights = {s: model.state_dict() for s, model in _load_models(res, dirs).items()}
    if len(weights) < 2:
        return pd.DataFrame(), pd.DataFrame(columns=["a", "b", "block", "distance"])
    names = list(weights)
    rows = [
        dict(a=a, b=b, block=block, distance=d)
        for i, a in enumerate(names)
        for b in names[i + 1 :]
        for block, d in block_weight_distances(weights[a], weights[b]).items()
    ]
    return weight_distance_matrix(weights), pd.DataFrame(rows)


def own_frontend_states(res: StudyResults) -> set[str]:
    """States whose fine-tune runs read task stores of their own front-end (not the study's `features`):
    their models cannot take the inputs the other states share."""
    if res.runs.empty or not {"kind", "config"} <= set(res.runs.columns):
        return set()
    runs = res.runs[res.runs["kind"] == "finetune"]
    return {str(r["state"]) for _, r in runs.iterrows() if "frontend" in json.loads(r["config"])}


def representation_similarity(
    res: StudyResults,
    states: list[str],
    task: str,
    protocol: str,
    max_inputs: int,
    batch_size: int = 64,
    progress: bool = True,
) -> pd.DataFrame:
    """Layer-wise CKA on the task's test inputs between pre-trained states and their fine-tuned models.

    Long table: block, a, b, cka (keys are state names; fine-tuned models carry the suffix "/ft").
    """
    own = own_frontend_states(res)
    if own & set(states):
        note = f"Layer-wise CKA leaves out {', '.join(sorted(own & set(states)))}: they read another front-end."
        res.notes.extend([] if note in res.notes else [note])
    states = [s for s in states if s not in own]
    dirs = {s: d for s in states if (d := pretrained_dir(res, s)) is not None}
    dirs |= {f"{s}{FT}": d for s in states if (d := finetuned_dir(res, s, task, protocol)) is not None}
    if len(dirs) < 2 or task not in set(res.tasks.get("task", [])):
        return pd.DataFrame(columns=["block", "a", "b", "cka"])
    row = res.tasks.set_index("task").loc[task]

    def compute() -> pd.DataFrame:
        x = _task_inputs(res, task, row, max_inputs)
        if x is None:
            return pd.DataFrame(columns=["block", "a", "b", "cka"])
        models = _load_models(res, dirs)
        if len(models) < 2:
            return pd.DataFrame(columns=["block", "a", "b", "cka"])
        acc = model_cka(models, _batches(x, batch_size), progress=progress, total=int(np.ceil(len(x) / batch_size)))
        return acc.long()

    key = fingerprint(dirs, task=task, protocol=protocol, max_inputs=max_inputs, batch_size=batch_size)
    return cached(res.dir.cache, f"cka_{task}_{protocol.replace(':', '-')}", key, compute)


def choose_tagger(res: StudyResults) -> str | None:
    """The pre-trained state with the most classes (then most clips) that has a model: the reference tagger."""
    if res.states.empty:
        return None
    ranked = res.states.sort_values(["num_classes", "num_clips"], ascending=False)
    skip = {SCRATCH, *own_frontend_states(res)}  # it tags the task stores' features
    return next((s for s in ranked["state"] if s not in skip and pretrained_dir(res, s) is not None), None)


def _labels(value: Any) -> list[str]:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    return list(json.loads(value)) if isinstance(value, str) else list(value)


def data_similarity(
    res: StudyResults, tasks: list[str], max_inputs: int, batch_size: int = 64, progress: bool = True
) -> tuple[pd.DataFrame, str | None]:
    """Per state x task: label share (top-1 of the tagger), Frechet distance and MMD of tagger embeddings."""
    from audiotransfer.progress import progress as show_progress

    cols = ["state", "task", "label_share", "frechet", "mmd"]
    tagger = choose_tagger(res)
    if tagger is None or not tasks:
        return pd.DataFrame(columns=cols), None
    tagger_dir = pretrained_dir(res, tagger)
    if tagger_dir is None:
        return pd.DataFrame(columns=cols), None
    states = res.states[res.states["state"] != SCRATCH].set_index("state")
    tagger_labels = _labels(states.loc[tagger, "labels"])
    has_clips = states["manifest_path"].notna() & states["store_path"].notna()
    # a checkpoint state with pre-training categories but no clips here (a public model): label share only
    states = states[has_clips | states["labels"].map(lambda v: bool(_labels(v)))]
    outside = [s for s, row in states.iterrows() if set(_labels(row["labels"])) - set(tagger_labels)]
    pretrain_metric = DEFAULT_SELECT["multilabel"]  # what a pre-training run is scored by
    quality = res.pretrain[(res.pretrain["state"] == tagger) & (res.pretrain["metric"] == pretrain_metric)]["value"]
    if len(quality) and quality.iloc[-1] < TAGGER_MAP:
        res.notes.append(
            f"The tagger '{tagger}' reaches only mAP {quality.iloc[-1]:.2f} on its test clips "
            f"(below {TAGGER_MAP}): its label shares are a weak measure of similarity; train it longer "
            "or compare with the embedding distances."
        )
    if outside:
        res.notes.append(
            f"The tagger '{tagger}' does not know every class of {', '.join(outside)}: their label "
            "share counts only the classes it knows."
        )

    def compute() -> pd.DataFrame:
        model = _load_models(res, {tagger: tagger_dir}).get(tagger)
        if model is None:
            return pd.DataFrame(columns=cols)
        task_rows = res.tasks.set_index("task")
        probs, task_emb = {}, {}
        for task in tasks:
            row = task_rows.loc[task]
            x = _task_inputs(res, task, row, max_inputs)
            if x is not None:
                probs[task], task_emb[task] = (
                    _forward(model, x, batch_size, "probs"),
                    _forward(model, x, batch_size, "embed"),
                )
        rows = []
        for state, srow in show_progress(
            states.iterrows(), total=len(states), desc="data similarity", enabled=progress
        ):
            emb = None
            if has_clips[state]:
                x = _inputs_or_note(
                    res, f"state '{state}'", srow["manifest_path"], srow["store_path"], "train", max_inputs
                )
                if x is None:
                    continue
                emb = _forward(model, x, batch_size, "embed")
            subset = _labels(srow["labels"])
            for task in probs:
                share = (
                    label_share(probs[task], tagger_labels, subset)
                    if len(tagger_labels) == probs[task].shape[1] and subset
                    else float("nan")
                )
                rows.append(
                    dict(
                        state=state,
                        task=task,
                        label_share=share,
                        frechet=np.nan if emb is None else frechet_distance(emb, task_emb[task]),
                        mmd=np.nan if emb is None else mmd_rbf(emb, task_emb[task]),
                    )
                )
        return pd.DataFrame(rows, columns=cols)

    key = fingerprint(
        {"tagger": tagger_dir},
        tasks=tasks,
        max_inputs=max_inputs,
        states={s: str(h) for s, h in states.get("subset_hash", states["manifest_path"]).items()},
        labels={s: str(v) for s, v in states["labels"].items()},
    )
    return cached(res.dir.cache, "data_similarity", key, compute), tagger


# ------------------------------------------------------------------------------------------- ontology
def state_categories(res: StudyResults) -> tuple[dict[str, list[str]], Any, str | None]:
    """From `study.yaml`: state -> categories (states that name some), the ontology, and the state of all classes.

    Reads the spec as written by `study run` or the demo (paths absolute or relative to the study folder;
    inline subset fields or named subsets of its `subsets_file`); anything unreadable gives ({}, None, None)
    and a note, so the report draws no tree.
    """
    import yaml

    from audiotransfer.ontology import Ontology, SubsetSpec, load_subset_file
    from audiotransfer.study.spec import STATES, NamedSubset

    path = res.dir.spec
    if not path.is_file():
        return {}, None, None
    try:
        pre = (yaml.safe_load(path.read_text()) or {}).get("pretraining") or {}
        named = load_subset_file(path.parent / pre["subsets_file"]) if pre.get("subsets_file") else {}
        states = STATES.validate_python(pre.get("states") or {})
        specs = {
            name: named[s.subset] if isinstance(s, NamedSubset) else s
            for name, s in states.items()
            if isinstance(s, NamedSubset | SubsetSpec)
        }
        meta = pre.get("metadata") or {}
        if not meta.get("ontology"):
            return {}, None, None
        labels = path.parent / meta["labels"] if meta.get("labels") else None  # relative: to the study folder
        onto = Ontology.load(path.parent / meta["ontology"], labels)
        categories = {s: list(spec.categories) for s, spec in specs.items() if spec.categories}
        for cats in categories.values():
            for category in cats:
                onto.resolve(category)
    except (UserError, OSError, KeyError, TypeError, ValueError, yaml.YAMLError) as exc:
        res.notes.append(f"The ontology view is left out: {path} or its ontology could not be read ({exc}).")
        return {}, None, None
    full = next((s for s, spec in specs.items() if _whole(spec)), None)
    return categories, onto, full


def _whole(spec: Any) -> bool:
    """A subset spec that keeps every class and clip."""
    return (
        spec.categories is None
        and not spec.exclude
        and spec.level is None
        and spec.num_classes is None
        and spec.fraction in (None, 1.0)
        and spec.num_samples is None
        and spec.max_samples_per_class is None
    )
