"""Controlled pre-training subsets: YAML specs -> `Manifest`s with chosen labels, clips and budgets.

A spec's fields compose in this fixed order (each step works on the result of the previous one):

1. label set: the label index, or those labels among `categories` and their descendants; minus
   `exclude` and its descendants;
2. `level: d`: each label collapses to its ancestors at ontology depth d (several under a DAG; labels
   already at depth <= d stay), the label set becomes those ancestors;
3. `num_classes: k`: k of the labels that have at least one clip, by `class_selection` (`random`:
   seeded, nested in k for one seed; `most_frequent` / `least_frequent`: by clip count, ties in label order);
4. clips: those carrying at least one label of the set, with targets restricted to it;
5. `fraction: f`: the round(f x n) of the n clips with the lowest stable key (hash of seed and YTID): an
   exact size, nested across fractions;
6. budgets: each label ranks its clips by key; a clip's priority is its best rank over its labels.
   `max_samples_per_class: m` keeps clips of priority < m (the first m clips of every class; a clip kept
   for one class also counts for its other labels), then `num_samples: n` keeps the n clips of lowest
   priority: classes as balanced as the data allow, seeded, deterministic and nested in n.

Evaluation segments go through steps 1-4 only and become split "test"; training clips are split "train".
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from scipy import sparse

from audiotransfer.errors import UserError, did_you_mean, unknown_name
from audiotransfer.fields import document_fields
from audiotransfer.files import load_yaml
from audiotransfer.manifest import Manifest
from audiotransfer.ontology.ontology import Ontology
from audiotransfer.ontology.segments import SegmentList, stable_keys
from audiotransfer.validation import NAME_RULE, is_name, validation_error


@document_fields
class SubsetSpec(BaseModel):
    """One subset; see the module docstring for how the fields compose."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = Field("", description="free text, kept in the manifest")
    categories: list[str] | None = Field(
        None,
        min_length=1,
        description="ontology classes (names or ids) whose descendants make the label set; None: every trainable label",
    )
    exclude: list[str] = Field([], description="classes removed with their descendants")
    level: int | None = Field(
        None, ge=0, description="collapse labels to their ancestors at this ontology depth (0: the root categories)"
    )
    num_classes: int | None = Field(None, ge=1, description="keep this many labels, chosen by class_selection")
    class_selection: Literal["random", "most_frequent", "least_frequent"] = Field(
        "random", description="how num_classes picks labels"
    )
    fraction: float | None = Field(
        None,
        gt=0,
        le=1,
        description="keep round(f x N) clips of lowest seeded hash (exact and nested: 0.01 lies inside 0.03)",
    )
    num_samples: int | None = Field(None, ge=1, description="clip budget: at most this many clips")
    max_samples_per_class: int | None = Field(None, ge=1, description="at most this many clips per label")
    seed: int = Field(0, description="seed of the random choices (classes, fraction, budgets)")


