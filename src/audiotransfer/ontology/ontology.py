"""The AudioSet class graph: look-ups by id or name, DAG navigation, depths and the trainable labels.

The ontology is a DAG (a few classes have several parents), so `parents`, `ancestors` and
`ancestors_at_depth` return sets, and `depth` is the length of the shortest path from a root.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pandas as pd

from audiotransfer.errors import UserError, did_you_mean


@dataclass(frozen=True)
class OntologyClass:
    """One ontology node; `abstract` classes are never labels, `blacklist` ones are excluded from training."""

    id: str
    name: str
    child_ids: tuple[str, ...]
    parent_ids: tuple[str, ...]
    abstract: bool = False
    blacklist: bool = False
    description: str = ""


class Ontology:
    """Classes by id (in file order) plus the ordered trainable label ids."""

    def __init__(
        self, classes: Sequence[OntologyClass], trainable: Sequence[str], files: Sequence[str | Path] = ()
    ) -> None:
        self.files = [str(f) for f in files]
        self._classes = {c.id: c for c in classes}
        self._by_name = {c.name.lower(): c.id for c in classes}
        self.trainable: list[str] = list(trainable)

    # ------------------------------------------------------------------ load
    @classmethod
    def load(cls, ontology_json: str | Path, labels_csv: str | Path | None = None) -> Ontology:
        """Read `ontology.json` and, optionally, `class_labels_indices.csv` (the ordered trainable labels).

        Without a labels file, the trainable labels are the classes that are neither abstract nor
        blacklisted, in file order (AudioSet's own list differs slightly: pass its CSV for AudioSet).
        """
        path = Path(ontology_json)
        raw = _read_json(path)
        classes = _parse_classes(raw, path)
        if labels_csv is None:
            trainable = [c.id for c in classes if not (c.abstract or c.blacklist)]
        else:
            trainable = read_label_index(labels_csv, {c.id for c in classes})
        files: list[str | Path] = [path] if labels_csv is None else [path, labels_csv]
        return cls(classes, trainable, files=files)

    @property
    def source(self) -> str:
        """The files it was read from, for messages."""
        return ", ".join(self.files) or "in memory"

    # --------------------------------------------------------------- look-up
    def __len__(self) -> int:
        return len(self._classes)

    def __iter__(self) -> Iterator[OntologyClass]:
        return iter(self._classes.values())

    def __contains__(self, key: object) -> bool:
        return key in self._classes

    def __getitem__(self, class_id: str) -> OntologyClass:
        try:
            return self._classes[class_id]
        except KeyError:
            raise UserError(
                f"ontology ({self.source}): no class with id {class_id!r}",
                fix="use an id from the ontology, or a class name",
            ) from None

    def resolve(self, name_or_id: str) -> str:
        """The id of a class given by id or by case-insensitive name; unknown -> UserError with suggestions."""
        key = name_or_id.strip()
        if key in self._classes:
            return key
        if key.lower() in self._by_name:
            return self._by_name[key.lower()]
        raise UserError(
            f"unknown class {name_or_id!r}" + did_you_mean(key, [c.name for c in self._classes.values()], quote=True),
            fix="use a class name or id from the ontology (see `audiotransfer ontology tree`)",
        )

    def name(self, class_id: str) -> str:
        return self[class_id].name

    @cached_property
    def label_index(self) -> dict[str, int]:
        """Column of each trainable label id."""
        return {lab: i for i, lab in enumerate(self.trainable)}

    # ------------------------------------------------------------ navigation
    @cached_property
    def roots(self) -> list[str]:
        """Classes without a parent, in file order."""
        return [c.id for c in self._classes.values() if not c.parent_ids]

    def children(self, class_id: str) -> list[str]:
        return list(self[class_id].child_ids)

    def parents(self, class_id: str) -> list[str]:
        return list(self[class_id].parent_ids)

    def ancestors(self, class_id: str) -> set[str]:
        """All classes above `class_id` on any path to a root (not itself)."""
        return self._closure(class_id, lambda c: c.parent_ids)

    def descendants(self, class_id: str) -> set[str]:
        """All classes below `class_id` (not itself)."""
        return self._closure(class_id, lambda c: c.child_ids)

    def _closure(self, class_id: str, step: Callable[[OntologyClass], Iterable[str]]) -> set[str]:
        seen: set[str] = set()
        todo = list(step(self[class_id]))
        while todo:
            cid = todo.pop()
            if cid not in seen:
                seen.add(cid)
                todo.extend(step(self._classes[cid]))
        return seen

    @cached_property
    def _depths(self) -> dict[str, int]:
        depth = dict.fromkeys(self.roots, 0)
        queue = deque(self.roots)
        while queue:
            cid = queue.popleft()
            for child in self._classes[cid].child_ids:
                if child not in depth:
                    depth[child] = depth[cid] + 1
                    queue.append(child)
        return depth

    def depth(self, class_id: str) -> int:
        """Length of the shortest path from a root (roots are 0)."""
        self[class_id]
        return self._depths[class_id]

    def ancestors_at_depth(self, class_id: str, level: int) -> set[str]:
        """The classes at depth `level` that `class_id` descends from (itself when its depth is <= level)."""
        if self.depth(class_id) <= level:
            return {class_id}
        return {a for a in self.ancestors(class_id) if self._depths[a] == level}

    def trainable_descendants(self, class_id: str) -> list[str]:
        """Trainable labels among the class and its descendants, in label order."""
        pool = self.descendants(class_id) | {class_id}
        return [lab for lab in self.trainable if lab in pool]

    def describe(self, name_or_id: str) -> str:
        """A few lines on one class: id, name, flags, depth, parents, children, trainable descendants."""
        node = self[self.resolve(name_or_id)]
        flags = [f for f in ("abstract", "blacklist") if getattr(node, f)]
        flags.append(f"label #{self.label_index[node.id]}" if node.id in self.label_index else "not a label")
        lines = [
            f"{node.name} ({node.id})",
            f"  flags:    {', '.join(flags)}",
            f"  depth:    {self.depth(node.id)}",
            f"  parents:  {self._names(node.parent_ids) or '(root)'}",
            f"  children: {self._names(node.child_ids) or '(none)'}",
            f"  trainable labels in its subtree: {len(self.trainable_descendants(node.id))}",
        ]
        if node.description:
            lines.append(f"  {node.description}")
        return "\n".join(lines)

    def _names(self, ids: Iterable[str]) -> str:
        return "; ".join(f"{self._classes[c].name} ({c})" for c in ids)

    def tree_text(self, start: str | None = None, max_depth: int | None = None) -> str:
        """An indented tree (from a class or all roots); `*` marks labels, `[n]` counts labels in a subtree."""
        lines = []
        for level, node in self.walk(self.resolve(start) if start else None, max_depth):
            mark = "*" if node.id in self.label_index else " "
            count = len(self.trainable_descendants(node.id))
            lines.append(f"{'  ' * level}{mark} {node.name}  {node.id}  [{count}]")
        return "\n".join(lines)

    def walk(self, start: str | None = None, max_depth: int | None = None) -> Iterator[tuple[int, OntologyClass]]:
        """Depth-first (level, class) pairs below `start` (or all roots); a multi-parent class appears
        under each parent. `level` counts from the start."""
        stack = [(0, cid) for cid in reversed([start] if start else self.roots)]
        while stack:
            level, cid = stack.pop()
            node = self[cid]
            yield level, node
            if max_depth is None or level < max_depth:
                stack.extend((level + 1, child) for child in reversed(node.child_ids))


# ---------------------------------------------------------------------- files
def _read_json(path: Path) -> list:
    if not path.exists():
        raise UserError(f"{path}: ontology file not found", fix="pass the path of ontology.json or fetch it")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UserError(
            f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}",
            fix="pass the AudioSet ontology.json, or re-download it",
        ) from None
    if not isinstance(raw, list):
        raise UserError(f"{path}: expected a JSON list of classes", fix="pass the AudioSet ontology.json")
    return raw


def _parse_classes(raw: list, path: Path) -> list[OntologyClass]:
    """Classes with parent ids filled in; every child id must name a class of the file."""
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or not {"id", "name"} <= item.keys():
            raise UserError(
                f"{path}: class #{i} lacks field 'id' or 'name'",
                fix="every entry needs 'id', 'name' and optionally 'child_ids' and 'restrictions'",
            )
    ids = [item["id"] for item in raw]
    known = set(ids)
    if len(known) != len(ids):
        dup = pd.Series(ids)[pd.Series(ids).duplicated()].iloc[0]
        raise UserError(f"{path}: class id {dup!r} appears twice", fix="keep one entry per id")
    parents: dict[str, list[str]] = {cid: [] for cid in ids}
    for item in raw:
        for child in item.get("child_ids", []):
            if child not in known:
                raise UserError(
                    f"{path}: class {item['id']!r} field 'child_ids' names {child!r}, which is not in the file",
                    fix="add that class to the file or remove it from 'child_ids'",
                )
            parents[child].append(item["id"])
    return [
        OntologyClass(
            id=item["id"],
            name=item["name"],
            child_ids=tuple(item.get("child_ids", [])),
            parent_ids=tuple(parents[item["id"]]),
            abstract="abstract" in item.get("restrictions", []),
            blacklist="blacklist" in item.get("restrictions", []),
            description=item.get("description", ""),
        )
        for item in raw
    ]


def read_label_index(labels_csv: str | Path, known: set[str] | None = None) -> list[str]:
    """The label ids of `class_labels_indices.csv` (`index,mid,display_name`), ordered by `index`."""
    path = Path(labels_csv)
    if not path.exists():
        raise UserError(f"{path}: label index file not found", fix="pass class_labels_indices.csv or fetch it")
    table = pd.read_csv(path, dtype={"mid": str})
    missing = {"index", "mid"} - set(table.columns)
    if missing:
        raise UserError(f"{path}: missing column(s) {sorted(missing)}", fix="the header must be index,mid,display_name")
    table = table.sort_values("index")
    if table["mid"].duplicated().any():
        raise UserError(
            f"{path}: field 'mid' repeats {table['mid'][table['mid'].duplicated()].iloc[0]!r}",
            fix="keep one row per label",
        )
    if known is not None:
        unknown = [m for m in table["mid"] if m not in known]
        if unknown:
            raise UserError(
                f"{path}: {len(unknown)} label(s) are not in the ontology, e.g. {unknown[0]!r}",
                fix="use the ontology and label index of the same release",
            )
    return table["mid"].tolist()


def load_ontology(
    ontology: str | Path | None = None, labels: str | Path | None = None, metadata: str | Path | None = None
) -> Ontology:
    """An `Ontology` from explicit files, or from a metadata folder holding `ontology.json` and
    `class_labels_indices.csv` (explicit files win)."""
    if ontology is None and metadata is None:
        raise UserError(
            "no ontology given",
            fix="pass --ontology ontology.json (and --labels class_labels_indices.csv), or --metadata DIR; "
            "`audiotransfer ontology fetch DIR` downloads them",
        )
    if metadata is not None:
        folder = Path(metadata)
        if not folder.is_dir():
            raise UserError(f"{folder}: metadata folder not found", fix="pass the folder holding ontology.json")
        ontology = ontology or folder / "ontology.json"
        if labels is None and (folder / "class_labels_indices.csv").exists():
            labels = folder / "class_labels_indices.csv"
    assert ontology is not None  # given, or taken from the metadata folder above
    return Ontology.load(ontology, labels)
