"""Study data: the manifests of every pre-training state and task, and their feature stores.

Manifests are built from the spec (subset specs over the pre-training corpus's segment lists; task corpora
through their loaders) and saved under `STUDY/manifests/`; features are extracted once per corpus into
`STUDY/stores/` (resumable: the store skips clips it already holds). A store written with another feature
recipe or corpus is refused before any run starts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from audiotransfer.data.corpora.groups import groups_per_split
from audiotransfer.errors import UserError
from audiotransfer.manifest import Manifest
from audiotransfer.study.frontends import state_frontends
from audiotransfer.study.layout import StudyDir
from audiotransfer.study.spec import Study

if TYPE_CHECKING:
    from audiotransfer.data.features import Frontend

log = logging.getLogger(__name__)

PRETRAIN_STORE = "pretrain"


@dataclass(frozen=True)
class Dataset:
    """One saved manifest (a state's subset or a task) and the store holding its features."""

    name: str
    manifest: Path  # DIR/NAME, as `Manifest.load` takes it
    store: Path
    hash: str
    corpus: str
    task_type: str
    num_clips: int
    num_train: int
    num_classes: int
    labels: list[str]
    clip_seconds: float | None


@dataclass
class DataIndex:
    """The prepared data of a study: subset states and downstream tasks by name; `frontends` holds the
    checkpoint states of a front-end other than the study's, `frontend_tasks` the tasks in their stores."""

    states: dict[str, Dataset]
    tasks: dict[str, Dataset]
    frontends: dict[str, Frontend] = field(default_factory=dict)  # state -> its own front-end
    frontend_tasks: dict[str, dict[str, Dataset]] = field(default_factory=dict)  # recipe hash -> task -> data

    def task_data(self, state: str, task: str) -> Dataset:
        """The task as `state` reads it: in the store of the state's front-end."""
        own = self.frontends.get(state)
        return self.tasks[task] if own is None else self.frontend_tasks[own.hash][task]

    def stores(self, features: Frontend) -> list[tuple[Frontend, Dataset]]:
        """Every task store to extract, with its front-end: the study's `features` first, then each own one."""
        own = {f.hash: f for f in self.frontends.values()}
        return [(features, d) for d in self.tasks.values()] + [
            (own[h], d) for h, tasks in self.frontend_tasks.items() for d in tasks.values()
        ]


def prepare_manifests(study: Study, check: Callable[[DataIndex], None] | None = None) -> DataIndex:
    """Build every manifest of the study, let `check` refuse the result, and only then save them (unchanged
    ones are not rewritten): a refused change leaves `manifests/` as it was."""
    built: list[tuple[Manifest, Path, Path]] = []
    folder = StudyDir(study.out)
    check_checkpoint_formats(study)
    frontends = state_frontends(study)
    if study.subset_states:
        pool = corpus_manifest(study)
        present = set(pool.clips["clip_id"])
        for name, manifest in build_subsets(study).items():
            keep = np.flatnonzero(manifest.clips["clip_id"].isin(present).to_numpy())
            if len(keep) == 0:
                raise UserError(
                    f"{study.path}: field 'pretraining.states.{name}': none of the subset's "
                    f"{manifest.num_clips} clips is in the corpus under {study.spec.pretraining.root}",
                    fix="check that the corpus root holds the audio of the segment lists",
                )
            manifest = manifest.take(keep, name=name) if len(keep) < manifest.num_clips else manifest
            manifest.meta.update(
                root=pool.meta.get("root"),
                corpus=study.spec.pretraining.corpus,
                clip_seconds=pool.meta.get("clip_seconds"),
            )
            built.append((manifest, folder.manifests("states"), folder.store(PRETRAIN_STORE)))
    n_states = len(built)
    for name, task in study.spec.downstream.items():
        from audiotransfer.data.corpora import load_corpus

        try:
            manifest = load_corpus(task.corpus, task.root, **task.options)
        except UserError as exc:
            raise UserError(f"{study.path}: field 'downstream.{name}': {exc.message}", fix=exc.fix) from None
        manifest.name = name
        check_task(study, name, manifest, [study.features, *frontends.values()])
        built.append((manifest, folder.manifests("tasks"), folder.store(name)))
    datasets = [_describe(*b) for b in built]
    tasks = {d.name: d for d in datasets[n_states:]}
    data = DataIndex({d.name: d for d in datasets[:n_states]}, tasks, frontends, own_stores(folder, tasks, frontends))
    if check is not None:
        check(data)
    for manifest, directory, _ in built:
        _save(manifest, directory)
    return data


def own_stores(
    folder: StudyDir, tasks: dict[str, Dataset], frontends: dict[str, Frontend]
) -> dict[str, dict[str, Dataset]]:
    """Recipe hash -> task -> the task in the store of that front-end, for each distinct own front-end."""
    hashes = sorted({f.hash for f in frontends.values()})
    return {h: {t: replace(d, store=folder.store(t, frontend=h)) for t, d in tasks.items()} for h in hashes}


def check_checkpoint_formats(study: Study) -> None:
    """A checkpoint state's declared `format` must be what its file is (a PANNs file declared autrainer
    would otherwise load by the file's own layout without a word)."""
    from audiotransfer.models.checkpoints import read_state

    for name, state in study.checkpoint_states.items():
        if state.format == "auto" or state.public:  # a public model is loaded when its front-end is read
            continue
        try:
            read_state(state.checkpoint, state.format)  # type: ignore[arg-type]  # a CNN format here
        except UserError as exc:
            raise UserError(
                f"{study.path}: field 'pretraining.states.{name}.format': {exc.message}", fix=exc.fix
            ) from None


def check_task(study: Study, name: str, manifest: Manifest, frontends: list[Frontend] | None = None) -> None:
    """A task needs training and test clips; classes without training clips are trained and scored blind."""
    sizes = manifest.split_sizes()
    for split in ("train", "test"):
        if not sizes.get(split):
            raise UserError(
                f"{study.path}: field 'downstream.{name}': the task has no {split!r} clips (splits: {sizes or 'none'})",
                fix="give the corpus a test split (e.g. a 'split' column, or option test_fraction > 0)"
                if split == "test"
                else "check the corpus root and its split column",
            )
    if manifest.num_classes < 2:
        raise UserError(
            f"{study.path}: field 'downstream.{name}': the task has {manifest.num_classes} class(es) "
            f"({', '.join(manifest.label_names[:3])}); nothing to tell apart",
            fix="give the task at least two classes (check the corpus root and its labels)",
        )
    for frontend in frontends or [study.features]:
        _check_frames(study, name, manifest, frontend)
    groups = groups_per_split(manifest.clips)
    if groups:
        log.info(
            "%s: task %r: groups per split: %s", study.path, name, ", ".join(f"{k} {v}" for k, v in groups.items())
        )
    train = manifest.split("train").clips_per_class()
    empty = [manifest.label_names[i] for i in np.flatnonzero(train == 0)]
    if empty:
        log.warning(
            "warning: %s: task %r: %d of %d classes have no training clips (%s); the model cannot learn them",
            study.path,
            name,
            len(empty),
            manifest.num_classes,
            ", ".join(empty[:5]),
        )


def _check_frames(study: Study, name: str, manifest: Manifest, frontend: Frontend) -> None:
    """Crops shorter than a model's time pooling fail deep in torch: refuse them while planning."""
    from audiotransfer.models.registry import get_spec

    for protocol, recipe in study.finetune_recipes[name].items():
        frames = recipe.frames or frontend.frames_for(manifest.meta.get("clip_seconds"))
        need = get_spec(recipe.model).min_size
        if frames is not None and frames < need:
            raise UserError(
                f"{study.path}: field 'downstream.{name}' ({protocol}): crops of {frames} frames are shorter than "
                f"{recipe.model} needs ({need} frames: it pools time {need}-fold)",
                fix=f"set the recipe's frames to at least {need} (or use longer clips)",
            )


def corpus_manifest(study: Study) -> Manifest:
    """The whole pre-training corpus as its loader sees it (the clips present under its root)."""
    from audiotransfer.data.corpora import load_corpus

    pre = study.spec.pretraining
    assert pre.root is not None  # load_study requires it whenever a subset state needs the corpus
    try:
        return load_corpus(str(pre.corpus), pre.root, **pre.options)
    except UserError as exc:
        raise UserError(f"{study.path}: field 'pretraining': {exc.message}", fix=exc.fix) from None


def build_subsets(study: Study) -> dict[str, Manifest]:
    """Every subset state's manifest, built from the pre-training segment lists and ontology."""
    from audiotransfer.data.corpora import SEGMENT_LISTS
    from audiotransfer.ontology import Ontology, build_subset, read_segments

    meta = study.spec.pretraining.metadata
    own_lists = str(study.spec.pretraining.corpus) in SEGMENT_LISTS
    if meta.ontology is None or not (meta.train or own_lists):
        raise UserError(
            f"{study.path}: fields 'pretraining.metadata.ontology' and 'pretraining.metadata.train' are needed "
            "to build subset states",
            fix="name the ontology JSON, the label index CSV and the training segment lists",
        )
    if own_lists:  # e.g. FSD50K: its ground truth is the segment list, its vocabulary the label index
        onto = Ontology.load(meta.ontology)
        segments, evals = corpus_segments(study)
    else:
        onto = Ontology.load(meta.ontology, meta.labels)
        segments = read_segments(meta.train, onto.trainable)
        evals = read_segments(meta.eval, onto.trainable) if meta.eval else None
    subsets = {}
    for name, spec in study.subset_states.items():
        try:
            subsets[name] = build_subset(name, spec, segments, onto, eval_segments=evals)
        except UserError as exc:
            raise UserError(f"{study.path}: field 'pretraining.states.{name}': {exc.message}", fix=exc.fix) from None
    return subsets


def corpus_segments(study: Study) -> tuple[Any, Any]:
    """(train, eval) segment lists that the pre-training corpus derives from its own ground truth."""
    import importlib

    from audiotransfer.data.corpora import SEGMENT_LISTS

    pre = study.spec.pretraining
    module, func = SEGMENT_LISTS[str(pre.corpus)].split(":")
    options = {k: v for k, v in pre.options.items() if k == "clip_seconds"}
    try:
        return getattr(importlib.import_module(module), func)(pre.root, pre.metadata.ontology, **options)
    except UserError as exc:
        raise UserError(f"{study.path}: field 'pretraining': {exc.message}", fix=exc.fix) from None


def prepare_features(
    study: Study, data: DataIndex, jobs: int = 1, progress: bool = True, distributed: bool = False
) -> None:
    """Extract the features of every clip the study uses, once per store; then check nothing is missing.

    `distributed`: over the connected Ray cluster (tasks writing their own shards, then one merge)."""

    def extract(manifest: Manifest, store_dir: Path, recipe: Frontend = study.features) -> None:
        if distributed:
            from audiotransfer.data.extract_ray import extract_distributed
            from audiotransfer.data.features import FeatureRecipe

            if not isinstance(recipe, FeatureRecipe):
                raise UserError(
                    f"{study.path}: store {store_dir}: distributed extraction writes log-mel features, "
                    f"not {recipe.describe()}",
                    fix="run this study with the local backend",
                )
            extract_distributed(
                manifest,
                store_dir,
                recipe,
                num_cpus=study.spec.resources.num_cpus,
                on_error="skip",
                progress=progress,
            )
        else:
            from audiotransfer.data.store import extract_features

            extract_features(manifest, store_dir, recipe, jobs=jobs, on_error="skip", progress=progress)

    if data.states:
        pool = corpus_manifest(study)
        used = set().union(*(set(Manifest.load(d.manifest).clips["clip_id"]) for d in data.states.values()))
        rows = np.flatnonzero(pool.clips["clip_id"].isin(used).to_numpy())
        store_dir = StudyDir(study.out).store(PRETRAIN_STORE)
        check_store(study, store_dir, str(study.spec.pretraining.corpus))
        extract(pool.take(rows), store_dir)
    stores = data.stores(study.features)
    for recipe, dataset in stores:
        check_store(study, dataset.store, dataset.corpus, recipe)
        extract(Manifest.load(dataset.manifest), dataset.store, recipe)
    for dataset in [*data.states.values(), *(d for _, d in stores)]:
        _check_complete(study, dataset)


def check_store(study: Study, store_dir: Path, corpus: str, recipe: Frontend | None = None) -> None:
    """Refuse a store extracted with another feature recipe (default: the study's `features`) or from
    another corpus (from its sidecar only: a damaged shard is for the extraction to repair, not a reason
    to refuse)."""
    import audiotransfer.data.store_format as store_format

    if not (store_dir / store_format.SIDECAR).exists():
        return
    need = (recipe or study.features).hash
    info = store_format.read_sidecar(store_dir)  # a store of a newer format is refused here
    recipe_hash, store_corpus = info.get("recipe_hash"), info.get("corpus", "")
    if recipe_hash != need or (store_corpus and store_corpus != corpus):
        raise UserError(
            f"{study.path}: feature store {store_dir} holds {store_corpus!r} features of recipe "
            f"{recipe_hash}, but the study needs {corpus!r} with recipe {need} "
            "(field 'features')",
            fix="give the study a new `out` directory, or delete that store to extract it again",
        )


def _check_complete(study: Study, dataset: Dataset) -> None:
    from audiotransfer.data.store import FeatureStore

    store = FeatureStore(dataset.store)
    try:
        store.rows(list(Manifest.load(dataset.manifest).clips["clip_id"]))
    except UserError as exc:
        raise UserError(
            f"{study.path}: {dataset.name}: some clips could not be extracted ({exc.message})",
            fix=f"see {dataset.store / 'errors.csv'}; remove or repair those files and run again",
        ) from None


def _save(manifest: Manifest, directory: Path) -> None:
    """Save the manifest unless an identical one is already there."""
    sidecar = directory / f"{manifest.name}.json"
    if not sidecar.exists() or _saved_hash(sidecar) != manifest.hash:
        manifest.save(directory)


def _describe(manifest: Manifest, directory: Path, store: Path) -> Dataset:
    """The dataset a manifest becomes once saved under `directory`."""
    split = manifest.clips["split"]
    return Dataset(
        name=manifest.name,
        manifest=directory / manifest.name,
        store=store,
        hash=manifest.hash,
        corpus=str(manifest.meta.get("corpus", "")),
        task_type=manifest.task_type,
        num_clips=manifest.num_clips,
        num_train=int((split == "train").sum()),
        num_classes=manifest.num_classes,
        labels=list(manifest.labels),
        clip_seconds=manifest.meta.get("clip_seconds"),
    )


def _saved_hash(sidecar: Path) -> Any:
    import json

    try:
        return json.loads(sidecar.read_text()).get("hash")
    except (OSError, ValueError):
        return None
