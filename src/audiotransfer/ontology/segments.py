"""AudioSet segment lists (`YTID, start, end, "mid,mid"` after `#` header lines) in columnar form.

Labels go into one boolean CSR matrix over a given label index (never a Python set per row), so the
2,041,789-row unbalanced list parses in seconds. A label id outside the index is an error naming the file
and line: it means the list and the label index do not belong together.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from scipy import sparse

from audiotransfer.errors import UserError

COLUMNS = ["ytid", "start", "end", "labels"]
FORMAT_FIX = 'each line must be: YTID, start_seconds, end_seconds, "mid1,mid2,..."'


@dataclass
class SegmentList:
    """Segments as arrays: `ytid` (Arrow strings), `start`/`end` (seconds), `labels` (bool CSR, one column
    per entry of `label_ids`), and the files they came from."""

    ytid: pa.StringArray
    start: np.ndarray
    end: np.ndarray
    labels: sparse.csr_matrix
    label_ids: list[str]
    sources: list[str] = field(default_factory=list)
    _keys: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.ytid)

    def take(self, rows: np.ndarray) -> SegmentList:
        """The segments at `rows` (indices or a boolean mask), same label index and sources."""
        rows = np.asarray(rows)
        rows = np.flatnonzero(rows) if rows.dtype == bool else rows
        return SegmentList(
            self.ytid.take(pa.array(rows, type=pa.int64())),
            self.start[rows],
            self.end[rows],
            self.labels[rows],
            list(self.label_ids),
            list(self.sources),
        )

    def clips_per_label(self) -> np.ndarray:
        return np.asarray(self.labels.sum(axis=0)).ravel().astype(np.int64)

    def keys(self, seed: int) -> np.ndarray:
        """A uniform [0, 1) key per segment from a stable hash of (seed, YTID): the same on any machine and
        independent of which other segments are in the list (cached per seed)."""
        if seed not in self._keys:
            self._keys[seed] = stable_keys(self.ytid.to_pylist(), seed)
        return self._keys[seed]


def stable_keys(ids: Iterable[str], seed: int) -> np.ndarray:
    """Uniform [0, 1) floats from BLAKE2b of `"{seed}:{id}"`: seeded, platform-independent."""
    digest = b"".join(hashlib.blake2b(f"{seed}:{i}".encode(), digest_size=8).digest() for i in ids)
    return (np.frombuffer(digest, dtype="<u8") >> np.uint64(11)).astype(np.float64) / float(2**53)


# ---------------------------------------------------------------------- reading
def read_segments(paths: str | Path | Sequence[str | Path], label_ids: Sequence[str]) -> SegmentList:
    """Read one or several segment CSVs (e.g. balanced + unbalanced) into one `SegmentList`.

    `label_ids` is the label index (usually `Ontology.trainable`); it fixes the columns of `labels`.
    Malformed lines, unknown label ids and a YTID listed twice are `UserError`s naming file and line.
    """
    paths = [paths] if isinstance(paths, str | Path) else list(paths)
    if not paths:
        raise UserError("no segment list given", fix="pass at least one segment CSV (--segments)")
    lookup = pa.array(list(label_ids), type=pa.string())
    parts = [_read_one(Path(p), lookup) for p in paths]
    ytid = pa.concat_arrays([p[0] for p in parts])
    if len(pc.unique(ytid)) != len(ytid):
        _raise_duplicate(ytid, [len(p[0]) for p in parts], paths)
    return SegmentList(
        ytid=ytid,
        start=np.concatenate([p[1] for p in parts]),
        end=np.concatenate([p[2] for p in parts]),
        labels=sparse.vstack([p[3] for p in parts], format="csr"),
        label_ids=list(label_ids),
        sources=[str(p) for p in paths],
    )


def _read_one(path: Path, lookup: pa.Array) -> tuple[pa.StringArray, np.ndarray, np.ndarray, sparse.csr_matrix]:
    if not path.is_file():
        raise UserError(f"{path}: segment list not found", fix="check the path given to --segments")
    header = _count_header_lines(path)
    options = {
        "skiprows": header,
        "header": None,
        "names": COLUMNS,
        "skipinitialspace": True,
        "quotechar": '"',
        "engine": "c",
        "encoding": "utf-8-sig",  # a byte-order mark (Excel, Notepad) is not part of the first line
    }
    try:
        # Declaring str dtypes costs seconds on 2M rows; re-read only the rare file whose ids look numeric.
        table = pd.read_csv(path, dtype={"start": float, "end": float}, **options)
        if not all(pd.api.types.is_string_dtype(table[c]) for c in ("ytid", "labels")):
            table = pd.read_csv(path, dtype={"ytid": str, "labels": str, "start": float, "end": float}, **options)
    except pd.errors.ParserError as exc:
        line = re.search(r"line (\d+)", str(exc))
        where = f"line {line.group(1)}" if line else "a line"
        raise UserError(f"{path}: {where} is malformed ({exc})", fix=FORMAT_FIX) from None
    except pd.errors.EmptyDataError:
        table = pd.DataFrame({c: pd.Series(dtype=float if c in ("start", "end") else str) for c in COLUMNS})
    except ValueError:
        table = pd.read_csv(path, dtype=str, **options)
        bad = (
            pd.to_numeric(table["start"], errors="coerce").isna() | pd.to_numeric(table["end"], errors="coerce").isna()
        )
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise UserError(f"{path}: line {_line_of_row(path, row)}: start/end is not a number", fix=FORMAT_FIX) from None
    missing = table.isna().any(axis=1).to_numpy()
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise UserError(f"{path}: line {_line_of_row(path, row)}: missing field(s)", fix=FORMAT_FIX)
    labels = _label_matrix(_arrow(table["labels"]), lookup, path)
    return _arrow(table["ytid"]), table["start"].to_numpy(), table["end"].to_numpy(), labels


def _arrow(column: pd.Series) -> pa.StringArray:
    array = pa.Array.from_pandas(column)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    return array.cast(pa.string())


def _label_matrix(text: pa.StringArray, lookup: pa.Array, path: Path) -> sparse.csr_matrix:
    """CSR rows of label columns from the quoted `mid,mid` strings, all in Arrow's C++ kernels."""
    lists = pc.split_pattern(text, ",")
    mids = pc.utf8_trim_whitespace(lists.flatten())
    columns = pc.index_in(mids, value_set=lookup)
    indptr = np.asarray(lists.offsets, dtype=np.int64)
    if columns.null_count:
        first = int(np.flatnonzero(columns.is_null().to_numpy(zero_copy_only=False))[0])
        row = int(np.searchsorted(indptr, first, side="right") - 1)
        raise UserError(
            f"{path}: line {_line_of_row(path, row)}: label {mids[first].as_py()!r} is not in the label index",
            fix="pass the ontology and class_labels_indices.csv that belong to this list (--ontology, --labels)",
        )
    indices = columns.to_numpy().astype(np.int32)
    matrix = sparse.csr_matrix(
        (np.ones(len(indices), dtype=bool), indices, indptr), shape=(len(indptr) - 1, len(lookup))
    )
    matrix.sum_duplicates()
    return matrix


