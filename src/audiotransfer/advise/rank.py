"""Run the estimators over candidates and rank them: one long table, one wide ranked table, a verdict.

An estimator that cannot score a candidate (NaN embeddings, a missing source head, a degenerate task) is
skipped for that candidate with the reason in the table's `note`, never a traceback.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

import numpy as np
import pandas as pd

import audiotransfer.advise.estimators as est
import audiotransfer.advise.recent as recent
from audiotransfer.errors import UserError


@dataclass
class Inputs:
    """What the estimators read for one candidate on one task."""

    embeddings: np.ndarray
    logits: np.ndarray
    y: np.ndarray


Estimator = Callable[[Inputs], float]
T = TypeVar("T")
ESTIMATORS: dict[str, Estimator] = {
    "logme": lambda d: est.logme(d.embeddings, d.y),
    "leep": lambda d: est.leep(est.source_probs(d.logits), d.y),
    "nce": lambda d: est.nce(d.logits.argmax(axis=1), d.y),
    "hscore": lambda d: est.hscore(d.embeddings, d.y),
    "knn": lambda d: est.knn_loo(d.embeddings, d.y),
    "probe": lambda d: est.linear_probe(d.embeddings, d.y),
    "sfda": lambda d: recent.sfda(d.embeddings, d.y),
    "gbc": lambda d: recent.gbc(d.embeddings, d.y),
    "energy": lambda d: recent.energy(d.embeddings, d.y),
}
HEAD = ("leep", "nce")  # the estimators that read the candidate's own pre-training head, not its embeddings
# Pooled estimators score a candidate relative to the others: NCTI normalises its parts over the pool, the
# ensemble averages the members' ranks (its members are computed whenever it is asked for).
ENSEMBLE = ("knn", "logme", "hscore", "sfda")
POOLED = ("ncti", "ensemble")
NAMES = (*ESTIMATORS, *POOLED)
# The default estimator (README, "Advise before training"), chosen by the rule stated before measuring:
# among estimators whose mean weighted tau against the fine-tuned ranking beats `largest` with a paired
# interval above zero on the design worlds (full demo, world seeds 0 and 1), the highest mean tau. Only GBC
# beat `largest` so (+0.47 vs +0.13); on the held-out world 2 it scored +0.28 (kNN +0.40).
DEFAULT = "gbc"


def check_estimators(names: list[str] | None) -> list[str]:
    """Known estimator names (all when None); UserError for an unknown one."""
    if not names:
        return list(NAMES)
    unknown = [n for n in names if n not in NAMES]
    if unknown:
        raise UserError(f"unknown estimator(s) {', '.join(unknown)}", fix=f"use any of {', '.join(NAMES)}")
    return list(names)


def _run(fn: Callable[[], T]) -> tuple[T | float, str, float]:
    """(value, note, seconds): a UserError or numerical failure becomes a note, never a traceback."""
    start = time.perf_counter()
    value: T | float
    try:
        value, note = fn(), ""
    except UserError as exc:
        value, note = float("nan"), exc.message
    except (ValueError, np.linalg.LinAlgError) as exc:
        value, note = float("nan"), f"{type(exc).__name__}: {str(exc)[:160]}"
    return value, note, time.perf_counter() - start


def score(inputs: Mapping[str, Inputs], names: list[str] | None = None) -> pd.DataFrame:
    """Long table: candidate, estimator, score, seconds, note (why a score is missing)."""
    names = check_estimators(names)
    single = [n for n in ESTIMATORS if n in names or ("ensemble" in names and n in ENSEMBLE)]
    rows = []
    for candidate, data in inputs.items():
        for name in single:
            value, note, spent = _run(partial(_one, name, data))
            rows.append(_row(candidate, name, float(value), note, spent))
        if "ncti" in names:
            parts, note, spent = _run(partial(recent.ncti_parts, data.embeddings, data.y))
            rows.append(dict(_row(candidate, "ncti", 0.0, note, spent), score=np.nan, parts=parts))
    long = pd.DataFrame(rows, columns=["candidate", "estimator", "score", "seconds", "note", "parts"])
    if "ncti" in names:
        part = long["estimator"] == "ncti"
        ok = {r.candidate: r.parts for r in long[part].itertuples() if not r.note}
        combined = recent.ncti_combine(ok) if ok else {}
        long.loc[part, "score"] = [combined.get(c, np.nan) for c in long.loc[part, "candidate"]]
    if "ensemble" in names:
        long = pd.concat([long, ensemble(long)], ignore_index=True)
    return long.drop(columns="parts")


def _one(name: str, data: Inputs) -> float:
    return float(ESTIMATORS[name](data))


def _row(candidate: str, name: str, value: float, note: str, spent: float) -> dict[str, object]:
    if not note and not np.isfinite(value):
        note = "not finite"
    return dict(candidate=candidate, estimator=name, score=value, seconds=spent, note=note, parts=None)


def ensemble(long: pd.DataFrame, members: tuple[str, ...] = ENSEMBLE) -> pd.DataFrame:
    """Rows of the rank ensemble: minus the mean over `members` of each candidate's rank (1 = best; a member
    that skipped a candidate is left out of that candidate's mean)."""
    wide = long[long["estimator"].isin(members)].pivot(index="candidate", columns="estimator", values="score")
    ranks = wide.rank(ascending=False, method="average")
    mean = ranks.mean(axis=1)
    return pd.DataFrame(
        dict(
            candidate=mean.index,
            estimator="ensemble",
            score=-mean.to_numpy(),
            seconds=0.0,
            note=["" if np.isfinite(v) else "no member scored it" for v in mean.to_numpy()],
        )
    )


