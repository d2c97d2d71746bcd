"""Helpers shared by the corpus modules: layout checks, table reading, seeded stratified splits."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from audiotransfer.errors import UserError
from audiotransfer.files import check_regular_file
from audiotransfer.manifest import Manifest, TaskType, from_label_lists

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")


def require(path: Path, what: str, layout: str) -> Path:
    """`path` if it exists, else a UserError saying which layout was expected."""
    if not path.exists():
        raise UserError(f"{path}: {what} not found", fix=f"expected layout: {layout}")
    return path


def read_table(path: Path, columns: Sequence[str], layout: str, **read_options: Any) -> pd.DataFrame:
    """A CSV/TSV as strings, checking that the named columns exist."""
    require(path, "metadata file", layout)
    check_regular_file(path, "metadata file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)  # extra fields would be dropped silently
            table = pd.read_csv(path, dtype=str, keep_default_na=False, index_col=False, **read_options)
    except (pd.errors.ParserWarning, pd.errors.ParserError) as exc:
        if isinstance(exc, pd.errors.ParserError) and "Expected" not in str(exc):
            raise UserError(f"{path}: cannot be parsed ({exc})", fix=f"expected layout: {layout}") from None
        raise UserError(
            f"{path}: {_long_row(path, read_options.get('sep', ','))}",
            fix="quote values that hold the separator, or add the missing column names to the "
            f"header; expected layout: {layout}",
        ) from None
    except (pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot be parsed ({exc})", fix=f"expected layout: {layout}") from None
    table.columns = [str(c).strip() for c in table.columns]
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise UserError(
            f"{path}: missing field(s) {missing}; found {list(table.columns)}", fix=f"expected layout: {layout}"
        )
    return table


def _long_row(path: Path, sep: str) -> str:
    """Where a row has more fields than the header (for the message)."""
    import csv

    with open(path, newline="", encoding="utf-8", errors="replace") as handle:
        rows = csv.reader(handle, delimiter=sep if len(sep) == 1 else ",")
        width = len(next(rows, []))
        for line, row in enumerate(rows, start=2):
            if len(row) > width:
                return f"line {line} has {len(row)} fields, the header names {width}"
    return "a row has more fields than the header names"


def clip_ids(paths: pd.Series) -> pd.Series:
    """Clip ids from relative paths: the path without its suffix (`dog/x.wav` -> `dog/x`), or with it where
    two files differ only by suffix (`x.wav`, `x.flac`), so no two files ever share an id (and features)."""
    stems = paths.str.replace(r"\.[^./]*$", "", regex=True)
    clash = stems.duplicated(keep=False)
    return stems.where(~clash, paths)


def check_values(values: pd.Series, allowed: Sequence[str], path: Path, field: str) -> None:
    """UserError naming the file, field and first bad values when `values` leave `allowed`."""
    bad = sorted(set(values) - set(allowed))
    if bad:
        raise UserError(
            f"{path}: field {field!r} has unknown value(s) {bad[:5]}",
            fix=f"allowed values: {', '.join(map(str, allowed))}",
        )


def stratified_pick(keys: Sequence[str] | pd.Series, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask selecting round(fraction * n) items, spread over strata by largest remainder, seeded."""
    if not 0 <= fraction < 1:
        raise UserError(f"split fraction {fraction} is outside [0, 1)", fix="use e.g. dev_fraction=0.1")
    codes, _ = pd.factorize(pd.Series(list(keys), dtype=str))
    counts = np.bincount(codes) if len(codes) else np.zeros(0, dtype=np.int64)
    exact = counts * fraction
    take = np.floor(exact).astype(np.int64)
    rng = np.random.default_rng(seed)
    shortfall = round(len(codes) * fraction) - int(take.sum())
    tie_break = rng.permutation(len(counts))
    order = tie_break[np.argsort(-(exact - take)[tie_break], kind="stable")]
    take[order[:shortfall]] += 1
    perm = rng.permutation(len(codes))
    rank = pd.Series(codes[perm]).groupby(codes[perm]).cumcount().to_numpy()
    mask = np.zeros(len(codes), dtype=bool)
    mask[perm[rank < take[codes[perm]]]] = True
    return mask


def stratified_splits(keys: Sequence[str] | pd.Series, dev: float, test: float, seed: int) -> np.ndarray:
    """'train'/'dev'/'test' per item: test first, then dev from the rest, both stratified by `keys`."""
    if min(dev, test) < 0 or dev + test >= 1:
        raise UserError(
            f"options dev_fraction={dev}, test_fraction={test}",
            fix="use fractions >= 0 that leave some clips for training (sum < 1)",
        )
    keys = pd.Series(list(keys), dtype=str)
    split = np.full(len(keys), "train", dtype=object)
    is_test = stratified_pick(keys, test, seed)
    split[is_test] = "test"
    rest = np.flatnonzero(~is_test)
    if len(rest) and dev > 0:
        split[rest[stratified_pick(keys.iloc[rest], dev / (1 - test), seed + 1)]] = "dev"
    return split


def single_label_manifest(
    name: str,
    clips: pd.DataFrame,
    label_column: str,
    labels: Sequence[str],
    root: Path,
    clip_seconds: float,
    label_names: Sequence[str] | None = None,
    task_type: TaskType = "multiclass",
    **meta: Any,
) -> Manifest:
    """A one-label-per-clip manifest (the label column stays in `clips`) with the meta every corpus
    carries: root, corpus, clip_seconds."""
    clips = clips.reset_index(drop=True)
    return from_label_lists(
        name,
        clips,
        [[label] for label in clips[label_column]],
        labels=list(labels),
        label_names=list(label_names) if label_names is not None else None,
        task_type=task_type,
        meta={"root": str(root), "corpus": name, "clip_seconds": clip_seconds, **meta},
    )