def _count_header_lines(path: Path) -> int:
    count = 0
    with path.open(encoding="utf-8-sig") as handle:
        for line in handle:
            if not line.startswith("#"):
                break
            count += 1
    return count


def _line_of_row(path: Path, row: int) -> int:
    """1-based file line of data row `row` (after the `#` header, blank lines skipped): error path only."""
    seen = -1
    with path.open(encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip() and not line.startswith("#"):
                seen += 1
                if seen == row:
                    return number
    return number


def _raise_duplicate(ytid: pa.StringArray, sizes: list[int], paths: list) -> None:
    ids = ytid.to_pandas()
    second = int(np.flatnonzero(ids.duplicated().to_numpy())[0])
    first = int(np.flatnonzero((ids == ids.iloc[second]).to_numpy())[0])
    bounds = np.cumsum(sizes)
    file_a, file_b = (paths[int(np.searchsorted(bounds, r, side="right"))] for r in (first, second))
    raise UserError(
        f"YTID {ids.iloc[second]!r} is listed twice: in {file_a} and in {file_b}",
        fix="pass each segment list once; lists given together must not overlap",
    )


# ----------------------------------------------------------------- availability
@dataclass
class Availability:
    """How much of a list exists locally: totals, and missing clips per label (ordered like `label_ids`)."""

    num_listed: int
    num_present: int
    missing_per_label: pd.Series

    @property
    def num_missing(self) -> int:
        return self.num_listed - self.num_present


def filter_available(segments: SegmentList, present: str | Path | Iterable[str]) -> tuple[SegmentList, Availability]:
    """Keep the segments whose audio exists locally.

    `present` is a directory (scanned recursively; file names `Y{YTID}.wav`, `{YTID}.wav` and
    `{YTID}_{start}_{end}.wav` are recognised, any extension), a text file with one YTID per line, or YTIDs.
    """
    found = _present_ids(present, segments.ytid.to_pandas())
    keep = pc.is_in(segments.ytid, value_set=pa.array(sorted(found), type=pa.string())).to_numpy(zero_copy_only=False)
    missing = np.asarray(segments.labels[~keep].sum(axis=0)).ravel().astype(np.int64)
    report = Availability(
        num_listed=len(segments),
        num_present=int(keep.sum()),
        missing_per_label=pd.Series(missing, index=segments.label_ids, name="missing"),
    )
    return segments.take(np.flatnonzero(keep)), report


def _present_ids(present: str | Path | Iterable[str], known: pd.Series) -> set[str]:
    if isinstance(present, str | Path):
        path = Path(present)
        if path.is_dir():
            stems = pd.Series([p.stem for p in path.rglob("*") if p.is_file()], dtype=str)
            return _match_stems(stems, known)
        if path.is_file():
            return {line.strip() for line in path.read_text(encoding="utf-8-sig").splitlines() if line.strip()}
        raise UserError(f"{path}: availability source not found", fix="pass an audio folder or a file of YTIDs")
    return {str(i) for i in present}


def _match_stems(stems: pd.Series, known: pd.Series) -> set[str]:
    """Map file stems to YTIDs: the stem itself, without a leading `Y`, or without `_{start}_{end}`."""
    base = stems.str.rsplit("_", n=2).str[0]
    resolved = pd.Series(pd.NA, index=stems.index, dtype=object)
    for candidate in (stems, stems.str[1:], base, base.str[1:]):
        hit = resolved.isna() & candidate.isin(known)
        resolved[hit] = candidate[hit]
    return set(resolved.dropna())