# ------------------------------------------------------------------ spec files
def load_subset_file(path: str | Path) -> dict[str, SubsetSpec]:
    """Named specs from YAML: `subsets:` maps names to specs; other top-level keys are shared defaults."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: subset spec file not found", fix="check the path of the YAML file")
    try:
        raw = load_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        problem = f": {getattr(exc, 'problem', '')}" if getattr(exc, "problem", None) else ""
        raise UserError(f"{path}: not valid YAML{where}{problem}", fix="fix the YAML syntax") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("subsets"), dict) or not raw["subsets"]:
        raise UserError(
            f"{path}: field 'subsets' is missing or empty",
            fix="write a top-level 'subsets:' mapping from subset names to specs",
        )
    defaults = {k: v for k, v in raw.items() if k != "subsets"}
    for key in defaults:
        if key not in SubsetSpec.model_fields:
            raise UserError(
                f"{path}: " + unknown_name("top-level field", key, SubsetSpec.model_fields, quote=True),
                fix=f"top-level keys are 'subsets' and shared defaults: {', '.join(SubsetSpec.model_fields)}",
            )
    specs = {}
    for name, entry in raw["subsets"].items():
        name = str(name)
        if not is_name(name):
            raise UserError(
                f"{path}: subset name {name!r} is not usable as a file name", fix=f"{NAME_RULE} (e.g. fraction_10pct)"
            )
        if entry is not None and not isinstance(entry, dict):
            raise UserError(f"{path}: subset {name!r} must be a mapping of fields", fix="e.g. 'fraction: 0.1'")
        specs[name] = _validate(path, name, {**defaults, **(entry or {})})
    return specs


def _validate(path: Path, name: str, fields: dict[str, Any]) -> SubsetSpec:
    try:
        return SubsetSpec(**fields)
    except ValidationError as exc:
        raise validation_error(path, exc, SubsetSpec, subject=f"subset {name!r}") from None


# ------------------------------------------------------------------ building
def build_subset(
    name: str,
    spec: SubsetSpec,
    segments: SegmentList,
    onto: Ontology,
    eval_segments: SegmentList | None = None,
) -> Manifest:
    """The manifest of one subset: training clips (split "train") and, if given, the evaluation clips
    carrying any of its labels (split "test").

    Here on the synthetic world's ontology fragment (real AudioSet ids and names) and a six-line segment list:

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from audiotransfer.data.synthetic import fragment_path
        >>> from audiotransfer.ontology import load_ontology, read_segments
        >>> onto = load_ontology(fragment_path())
        >>> dog, bird, speech = (onto.resolve(name) for name in ("Dog", "Bird", "Speech"))
        >>> labels = [dog, bird, speech, f"{dog},{speech}", bird, speech]
        >>> lines = [f'clip{i:07d},0.0,10.0,"{lab}"' for i, lab in enumerate(labels)]
        >>> csv = Path(tempfile.mkdtemp()) / "train_segments.csv"
        >>> _ = csv.write_text("# \\n# \\n# YTID, start_seconds, end_seconds, positive_labels\\n" + "\\n".join(lines))
        >>> segments = read_segments(csv, onto.trainable)
        >>> animal = build_subset("animal", SubsetSpec(categories=["Animal"]), segments, onto)
        >>> animal
        Manifest('animal', 4 clips x 24 labels, multilabel, splits train 4)
        >>> build_subset("two", SubsetSpec(level=0, num_classes=2, class_selection="most_frequent"), segments, onto)
        Manifest('two', 6 clips x 2 labels, multilabel, splits train 6)
    """
    mapping, labels = _label_mapping(spec, segments.label_ids, onto)
    train = _targets(segments, mapping)
    columns = _select_classes(spec, train, labels)
    mapping, labels, train = mapping[:, columns], [labels[c] for c in columns], train[:, columns]
    rows = np.flatnonzero(np.diff(train.indptr) > 0)
    if spec.fraction is not None:
        rows = _fraction(rows, segments.keys(spec.seed)[rows], spec.fraction)
    if spec.num_samples is not None or spec.max_samples_per_class is not None:
        rows = _apply_budgets(spec, train[rows], segments.keys(spec.seed)[rows], rows)
    if len(rows) == 0:
        raise UserError(
            f"subset {name!r} is empty: no training clip is left after its fields {_set_fields(spec)}",
            fix="widen 'categories', raise 'fraction' or the budgets, or check the segment lists",
        )
    parts = [_clips(segments, rows, "train")]
    blocks = [train[rows]]
    if eval_segments is not None:
        test = _targets(eval_segments, mapping)
        test_rows = np.flatnonzero(np.diff(test.indptr) > 0)
        parts.append(_clips(eval_segments, test_rows, "test"))
        blocks.append(test[test_rows])
        _check_disjoint(name, parts[0]["clip_id"], parts[1]["clip_id"])
    clips = pd.concat(parts, ignore_index=True)
    sources = list(segments.sources) + (list(eval_segments.sources) if eval_segments is not None else [])
    return Manifest(
        name=name,
        clips=clips,
        labels=labels,
        targets=sparse.vstack(blocks, format="csr"),
        label_names=[onto.name(lab) if lab in onto else lab for lab in labels],
        task_type="multilabel",
        meta={
            "spec": spec.model_dump(),
            "source": sources + onto.files,
            "clip_seconds": float(np.median(segments.end[rows] - segments.start[rows])),
        },
    )


def _label_mapping(spec: SubsetSpec, label_ids: list[str], onto: Ontology) -> tuple[sparse.csr_matrix, list[str]]:
    """Steps 1-2: a (list labels x subset labels) 0/1 matrix and the ordered subset label ids."""
    pool = set(label_ids)
    if spec.categories is not None:
        pool &= _with_descendants(spec.categories, onto, "categories")
    pool -= _with_descendants(spec.exclude, onto, "exclude")
    kept = [lab for lab in label_ids if lab in pool]
    if not kept:
        raise UserError(
            f"field 'categories' {spec.categories} minus 'exclude' {spec.exclude} leaves no trainable label",
            fix="choose categories that contain trainable labels (see `audiotransfer ontology show`)",
        )
    if spec.level is None:
        targets: dict[str, list[str] | set[str]] = {lab: [lab] for lab in kept}
        labels = kept
    else:
        missing = [lab for lab in kept if lab not in onto]
        if missing:
            raise UserError(
                f"field 'level': label {missing[0]!r} is not in the ontology ({onto.source})",
                fix="pass the ontology that the label index belongs to",
            )
        targets = {lab: onto.ancestors_at_depth(lab, spec.level) for lab in kept}
        wanted = set().union(*targets.values())
        labels = [c.id for c in onto if c.id in wanted]
    column = {lab: j for j, lab in enumerate(labels)}
    source = {lab: i for i, lab in enumerate(label_ids)}
    pairs = np.array([(source[lab], column[t]) for lab in kept for t in targets[lab]], dtype=np.int64)
    mapping = sparse.csr_matrix(
        (np.ones(len(pairs), dtype=np.int32), (pairs[:, 0], pairs[:, 1])), shape=(len(label_ids), len(labels))
    )
    return mapping, labels


def category_labels(categories: Iterable[str], onto: Ontology) -> list[str]:
    """The trainable labels under `categories` (names or ids, descendants included), in label order: the
    label set a subset of those categories draws from."""
    pool = _with_descendants(categories, onto, "categories")
    return [lab for lab in onto.trainable if lab in pool]


def _with_descendants(names: Iterable[str], onto: Ontology, field: str) -> set[str]:
    pool: set[str] = set()
    for name in names:
        try:
            cid = onto.resolve(name)
        except UserError as exc:
            raise UserError(f"field {field!r}: {exc.message}", fix=exc.fix) from None
        pool |= onto.descendants(cid) | {cid}
    return pool


def _targets(segments: SegmentList, mapping: sparse.csr_matrix) -> sparse.csr_matrix:
    labels = segments.labels.astype(np.int32) @ mapping
    labels.eliminate_zeros()
    return labels.astype(bool).tocsr()


def _select_classes(spec: SubsetSpec, targets: sparse.csr_matrix, labels: list[str]) -> np.ndarray:
    """Step 3: the kept columns, in label order (`random` orders classes by a stable key of their id)."""
    columns = np.arange(targets.shape[1])
    if spec.num_classes is None:
        return columns
    counts = np.asarray(targets.sum(axis=0)).ravel()
    eligible = columns[counts > 0]
    if spec.num_classes > len(eligible):
        raise UserError(
            f"field 'num_classes' is {spec.num_classes} but only {len(eligible)} classes of the label set have clips",
            fix=f"set num_classes to at most {len(eligible)} or widen 'categories'",
        )
    if spec.class_selection == "random":
        order = np.argsort(stable_keys((labels[c] for c in eligible), spec.seed), kind="stable")
    elif spec.class_selection == "most_frequent":
        order = np.argsort(-counts[eligible], kind="stable")
    else:
        order = np.argsort(counts[eligible], kind="stable")
    return np.sort(eligible[order[: spec.num_classes]])


def _apply_budgets(spec: SubsetSpec, targets: sparse.csr_matrix, keys: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Step 6 on the candidate `rows` (with their `targets` and `keys`): the kept rows, in list order."""
    priority = _priority(targets, keys)
    chosen = np.arange(len(rows))
    if spec.max_samples_per_class is not None:
        chosen = chosen[priority < spec.max_samples_per_class]
    if spec.num_samples is not None:
        if spec.num_samples > len(chosen):
            raise UserError(
                f"field 'num_samples' is {spec.num_samples} but only {len(chosen)} clips match the other fields",
                fix=f"set num_samples to at most {len(chosen)}, or widen the subset",
            )
        order = np.lexsort((keys[chosen], priority[chosen]))
        chosen = chosen[order[: spec.num_samples]]
    return rows[np.sort(chosen)]


