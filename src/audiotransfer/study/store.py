"""The results store: one SQLite database per study, safe for concurrent writers.

Every run of a study is a row of `runs` (kind, state, task, protocol, seed, status, config, lineage);
its per-epoch dev metrics and final test metrics are long-format rows of `epochs` and `metrics`; the data
each state and task was trained on is described in `states` and `tasks`. The database uses WAL journaling,
a busy timeout and one `BEGIN IMMEDIATE` transaction per write, so several processes can record results
at once and a reader never sees half a run.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from audiotransfer.errors import UserError
from audiotransfer.training.result import RunResult

SCHEMA_VERSION = 3  # PRAGMA user_version of results.sqlite; 0 is a database written before it was set
ADDED_COLUMNS = {  # version -> new columns
    2: [("states", "frontend TEXT"), ("states", "frontend_hash TEXT")],
    3: [("runs", "best_epoch_rule TEXT"), ("runs", "notes TEXT")],
}
SCHEMA = """
CREATE TABLE IF NOT EXISTS study (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, kind TEXT NOT NULL, state TEXT NOT NULL, task TEXT, protocol TEXT,
    seed INTEGER, status TEXT NOT NULL DEFAULT 'pending', config TEXT NOT NULL, subset_hash TEXT,
    parent_run TEXT, checkpoint TEXT, code_version TEXT, started TEXT, finished TEXT, duration_s REAL,
    error TEXT, attempts INTEGER NOT NULL DEFAULT 0, best_epoch_rule TEXT, notes TEXT
);
CREATE TABLE IF NOT EXISTS epochs (
    run_id TEXT NOT NULL, epoch INTEGER NOT NULL, split TEXT NOT NULL, metric TEXT NOT NULL, value REAL,
    PRIMARY KEY (run_id, epoch, split, metric)
);
CREATE TABLE IF NOT EXISTS metrics (
    run_id TEXT NOT NULL, split TEXT NOT NULL, metric TEXT NOT NULL, value REAL,
    PRIMARY KEY (run_id, split, metric)
);
CREATE TABLE IF NOT EXISTS states (
    state TEXT PRIMARY KEY, corpus TEXT, num_clips INTEGER, num_classes INTEGER, subset_hash TEXT,
    manifest_path TEXT, store_path TEXT, checkpoint TEXT, labels TEXT, frontend TEXT, frontend_hash TEXT
);
CREATE TABLE IF NOT EXISTS tasks (
    task TEXT PRIMARY KEY, corpus TEXT, task_type TEXT, num_classes INTEGER, manifest_path TEXT,
    store_path TEXT, frames INTEGER
);
CREATE TABLE IF NOT EXISTS task_stores (
    task TEXT NOT NULL, frontend_hash TEXT NOT NULL, frontend TEXT, store_path TEXT NOT NULL,
    PRIMARY KEY (task, frontend_hash)
);
"""
# the columns `put_state` / `put_task` may set besides the key: names never come from a caller
STATE_COLUMNS = (
    "corpus",
    "num_clips",
    "num_classes",
    "subset_hash",
    "manifest_path",
    "store_path",
    "checkpoint",
    "labels",
    "frontend",
    "frontend_hash",
)
TASK_COLUMNS = ("corpus", "task_type", "num_classes", "manifest_path", "store_path", "frames")
RUN_COLUMNS = (
    "run_id",
    "kind",
    "state",
    "task",
    "protocol",
    "seed",
    "config",
    "subset_hash",
    "parent_run",
    "checkpoint",
    "code_version",
)


def _add_columns(db: sqlite3.Connection, version: int) -> None:
    """Add the columns of the schema versions after `version` that the tables do not have yet."""
    for added in range(max(version, 1) + 1, SCHEMA_VERSION + 1):
        for table, column in ADDED_COLUMNS.get(added, []):
            have = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
            if column.split()[0] not in have:
                db.execute(f"ALTER TABLE {table} ADD COLUMN {column}")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class ResultStore:
    """The SQLite results database of one study (`STUDY/results.sqlite`).

    Opens a short-lived connection per operation, so an instance can be pickled into worker processes.
    """

    def __init__(self, path: str | Path, timeout_s: float = 60.0, read_only: bool = False) -> None:
        """`read_only` (for commands that only read: status, results, report) opens the database without
        creating or changing anything, so a finished study on read-only storage can still be read."""
        self.path = Path(path)
        self.timeout_s = timeout_s
        self.read_only = read_only
        if read_only:
            with self._connect() as db:
                db.execute("SELECT count(*) FROM runs").fetchone()
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            version = self._check_version(db)
            if version != SCHEMA_VERSION:
                db.executescript(SCHEMA)
                _add_columns(db, version)
                db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def _check_version(self, db: sqlite3.Connection) -> int:
        """A database of a newer schema is refused; an older one (0: written before the version was kept,
        the same tables as version 1) is brought up to date by the schema script (tables it lacks) and
        `ADDED_COLUMNS` (columns its tables lack)."""
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise UserError(
                f"{self.path}: results database schema version {version} (PRAGMA user_version); this "
                f"audiotransfer reads versions up to {SCHEMA_VERSION}",
                fix="upgrade audiotransfer (a newer one wrote this study), or run the study into a new `out` folder",
            )
        return int(version)

    # ------------------------------------------------------------- plumbing
    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            db = self._open()
        except sqlite3.Error as exc:
            raise self._user_error(exc) from None
        try:
            db.execute(f"PRAGMA busy_timeout={int(self.timeout_s * 1000)}")
            if not self.read_only:
                db.execute("PRAGMA synchronous=NORMAL")
            yield db
        except (sqlite3.OperationalError, sqlite3.DatabaseError) as exc:
            if type(exc) not in (sqlite3.OperationalError, sqlite3.DatabaseError):
                raise  # integrity and programming errors are bugs, not the user's file
            raise self._user_error(exc) from None
        finally:
            db.close()

    def _open(self) -> sqlite3.Connection:
        if not self.read_only:
            return sqlite3.connect(self.path, timeout=self.timeout_s, isolation_level=None)
        if not self.path.is_file():
            raise sqlite3.OperationalError("unable to open database file")
        # a folder we cannot write holds no -shm file for WAL readers: read the file as it is
        writable = os.access(self.path.parent, os.W_OK) and os.access(self.path, os.W_OK)
        mode = "mode=ro" if writable else "immutable=1"
        return sqlite3.connect(
            f"{self.path.resolve().as_uri()}?{mode}", uri=True, timeout=self.timeout_s, isolation_level=None
        )

    def _user_error(self, exc: sqlite3.Error) -> UserError:
        """A corrupt, locked, missing or read-only results database as a UserError naming it and the fix."""
        text = str(exc)
        if "locked" in text or "busy" in text:
            return UserError(
                f"{self.path}: the results database is locked ({text}) after {self.timeout_s:.0f} s; "
                "another process holds it (a running `study run`?)",
                fix="wait for it to finish or stop it, then rerun (`fuser FILE` names the holder)",
            )
        if "readonly" in text or "read-only" in text:
            return UserError(
                f"{self.path}: the results database is read-only ({text})",
                fix="make the study folder writable to run it; status, results and report only read",
            )
        if "unable to open" in text:
            return UserError(
                f"{self.path}: cannot open the results database ({text})",
                fix="check that the study folder exists and is readable",
            )
        return UserError(
            f"{self.path}: the results database is damaged ({text})",
            fix="restore it from a copy, or move it away and rerun the study (finished run folders are redone)",
        )

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: taken with BEGIN IMMEDIATE, committed on success, rolled back on error."""
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _frame(self, query: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        with self._connect() as db:
            return pd.read_sql_query(query, db, params=list(params))

    # ------------------------------------------------------------- identity
    def claim(self, identity: Mapping[str, str], where: str) -> None:
        """Bind the store to one study; a store written by another study (name, corpus, recipe) is refused."""
        with self.transaction() as db:
            known = dict(db.execute("SELECT key, value FROM study").fetchall())
            clash = {k: (known[k], v) for k, v in identity.items() if k in known and known[k] != v}
            if clash:
                detail = "; ".join(f"{k}: store has {old!r}, study has {new!r}" for k, (old, new) in clash.items())
                raise UserError(
                    f"{where}: {self.path} belongs to another study ({detail})",
                    fix="give this study its own `out` directory, or delete the old study directory",
                )
            db.executemany("INSERT OR REPLACE INTO study VALUES (?, ?)", list(identity.items()))

    # --------------------------------------------------------------- writes
    def register(self, runs: Sequence[Mapping[str, Any]]) -> None:
        """Add planned runs; unfinished ones get the current config, finished ones keep theirs."""
        rows = [tuple(_cell(r.get(c)) for c in RUN_COLUMNS) for r in runs]
        placeholders = ", ".join("?" * len(RUN_COLUMNS))
        updates = ", ".join(f"{c}=excluded.{c}" for c in RUN_COLUMNS[1:])
        with self.transaction() as db:
            db.executemany(
                f"INSERT INTO runs ({', '.join(RUN_COLUMNS)}) VALUES ({placeholders}) "
                f"ON CONFLICT(run_id) DO UPDATE SET {updates} WHERE runs.status != 'done'",
                rows,
            )

    def mark_running(self, run_id: str) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE runs SET status='running', started=?, error=NULL, attempts=attempts+1 WHERE run_id=?",
                (_now(), run_id),
            )

    def mark_done(self, run_id: str, result: RunResult) -> None:
        """Record a finished run, all its metrics, how its best epoch was chosen and its notes (a JSON list)
        in one transaction (replacing any earlier rows)."""
        epochs = [
            (run_id, int(e["epoch"]), split, name, _float(value))
            for e in result.epochs
            for split, values in _epoch_splits(e).items()
            for name, value in values.items()
        ]
        tests = [(run_id, "test", name, _float(v)) for name, v in result.test.items()]
        with self.transaction() as db:
            db.execute("DELETE FROM epochs WHERE run_id=?", (run_id,))
            db.execute("DELETE FROM metrics WHERE run_id=?", (run_id,))
            db.executemany("INSERT INTO epochs VALUES (?, ?, ?, ?, ?)", epochs)
            db.executemany("INSERT INTO metrics VALUES (?, ?, ?, ?)", tests)
            db.execute(
                "UPDATE runs SET status='done', finished=?, duration_s=?, error=NULL, checkpoint=COALESCE(?, "
                "checkpoint), best_epoch_rule=?, notes=? WHERE run_id=?",
                (
                    _now(),
                    _float(result.duration_s),
                    result.checkpoint,
                    result.best_epoch_rule,
                    _cell(result.notes),
                    run_id,
                ),
            )

    def mark_failed(self, run_id: str, error: str) -> None:
        with self.transaction() as db:
            db.execute("UPDATE runs SET status='failed', finished=?, error=? WHERE run_id=?", (_now(), error, run_id))

    def mark_blocked(self, run_ids: Sequence[str], reason: str) -> None:
        with self.transaction() as db:
            db.executemany(
                "UPDATE runs SET status='blocked', error=? WHERE run_id=? AND status != 'done'",
                [(reason, r) for r in run_ids],
            )

    def reset_unfinished(self) -> None:
        """Runs left 'running' by a killed study go back to 'pending' (their run dirs resume them)."""
        with self.transaction() as db:
            db.execute("UPDATE runs SET status='pending' WHERE status='running'")

    def reopen(self, run_ids: Sequence[str]) -> None:
        """Finished runs to be done again (their folders were deleted): back to 'pending', results dropped."""
        with self.transaction() as db:
            for run_id in run_ids:
                db.execute("DELETE FROM epochs WHERE run_id=?", (run_id,))
                db.execute("DELETE FROM metrics WHERE run_id=?", (run_id,))
                db.execute("UPDATE runs SET status='pending', error=NULL WHERE run_id=?", (run_id,))

    def put_state(self, state: str, **fields: Any) -> None:
        """Record what a state was trained on: fields of `STATE_COLUMNS`."""
        self._upsert("states", "state", state, fields, STATE_COLUMNS)

    def put_task(self, task: str, **fields: Any) -> None:
        """Record a downstream task's data: fields of `TASK_COLUMNS`."""
        self._upsert("tasks", "task", task, fields, TASK_COLUMNS)

    def _upsert(self, table: str, key: str, value: str, fields: Mapping[str, Any], allowed: Sequence[str]) -> None:
        unknown = sorted(set(fields) - set(allowed))
        if unknown:
            raise ValueError(f"{table}: unknown column(s) {', '.join(unknown)}; known: {', '.join(allowed)}")
        columns = [key, *(c for c in allowed if c in fields)]
        cells = [value, *(_cell(fields[c]) for c in columns[1:])]
        with self.transaction() as db:
            db.execute(
                f"INSERT OR REPLACE INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(cells))})",
                cells,
            )

    def put_task_stores(self, rows: Sequence[tuple[str, str, str, str]]) -> None:
        """Record the feature stores of each task, one per front-end its states read: (task, frontend_hash,
        frontend, store_path)."""
        with self.transaction() as db:
            db.executemany("INSERT OR REPLACE INTO task_stores VALUES (?, ?, ?, ?)", [tuple(r) for r in rows])

    # ---------------------------------------------------------------- reads
    def runs(self) -> pd.DataFrame:
        """All runs, one row each, in insertion order."""
        return self._frame("SELECT * FROM runs ORDER BY rowid")

    def status(self) -> dict[str, str]:
        """run_id -> status."""
        with self._connect() as db:
            return dict(db.execute("SELECT run_id, status FROM runs").fetchall())

    def test_metrics(self) -> pd.DataFrame:
        """Final metrics joined with their run's identity (long format: one row per run x metric)."""
        return self._frame(
            "SELECT r.run_id, r.kind, r.state, r.task, r.protocol, r.seed, m.split, m.metric, m.value "
            "FROM metrics m JOIN runs r USING (run_id) ORDER BY r.rowid, m.metric"
        )

    def epoch_metrics(self) -> pd.DataFrame:
        """Per-epoch metrics joined with their run's identity (long format)."""
        return self._frame(
            "SELECT r.run_id, r.kind, r.state, r.task, r.protocol, r.seed, e.epoch, e.split, e.metric, e.value "
            "FROM epochs e JOIN runs r USING (run_id) ORDER BY r.rowid, e.epoch, e.split, e.metric"
        )

    def states(self) -> pd.DataFrame:
        return self._frame("SELECT * FROM states ORDER BY rowid")

    def tasks(self) -> pd.DataFrame:
        return self._frame("SELECT * FROM tasks ORDER BY rowid")

    def task_stores(self) -> pd.DataFrame:
        """Every (task, front-end) feature store (empty for a database read-only opened before it was kept)."""
        with self._connect() as db:
            kept = db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='task_stores'").fetchone()
        if not kept:
            return pd.DataFrame(columns=["task", "frontend_hash", "frontend", "store_path"])
        return self._frame("SELECT * FROM task_stores ORDER BY rowid")

    def identity(self) -> dict[str, str]:
        with self._connect() as db:
            return dict(db.execute("SELECT key, value FROM study").fetchall())


def _cell(value: Any) -> Any:
    """SQLite cell for a Python value: containers as JSON, paths as text."""
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, sort_keys=True, default=str)
    if isinstance(value, Path):
        return str(value)
    return value


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _epoch_splits(epoch: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """{split: {metric: value}} of one `metrics.json` epoch entry (scalars go to the 'train' split)."""
    splits: dict[str, dict[str, Any]] = {"train": {}}
    for key, value in epoch.items():
        if key == "epoch":
            continue
        if isinstance(value, Mapping):
            splits.setdefault(key, {}).update({k: v for k, v in value.items() if isinstance(v, int | float)})
        elif isinstance(value, int | float):
            name = key.removeprefix("train_") if key.startswith("train_") else key
            splits["train"][name] = value
    return {k: v for k, v in splits.items() if v}