def ranked(
    long: pd.DataFrame, embed_seconds: Mapping[str, float] | None = None, default: str = DEFAULT
) -> pd.DataFrame:
    """Wide table, best first by the default estimator: per estimator its score and rank (1 = best),
    the seconds spent (embedding + all estimators) and the notes of skipped estimators."""
    scores = long.pivot(index="candidate", columns="estimator", values="score")
    order = [e for e in NAMES if e in scores.columns]
    table = pd.DataFrame(index=scores.index)
    for name in order:
        table[name] = scores[name]
        table[f"{name}_rank"] = scores[name].rank(ascending=False, method="min").astype("Int64")
    spent = long.groupby("candidate")["seconds"].sum()
    table["seconds"] = spent + pd.Series(embed_seconds or {}, dtype=float).reindex(spent.index).fillna(0.0)
    notes: dict[str, list[str]] = {}
    for r in long[long["note"] != ""].itertuples():
        notes.setdefault(r.candidate, []).append(f"{r.estimator} skipped: {r.note}")
    table["note"] = [_merge_notes(notes.get(c, [])) for c in table.index]
    key = default if default in table else order[0]
    return table.sort_values(key, ascending=False, na_position="last", kind="stable").rename_axis("candidate")


def _merge_notes(notes: list[str]) -> str:
    """One note per distinct reason: 'logme, knn skipped: REASON'."""
    by_reason: dict[str, list[str]] = {}
    for note in notes:
        name, _, reason = note.partition(" skipped: ")
        by_reason.setdefault(reason, []).append(name)
    return "; ".join(f"{', '.join(names)} skipped: {reason}" for reason, names in by_reason.items())


def recommendation(table: pd.DataFrame, task: str, default: str = DEFAULT) -> str:
    """One line: the default estimator's pick, and whether the others agree."""
    if default not in table or table[default].isna().all():
        return f"{task}: no recommendation ({default} could not score any candidate; see the notes)"
    best = table[default].idxmax()
    others = [e for e in NAMES if e in table and e != default and table[e].notna().any()]
    agree = [e for e in others if table[e].idxmax() == best]
    return (
        f"{task}: start from '{best}' ({default} {table.loc[best, default]:.3f}; "
        f"{len(agree)} of {len(others)} other estimators agree)"
    )