def _priority(targets: sparse.csr_matrix, keys: np.ndarray) -> np.ndarray:
    """Best rank of each row among the rows of any of its labels, rows of a label ordered by key."""
    coo = targets.tocoo()
    order = np.lexsort((keys[coo.row], coo.col))
    starts = np.searchsorted(coo.col[order], np.arange(targets.shape[1]))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order)) - starts[coo.col[order]]
    by_row = np.lexsort((rank, coo.row))
    first = np.searchsorted(coo.row[by_row], np.arange(targets.shape[0]))
    return rank[by_row][first]


def _clips(segments: SegmentList, rows: np.ndarray, split: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "clip_id": segments.ytid.take(pa.array(rows, type=pa.int64())).to_pandas(),
            "start": segments.start[rows],
            "end": segments.end[rows],
            "split": split,
        }
    )


def _check_disjoint(name: str, train: pd.Series, test: pd.Series) -> None:
    shared = pc.is_in(pa.array(test), value_set=pa.array(train))
    if pc.any(shared).as_py():
        dup = test.iloc[int(np.flatnonzero(shared.to_numpy(zero_copy_only=False))[0])]
        raise UserError(
            f"subset {name!r}: YTID {dup!r} is in both the training and the evaluation lists",
            fix="pass evaluation segments that do not overlap the training lists",
        )


