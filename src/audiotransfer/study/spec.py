"""The study spec: one YAML file declaring the whole pre-train x fine-tune grid, validated before any run.

A study names its pre-training states (subset specs over a corpus, or existing checkpoints), its downstream
tasks, protocols, seeds and recipe overrides. `load_study` checks all of it up front (schema, corpus names,
paths, protocols, recipe fields, names that would collide on disk) and raises one `UserError` naming the
file, the field and the fix, with close-name suggestions, so that a typo never surfaces hours into a run.
"""

from __future__ import annotations

import copy
import json
import re
import types
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from audiotransfer.errors import UserError, cut, did_you_mean, unknown_name
from audiotransfer.files import load_yaml

NAME = r"^[A-Za-z0-9][A-Za-z0-9_+-]*$"  # no dots: Manifest.load reads "a.3" as suffix ".3"
PROTOCOL = re.compile(r"^(finetune|linear|freeze:[1-9][0-9]*)$")
PROTOCOLS = ("finetune", "linear", "freeze:k")
SCRATCH = "scratch"
CheckpointFormat = Literal["auto", "panns", "autrainer", "audiotransfer"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Metadata(_Strict):
    """AudioSet-style metadata of the pre-training corpus: what subset specs are resolved against."""

    ontology: Path | None = None
    labels: Path | None = None
    train: list[Path] = []
    eval: list[Path] = []


class Pretraining(_Strict):
    """The pre-training corpus and the model states to build from it (or to import)."""

    corpus: str | None = None
    root: Path | None = None
    options: dict[str, Any] = {}
    metadata: Metadata = Metadata()
    subsets_file: Path | None = None
    states: dict[str, dict[str, Any]] = {}


class Task(_Strict):
    """A downstream task: a corpus under a root, its loader options and per-task recipe overrides."""

    corpus: str
    root: Path
    options: dict[str, Any] = {}
    recipe: dict[str, Any] = {}


class Recipes(_Strict):
    """Overrides of the study defaults (`training.PRETRAIN`, `training.FINETUNE`): fields of TrainRecipe.

    A fine-tune's recipe is FINETUNE < `finetune` < `protocols[protocol]` < the task's own `recipe`.
    """

    pretrain: dict[str, Any] = {}
    finetune: dict[str, Any] = {}
    protocols: dict[str, dict[str, Any]] = {}


class Resources(_Strict):
    """What one run needs; the Ray backend schedules each run with these."""

    num_cpus: Annotated[float, Field(ge=0, allow_inf_nan=False, strict=True)] = 1.0
    num_gpus: Annotated[float, Field(ge=0, allow_inf_nan=False, strict=True)] = 0.0


class StudySpec(_Strict):
    """The YAML schema of a study."""

    name: str
    out: Path
    features: str | dict[str, Any] = "panns16k"
    pretraining: Pretraining = Pretraining()
    downstream: dict[str, Task]
    protocols: list[str] = ["finetune"]
    seeds: list[Annotated[int, Field(ge=0, le=2**63 - 1, strict=True)]] = [1, 2, 3]  # strict: YAML 1.1 `yes` is no 1
    recipes: Recipes = Recipes()
    include_scratch: bool = True
    keep_checkpoints: bool = False  # a finished run's checkpoint.pt (resume state) is deleted unless true
    resources: Resources = Resources()

    @field_validator("protocols")
    @classmethod
    def _protocols(cls, value: list[str]) -> list[str]:
        for p in value:
            if not PROTOCOL.match(p):
                raise ValueError(
                    unknown_name("protocol", p, ["finetune", "linear", "freeze:1", "freeze:2"])
                    + f"; use one of {', '.join(PROTOCOLS)}"
                )
        return value


@dataclass(frozen=True)
class CheckpointState:
    """A state given as an existing checkpoint (imported PANNs/autrainer weights or an earlier run)."""

    checkpoint: Path
    format: CheckpointFormat = "auto"  # a declared one is checked against the file while planning


@dataclass
class Study:
    """A validated study: the spec with absolute paths, resolved recipes and classified states."""

    path: Path
    spec: StudySpec
    out: Path
    features: Any  # FeatureRecipe
    subset_states: dict[str, Any] = field(default_factory=dict)  # name -> SubsetSpec
    checkpoint_states: dict[str, CheckpointState] = field(default_factory=dict)
    pretrain_recipe: Any = None  # TrainRecipe
    finetune_recipes: dict[str, dict[str, Any]] = field(default_factory=dict)  # task -> protocol -> TrainRecipe

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def states(self) -> list[str]:
        """All pre-training states in spec order, the scratch control last."""
        names = list(self.spec.pretraining.states)
        return [*names, SCRATCH] if self.spec.include_scratch else names

    @property
    def identity(self) -> dict[str, str]:
        """What binds a results store to this study: name, pre-training corpus, feature recipe."""
        return {
            "name": self.name,
            "pretraining_corpus": str(self.spec.pretraining.corpus),
            "feature_recipe": self.features.hash,
        }

    def resolved(self) -> dict[str, Any]:
        """The spec as plain data with absolute paths (written to `STUDY/study.yaml`)."""
        return json.loads(self.spec.model_dump_json())


def load_study(path: str | Path, overrides: Mapping[str, Any] | None = None) -> Study:
    """Read and validate a study YAML (optionally deep-merged with `overrides`); raise UserError on any flaw."""
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise UserError(f"{path}: study file not found", fix="pass the path of a study YAML file")
    try:
        raw = load_yaml(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: not valid YAML ({exc})", fix="fix the YAML syntax") from None
    if not isinstance(raw, dict):
        raise UserError(f"{path}: a study is a mapping of fields", fix="see examples/studies/demo.yaml")
    data = deep_merge(raw, overrides or {})
    try:
        spec = StudySpec.model_validate(data)
    except ValidationError as exc:
        raise _validation_error(path, exc, StudySpec) from None
    spec = _absolute(spec, path.parent)
    study = Study(path=path, spec=spec, out=spec.out, features=_features(path, spec.features))
    _check_names(path, spec)
    _check_corpora(path, spec)
    _classify_states(path, study)
    _resolve_recipes(path, study)
    return study


def deep_merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `update` merged in, recursively for nested mappings (a None value deletes a key)."""
    merged = copy.deepcopy(dict(base))
    for key, value in update.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


# ---------------------------------------------------------------------- checks
def _absolute(spec: StudySpec, base: Path) -> StudySpec:
    """Paths in the spec are relative to the spec file's folder; make them absolute."""

    def fix(p: Path | None) -> Path | None:
        return None if p is None else (base / p.expanduser()).resolve()

    pre = spec.pretraining
    meta = pre.metadata.model_copy(
        update={
            "ontology": fix(pre.metadata.ontology),
            "labels": fix(pre.metadata.labels),
            "train": [fix(p) for p in pre.metadata.train],
            "eval": [fix(p) for p in pre.metadata.eval],
        }
    )
    states = {
        name: {**s, "checkpoint": str(fix(Path(_path_field(base, name, s))))} if "checkpoint" in s else s
        for name, s in pre.states.items()
    }
    pre = pre.model_copy(
        update={
            "root": fix(pre.root),
            "subsets_file": fix(pre.subsets_file),
            "metadata": meta,
            "states": states,
        }
    )
    tasks = {n: t.model_copy(update={"root": fix(t.root)}) for n, t in spec.downstream.items()}
    return spec.model_copy(update={"out": fix(spec.out), "pretraining": pre, "downstream": tasks})


def _path_field(base: Path, name: str, state: Mapping[str, Any]) -> str:
    """A state's `checkpoint`, which must be a path (YAML may give a number or a list)."""
    value = state["checkpoint"]
    if not isinstance(value, str):
        raise UserError(f"{base}: field 'pretraining.states.{name}.checkpoint' is {cut(value)}, not a path",
                        fix="give the checkpoint's file path as a string")
    return value


def _check_names(path: Path, spec: StudySpec) -> None:
    """Names become directories: they must be path-safe and must not collide (also case-insensitively)."""
    groups = {"pretraining.states": list(spec.pretraining.states), "downstream": list(spec.downstream)}
    for where, names in groups.items():
        seen: dict[str, str] = {}
        for name in names:
            if not re.match(NAME, name):
                raise UserError(
                    f"{path}: field '{where}.{name}': name is not usable as a folder name",
                    fix="use letters, digits and _ + - only",
                )
            if name.lower() in seen:
                raise UserError(
                    f"{path}: field '{where}': {seen[name.lower()]!r} and {name!r} would write the same folder",
                    fix="rename one of them",
                )
            seen[name.lower()] = name
    if spec.include_scratch and SCRATCH in {s.lower() for s in spec.pretraining.states}:
        raise UserError(
            f"{path}: field 'pretraining.states.{SCRATCH}': the name is reserved for the random-init control, "
            "and runs of both would write the same folder",
            fix="rename the state, or set include_scratch: false",
        )
    for where, values in (("protocols", spec.protocols), ("seeds", spec.seeds)):
        counts = Counter(str(v) for v in values)
        dupes = sorted(k for k, n in counts.items() if n > 1)
        if dupes:
            raise UserError(
                f"{path}: field '{where}' lists {', '.join(dupes)} twice: two runs would write the same folder",
                fix="list each value once",
            )
    if not spec.downstream:
        raise UserError(f"{path}: field 'downstream' is empty", fix="name at least one downstream task")
    if not spec.pretraining.states and not spec.include_scratch:
        raise UserError(
            f"{path}: field 'pretraining.states' is empty and include_scratch is false: the study has nothing to run",
            fix="name at least one pre-training state, or set include_scratch: true",
        )
    if not spec.seeds or not spec.protocols:
        raise UserError(f"{path}: fields 'seeds' and 'protocols' need at least one value each")


def _check_corpora(path: Path, spec: StudySpec) -> None:
    from audiotransfer.data.corpora import CORPORA

    pre = spec.pretraining
    needs_corpus = any("checkpoint" not in s for s in pre.states.values())
    places = [(f"downstream.{n}", t.corpus, t.root) for n, t in spec.downstream.items()]
    if needs_corpus:
        if pre.corpus is None or pre.root is None:
            raise UserError(
                f"{path}: fields 'pretraining.corpus' and 'pretraining.root' are needed by subset states",
                fix="name the pre-training corpus and its folder, or give every state as a checkpoint",
            )
        places.insert(0, ("pretraining", pre.corpus, pre.root))
    for where, corpus, root in places:
        if corpus not in CORPORA:
            raise UserError(
                f"{path}: field '{where}.corpus': " + unknown_name("corpus", corpus, CORPORA),
                fix=f"use one of: {', '.join(CORPORA)}",
            )
        if not Path(root).exists():
            raise UserError(
                f"{path}: field '{where}.root': folder {root} does not exist",
                fix="point it at the corpus folder (relative paths are relative to the study file)",
            )
    for key, value in pre.metadata:
        for p in value if isinstance(value, list) else [value]:
            if p is not None and not Path(p).exists():
                raise UserError(
                    f"{path}: field 'pretraining.metadata.{key}': file {p} does not exist",
                    fix="fetch the metadata first or correct the path",
                )


def _features(path: Path, features: str | dict[str, Any]) -> Any:
    from audiotransfer.data.features import RECIPES, FeatureRecipe

    if isinstance(features, str):
        if features not in RECIPES:
            raise UserError(
                f"{path}: field 'features': " + unknown_name("recipe", features, RECIPES),
                fix=f"use one of {', '.join(RECIPES)} or give the recipe's fields",
            )
        return RECIPES[features]
    fields = dict(features)
    base = RECIPES.get(fields.pop("base", ""), FeatureRecipe())
    _check_keys(path, "features", fields, FeatureRecipe.model_fields)
    try:
        return FeatureRecipe.model_validate({**base.model_dump(), **fields})
    except ValidationError as exc:
        raise _validation_error(path, exc, FeatureRecipe, prefix="features") from None


def _classify_states(path: Path, study: Study) -> None:
    """Each state is a checkpoint, a named subset of `subsets_file`, or inline SubsetSpec fields."""
    from audiotransfer.ontology import SubsetSpec, load_subset_file

    pre = study.spec.pretraining
    named = load_subset_file(pre.subsets_file) if pre.subsets_file else {}
    for name, fields in pre.states.items():
        where = f"pretraining.states.{name}"
        if "checkpoint" in fields:
            _check_keys(path, where, fields, {"checkpoint": 0, "format": 0})
            ckpt = Path(fields["checkpoint"])
            if not ckpt.exists():
                raise UserError(
                    f"{path}: field '{where}.checkpoint': file {ckpt} does not exist", fix="correct the checkpoint path"
                )
            fmt = fields.get("format", "auto")
            if fmt not in get_args(CheckpointFormat):
                raise UserError(
                    f"{path}: field '{where}.format': unknown format {fmt!r}",
                    fix=f"use one of {', '.join(get_args(CheckpointFormat))}",
                )
            study.checkpoint_states[name] = CheckpointState(ckpt, fmt)
        elif "subset" in fields:
            _check_keys(path, where, fields, {"subset": 0})
            if fields["subset"] not in named:
                raise UserError(
                    f"{path}: field '{where}.subset': no subset {fields['subset']!r} in "
                    f"{pre.subsets_file or '(no subsets_file given)'}"
                    + did_you_mean(str(fields["subset"]), named),
                    fix="name a subset of pretraining.subsets_file, or give the subset's fields inline",
                )
            study.subset_states[name] = named[fields["subset"]]
        else:
            _check_keys(path, where, fields, SubsetSpec.model_fields)
            try:
                study.subset_states[name] = SubsetSpec.model_validate(fields)
            except ValidationError as exc:
                raise _validation_error(path, exc, SubsetSpec, prefix=where) from None


def _resolve_recipes(path: Path, study: Study) -> None:
    from audiotransfer.training import FINETUNE, PRETRAIN, TrainRecipe

    spec = study.spec

    def build(base: Any, where: str, overrides: Mapping[str, Any]) -> Any:
        _check_keys(path, where, overrides, TrainRecipe.model_fields)
        try:
            return TrainRecipe.model_validate({**base.model_dump(), **overrides})
        except ValidationError as exc:
            raise _validation_error(path, exc, TrainRecipe, prefix=where) from None

    study.pretrain_recipe = build(PRETRAIN, "recipes.pretrain", spec.recipes.pretrain)
    _check_keys(path, "recipes.finetune", spec.recipes.finetune, TrainRecipe.model_fields)
    for protocol, overrides in spec.recipes.protocols.items():
        _check_keys(path, f"recipes.protocols.{protocol}", overrides, TrainRecipe.model_fields)
        if protocol not in spec.protocols:
            raise UserError(
                f"{path}: field 'recipes.protocols.{protocol}': the study does not run protocol {protocol!r}"
                + did_you_mean(protocol, spec.protocols),
                fix=f"use one of the study's protocols: {', '.join(spec.protocols)}",
            )
    for name, task in spec.downstream.items():
        study.finetune_recipes[name] = {
            protocol: build(
                FINETUNE,
                f"downstream.{name}.recipe",
                {
                    **spec.recipes.finetune,
                    **spec.recipes.protocols.get(protocol, {}),
                    **task.recipe,
                    "protocol": protocol,
                },
            )
            for protocol in spec.protocols
        }


def _check_keys(path: Path, where: str, given: Mapping[str, Any], allowed: Mapping[str, Any]) -> None:
    for key in given:
        if key not in allowed:
            raise UserError(
                f"{path}: field '{where}.{key}' is not a known field" + did_you_mean(str(key), allowed),
                fix=f"known fields: {', '.join(allowed)}",
            )


# ------------------------------------------------------------ error messages
def _validation_error(path: Path, exc: ValidationError, model: type[BaseModel], prefix: str = "") -> UserError:
    """The first pydantic error as a UserError naming file, dotted field and a fix (with suggestions)."""
    err = exc.errors()[0]
    loc = [str(p) for p in err["loc"]]
    where = ".".join([prefix, *loc] if prefix else loc) or "(top level)"
    if err["type"] == "extra_forbidden":
        allowed = _fields_at(model, loc[:-1])
        return UserError(
            f"{path}: field '{where}' is not a known field" + did_you_mean(loc[-1], allowed),
            fix=f"known fields here: {', '.join(allowed)}",
        )
    if err["type"] == "missing":
        return UserError(f"{path}: field '{where}' is required", fix="add it (see examples/studies/demo.yaml)")
    return UserError(f"{path}: field '{where}': {err['msg']}", fix=f"got {cut(err.get('input'))}; correct the value"
                     + (" (YAML 1.1 reads yes/no/on/off as booleans)" if isinstance(err.get("input"), bool) else ""))


def _fields_at(model: Any, loc: list[str]) -> list[str]:
    """Field names of the pydantic model reached by following `loc` (dict keys skipped)."""
    for part in loc:
        if isinstance(model, type) and issubclass(model, BaseModel) and part in model.model_fields:
            model = model.model_fields[part].annotation
        model = _unwrap(model)
    return list(model.model_fields) if isinstance(model, type) and issubclass(model, BaseModel) else []


def _unwrap(annotation: Any) -> Any:
    """The model inside Optional[...] or dict[str, ...]."""
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        models = [a for a in get_args(annotation) if isinstance(a, type) and issubclass(a, BaseModel)]
        return models[0] if models else annotation
    if origin is dict:
        return _unwrap(get_args(annotation)[1])
    return annotation
