"""Does a study on the synthetic world recover the world's ground truth?

The world documents which root categories share generators with each task (`synthetic.SHARES`). A study
recovers that when (1) among its category states (states chosen by `categories`) the best one on each task
shares generators with it, under every protocol; (2) the report's data similarity ranks such a state
closest to the task; (3) the pooled factor analysis finds a positive similarity effect whose interval
excludes zero; (4) the advisor's top-1 among the category states (its default estimator, before any
fine-tuning) is such a state. The demo prints these checks and adds them to its report; they read only the analysis'
tables (scores, data similarity, the pooled factor table) and the spec's states.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from audiotransfer.data.synthetic import SHARES


@dataclass
class Check:
    """One line of the ground-truth comparison."""

    subject: str
    expected: str
    found: str
    agrees: bool

    def line(self) -> str:
        verdict = "agrees" if self.agrees else "DISAGREES"
        return f"{self.subject}: expected {self.expected}; found {self.found}: {verdict}"


def category_states(states: dict[str, dict[str, Any]]) -> dict[str, set[str]]:
    """The study's states that select root categories, with those categories."""
    return {name: set(spec["categories"]) for name, spec in states.items() if (spec or {}).get("categories")}


def matched_states(states: dict[str, dict[str, Any]]) -> dict[str, set[str]]:
    """Task -> the category states that share generators with it (the report outlines these cells)."""
    content = category_states(states)
    return {task: {s for s, cats in content.items() if cats & set(roots)} for task, roots in SHARES.items()}


def check_ground_truth(
    scores: pd.DataFrame,
    data_sim: pd.DataFrame,
    measure: str,
    factors: pd.DataFrame | None,
    states: dict[str, dict[str, Any]],
) -> list[Check]:
    """Compare an analysis of a synthetic-world study with `SHARES`.

    `scores`: state, task, protocol, mean (the report's score table); `data_sim`: state, task and one column
    per similarity measure; `factors`: the pooled fit's table (index: factor; coef, ci_low, ci_high).
    """
    content, shared = category_states(states), matched_states(states)
    checks: list[Check] = []
    for task, roots in SHARES.items():
        matched = sorted(shared[task])
        if scores.empty or not matched or task not in set(scores["task"]):
            continue
        expected = f"one of {', '.join(matched)} (shares generators with {' + '.join(roots)})"
        rows = scores[(scores["task"] == task) & scores["state"].isin(list(content))]
        for protocol, part in rows.groupby("protocol", sort=True):
            ranked = part.sort_values("mean", ascending=False, kind="stable")
            best = ranked.iloc[0]
            found = (
                f"{best['state']} best ({best['mean']:.3f}; "
                + ", ".join(f"{r.state} {r.mean:.3f}" for r in ranked.iloc[1:].itertuples())
                + ")"
            )
            checks.append(Check(f"{task} ({protocol})", expected, found, best["state"] in matched))
        if not data_sim.empty and measure in data_sim:
            part = data_sim[(data_sim["task"] == task) & data_sim["state"].isin(list(content))].dropna(subset=[measure])
            if not part.empty:
                closest = part.loc[part[measure].idxmax() if measure == "label_share" else part[measure].idxmin()]
                checks.append(
                    Check(
                        f"{task} (data similarity, {measure})",
                        expected,
                        f"{closest['state']} closest",
                        closest["state"] in matched,
                    )
                )
    if factors is not None and "similarity" in factors.index and pd.notna(factors.loc["similarity", "coef"]):
        coef, low, high = factors.loc["similarity", ["coef", "ci_low", "ci_high"]]
        checks.append(
            Check(
                "similarity effect (all tasks pooled)",
                "positive, interval above zero",
                f"{coef:+.3f} per SD (95% CI {low:+.3f} to {high:+.3f})",
                bool(low > 0),
            )
        )
    return checks


def check_advisor(scores: pd.DataFrame, estimator: str, states: dict[str, dict[str, Any]]) -> list[Check]:
    """Per task: is the advisor's top-1 category state (by `estimator`) one that shares generators with it?

    `scores`: the advisor's long table (task, candidate, estimator, score).
    """
    content = category_states(states)
    checks: list[Check] = []
    if scores.empty:
        return checks
    for task, roots in SHARES.items():
        matched = sorted(s for s, cats in content.items() if cats & set(roots))
        part = scores[
            (scores["task"] == task) & (scores["estimator"] == estimator) & scores["candidate"].isin(list(content))
        ].dropna(subset=["score"])
        if part.empty or not matched:
            continue
        ranked = part.sort_values("score", ascending=False, kind="stable")
        top = ranked.iloc[0]
        found = (
            f"{top['candidate']} top-1 ({estimator} {top['score']:.3f}; "
            + ", ".join(f"{r.candidate} {r.score:.3f}" for r in ranked.iloc[1:].itertuples())
            + ")"
        )
        checks.append(
            Check(
                f"{task} (advisor, before fine-tuning)",
                f"one of {', '.join(matched)} (shares generators with {' + '.join(roots)})",
                found,
                top["candidate"] in matched,
            )
        )
    return checks