def _fraction(rows: np.ndarray, keys: np.ndarray, fraction: float) -> np.ndarray:
    """The round(fraction x len(rows)) rows of lowest key (ties by row), in row order: exact and nested."""
    order = np.lexsort((rows, keys))
    return np.sort(rows[order[: round(fraction * len(rows))]])


def _set_fields(spec: SubsetSpec) -> str:
    return ", ".join(f"{k}={v}" for k, v in spec.model_dump(exclude_defaults=True).items()) or "(none)"


# ----------------------------------------------------------------- many at once
def build_subsets(
    spec_file: str | Path,
    segments: SegmentList,
    onto: Ontology,
    out_dir: str | Path,
    eval_segments: SegmentList | None = None,
    names: Iterable[str] | None = None,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Build and save the subsets of a spec file (all, or `names`); return their summaries.

    Every subset's class names are checked before any is built, so a typo fails in a second. With the
    `segments` and `onto` of `build_subset`'s example:

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from audiotransfer.data.synthetic import fragment_path
        >>> from audiotransfer.ontology import load_ontology, read_segments
        >>> onto = load_ontology(fragment_path())
        >>> folder = Path(tempfile.mkdtemp())
        >>> _ = (folder / "segments.csv").write_text(f"# \\n# \\n# \\nclip0000001,0,10,{onto.resolve('Dog')}\\n"
        ...                                          f"clip0000002,0,10,{onto.resolve('Speech')}\\n")
        >>> segments = read_segments(folder / "segments.csv", onto.trainable)
        >>> _ = (folder / "subsets.yaml").write_text("subsets:\\n  animal: {categories: [Animal]}\\n"
        ...                                          "  all: {}\\n")
        >>> done = build_subsets(folder / "subsets.yaml", segments, onto, folder / "manifests", progress=False)
        >>> [(s["name"], s["num_clips"]) for s in done], sorted(p.name for p in (folder / "manifests").iterdir())
        ([('animal', 1), ('all', 2)], ['all.json', 'all.parquet', 'animal.json', 'animal.parquet'])
    """
    from audiotransfer.progress import progress as show_progress

    spec_file = Path(spec_file)
    specs = load_subset_file(spec_file)
    if names is not None:
        names = list(names)
        for wanted in names:
            if wanted not in specs:
                raise UserError(
                    f"{spec_file}: no subset named {wanted!r}" + did_you_mean(wanted, specs, quote=True),
                    fix=f"choose from: {', '.join(specs)}",
                )
        specs = {n: specs[n] for n in names}
    for name, spec in specs.items():
        with _naming(spec_file, name):
            _with_descendants(spec.categories or [], onto, "categories")
            _with_descendants(spec.exclude, onto, "exclude")
    summaries = []
    for name, spec in show_progress(specs.items(), desc="subsets", unit="subset", enabled=progress):
        with _naming(spec_file, name):
            manifest = build_subset(name, spec, segments, onto, eval_segments)
        summaries.append(json.loads(manifest.save(out_dir).read_text()))
    return summaries


@contextmanager
def _naming(spec_file: Path, name: str) -> Iterator[None]:
    """Name the spec file and subset in any user error raised inside."""
    try:
        yield
    except UserError as exc:
        message = exc.message if exc.message.startswith("subset ") else f"subset {name!r} {exc.message}"
        raise UserError(f"{spec_file}: {message}", fix=exc.fix) from None


# ------------------------------------------------------------------ printing
def summary_table(summaries: Iterable[dict[str, Any]]) -> str:
    """Aligned text: name, training clips, test clips, classes, labels per clip, hash."""
    rows = [
        [
            s["name"],
            str(s["splits"].get("train", s["num_clips"])),
            str(s["splits"].get("test", 0)),
            str(s["num_classes"]),
            f"{s['labels_per_clip']:.2f}",
            s["hash"],
        ]
        for s in summaries
    ]
    header = ["name", "clips", "test clips", "classes", "labels/clip", "hash"]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(r, widths, strict=True)))
        for r in [header, *rows]
    ]
    return "\n".join(lines)


def describe_manifest(path: str | Path, top: int = 10) -> str:
    """One saved manifest's summary, its spec and sources, and its `top` largest classes."""
    manifest = Manifest.load(path)
    summary = manifest.summary()
    counts = pd.Series(manifest.clips_per_class(), index=manifest.label_names).sort_values(
        ascending=False, kind="stable"
    )
    spec = summary["meta"].get("spec")
    fields = SubsetSpec.model_fields
    if spec is None:
        spec_text = "- (not built from a subset spec)"
    else:
        spec_text = str(
            {k: v for k, v in spec.items() if k not in fields or fields[k].default != v} or "{} (all clips)"
        )
    lines = [
        f"{summary['name']}  (hash {summary['hash']})",
        f"  clips: {summary['num_clips']}  {summary['splits']}",
        f"  classes: {summary['num_classes']}   labels per clip: {summary['labels_per_clip']:.2f}",
        f"  spec: {spec_text}",
        f"  sources: {', '.join(summary['meta'].get('source', [])) or '-'}",
        "  largest classes (clips, all splits):",
    ]
    width = max((len(n) for n in counts.index[:top]), default=0)
    lines += [f"    {name.ljust(width)}  {count}" for name, count in counts.iloc[:top].items()]
    return "\n".join(lines)
