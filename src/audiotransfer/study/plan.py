"""The plan: a study as a graph of runs, each with a stable readable id, its inputs and its cost.

Pre-training runs come first; every fine-tune run depends on the pre-training run of its state (states
given as checkpoints, and the scratch control, have none). A run id is also its folder under `runs/`:
`pretrain/{state}` and `finetune/{state}/{task}/{protocol}/seed{n}`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from graphlib import TopologicalSorter
from pathlib import Path
from typing import Any, Literal

from audiotransfer.errors import UserError
from audiotransfer.study.layout import StudyDir, finetune_id, pretrain_id
from audiotransfer.study.prepare import DataIndex
from audiotransfer.study.spec import SCRATCH, Study
from audiotransfer.training.recipe import RUNTIME_FIELDS, TrainRecipe


@dataclass(frozen=True)
class Run:
    """One training run: what it trains on, from what, with which recipe, and where it writes.

    Built with `Run.pretrain(...)` or `Run.finetune(...)`, which derive its id and folder from the layout.
    """

    run_id: str
    kind: Literal["pretrain", "finetune"]
    state: str
    task: str | None
    protocol: str | None
    seed: int | None
    out_dir: Path
    recipe: TrainRecipe
    manifest: Path
    store: Path
    init: str | None  # checkpoint the run starts from (None: random initialisation)
    parent: str | None  # run id of the pre-training run it depends on
    subset_hash: str | None  # content hash of the state's pre-training subset
    data_hash: str  # content hash of the manifest this run trains on
    num_train_clips: int
    keep_checkpoint: bool = False  # keep checkpoint.pt once the run is done (only resuming needs it)
    frontend: str | None = None  # recipe hash of the state's own front-end (None: the study's `features`)
    format: str | None = None  # a public pre-trained family the run starts from (models.public.PUBLIC_FORMATS)
    embedding_cache: Path | None = None  # where linear probes share their backbone's embeddings

    @classmethod
    def pretrain(
        cls,
        *,
        folder: StudyDir,
        state: str,
        recipe: TrainRecipe,
        manifest: Path,
        store: Path,
        data_hash: str,
        num_train_clips: int,
        keep_checkpoint: bool = False,
    ) -> Run:
        """The pre-training run of a subset state (its data hash is also the state's subset hash)."""
        run_id = pretrain_id(state)
        return cls(
            run_id,
            "pretrain",
            state,
            None,
            None,
            None,
            folder.run_dir(run_id),
            recipe,
            manifest,
            store,
            None,
            None,
            data_hash,
            data_hash,
            num_train_clips,
            keep_checkpoint,
        )

    @classmethod
    def finetune(
        cls,
        *,
        folder: StudyDir,
        state: str,
        task: str,
        protocol: str,
        seed: int,
        recipe: TrainRecipe,
        manifest: Path,
        store: Path,
        data_hash: str,
        num_train_clips: int,
        init: str | None = None,
        parent: str | None = None,
        subset_hash: str | None = None,
        keep_checkpoint: bool = False,
        frontend: str | None = None,
        format: str | None = None,
    ) -> Run:
        """One fine-tuning run of a state on a task under a protocol and seed."""
        run_id = finetune_id(state, task, protocol, seed)
        return cls(
            run_id,
            "finetune",
            state,
            task,
            protocol,
            seed,
            folder.run_dir(run_id),
            recipe,
            manifest,
            store,
            init,
            parent,
            subset_hash,
            data_hash,
            num_train_clips,
            keep_checkpoint,
            frontend,
            format,
            folder.embeddings,
        )

    @property
    def cost(self) -> int:
        """Clip-epochs through the network: training clips x epochs; a linear probe passes its clips once
        (it trains the head on embeddings computed once, which costs next to nothing)."""
        return self.num_train_clips * (1 if self.protocol == "linear" else self.epochs)

    @property
    def epochs(self) -> int:
        """Epochs the run trains for (derived from `steps` when the recipe sets it)."""
        return self.recipe.epochs_for(math.ceil(self.num_train_clips / self.recipe.batch_size))

    @property
    def config(self) -> dict[str, Any]:
        """Everything that determines the run's result (recorded in the store, compared on resume)."""
        init = self.parent or self.init  # a parent run id, not its path: studies may be moved
        recipe = self.recipe.model_dump(mode="json", exclude=set(RUNTIME_FIELDS))
        config = {
            "recipe": recipe,
            "data": self.manifest.name,
            "data_hash": self.data_hash,
            "init": init,
            "subset_hash": self.subset_hash,
        }
        config |= {"frontend": self.frontend} if self.frontend else {}
        return config | ({"format": self.format} if self.format else {})

    def record(self, code_version: str) -> dict[str, Any]:
        """The run's row for `ResultStore.register`."""
        return {
            "run_id": self.run_id,
            "kind": self.kind,
            "state": self.state,
            "task": self.task,
            "protocol": self.protocol,
            "seed": self.seed,
            "config": self.config,
            "subset_hash": self.subset_hash,
            "parent_run": self.parent,
            "checkpoint": self.init,
            "code_version": code_version,
        }


@dataclass
class Plan:
    """The runs of a study in dependency order."""

    study: Study
    runs: dict[str, Run] = field(default_factory=dict)

    def __iter__(self) -> Iterator[Run]:
        return iter(self.runs.values())

    def __len__(self) -> int:
        return len(self.runs)

    def dependencies(self, run_id: str) -> list[str]:
        parent = self.runs[run_id].parent
        return [parent] if parent else []

    def order(self) -> list[str]:
        graph = {rid: self.dependencies(rid) for rid in self.runs}
        return list(TopologicalSorter(graph).static_order())

    def dependents(self, run_id: str) -> list[str]:
        """Every run that needs `run_id` to finish first (transitively)."""
        children = [r.run_id for r in self.runs.values() if r.parent == run_id]
        return children + [d for c in children for d in self.dependents(c)]

    @property
    def total_cost(self) -> int:
        return sum(r.cost for r in self.runs.values())


def make_plan(study: Study, data: DataIndex) -> Plan:
    """All runs of `study` over the prepared data (manifests), validated to write distinct folders."""
    plan = Plan(study)
    folder = StudyDir(study.out)
    keep = study.spec.keep_checkpoints
    inits: dict[str, tuple[str | None, str | None]] = {SCRATCH: (None, None)}
    for state, subset in data.states.items():
        run = Run.pretrain(
            folder=folder,
            state=state,
            recipe=study.pretrain_recipe,
            manifest=subset.manifest,
            store=subset.store,
            data_hash=subset.hash,
            num_train_clips=subset.num_train,
            keep_checkpoint=keep,
        )
        _add(plan, run)
        inits[state] = (str(folder.model(run.run_id)), run.run_id)
    formats: dict[str, str] = {}
    for state, ckpt in study.checkpoint_states.items():
        inits[state] = (str(ckpt.checkpoint), None)
        if ckpt.public:
            formats[state] = ckpt.format
    for state in study.states:
        init, parent = inits[state]
        subset_hash = data.states[state].hash if state in data.states else None
        own = data.frontends.get(state)
        for task in data.tasks:
            dataset = data.task_data(state, task)
            for protocol in study.spec.protocols:
                base = study.finetune_recipes[task][protocol]
                for seed in study.spec.seeds:
                    _add(
                        plan,
                        Run.finetune(
                            folder=folder,
                            state=state,
                            task=task,
                            protocol=protocol,
                            seed=seed,
                            recipe=base.replace(seed=seed),
                            manifest=dataset.manifest,
                            store=dataset.store,
                            data_hash=dataset.hash,
                            num_train_clips=dataset.num_train,
                            init=init,
                            parent=parent,
                            subset_hash=subset_hash,
                            keep_checkpoint=keep,
                            frontend=own.hash if own else None,
                            format=formats.get(state),
                        ),
                    )
    return plan


def _add(plan: Plan, run: Run) -> None:
    clash = [r.run_id for r in plan.runs.values() if str(r.out_dir).lower() == str(run.out_dir).lower()]
    if clash:
        raise UserError(
            f"{plan.study.path}: runs {clash[0]!r} and {run.run_id!r} would write the same folder {run.out_dir}",
            fix="rename the states or tasks involved",
        )
    plan.runs[run.run_id] = run


def check_resumable(plan: Plan, finished: dict[str, str]) -> None:
    """A finished run whose config differs from the plan's means the study changed under its results."""
    changed = [
        plan.runs[run_id]
        for run_id, config in finished.items()
        if run_id in plan.runs and json.loads(config) != json.loads(json.dumps(plan.runs[run_id].config, default=str))
    ]
    if changed:
        folders = [str(r.out_dir) for r in changed]
        raise UserError(
            f"{plan.study.path}: {len(changed)} finished run(s) ({', '.join(r.run_id for r in changed[:3])}"
            f"{', ...' if len(changed) > 3 else ''}) used another configuration than the study now gives "
            "(recipe, data or initial checkpoint changed); nothing was changed",
            fix="give the changed study a new `out`, or delete these run folders to redo them: "
            + " ".join(folders[:6])
            + (f" (and {len(folders) - 6} more)" if len(folders) > 6 else ""),
        )
