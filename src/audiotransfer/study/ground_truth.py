"""Does a study on the synthetic world recover the world's ground truth?

The world documents which root categories share generators with each task (`synthetic.SHARES`). A study
recovers that when (1) among its category states (states chosen by `categories`) the best one on each task
shares generators with it, under every protocol; (2) the report's data similarity ranks such a state
closest to the task; (3) the pooled factor analysis finds a positive similarity effect whose interval
excludes zero. The demo prints these checks; they read only the report's `summary.json` and the spec.
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


def check_ground_truth(summary: dict[str, Any], states: dict[str, dict[str, Any]]) -> list[Check]:
    """Compare a report summary (`report/summary.json`) of a synthetic-world study with `SHARES`."""
    content = category_states(states)
    scores = pd.DataFrame(summary.get("scores") or [])
    sims = pd.DataFrame(summary.get("data_similarity") or [])
    measure = summary.get("similarity", "frechet")
    checks: list[Check] = []
    for task, roots in SHARES.items():
        matched = sorted(s for s, cats in content.items() if cats & set(roots))
        if scores.empty or not matched or task not in set(scores["task"]):
            continue
        expected = f"one of {', '.join(matched)} (shares generators with {' + '.join(roots)})"
        rows = scores[(scores["task"] == task) & scores["state"].isin(list(content))]
        for protocol, part in rows.groupby("protocol", sort=True):
            ranked = part.sort_values("mean", ascending=False, kind="stable")
            best = ranked.iloc[0]
            found = f"{best['state']} best ({best['mean']:.3f}; " + ", ".join(
                f"{r.state} {r.mean:.3f}" for r in ranked.iloc[1:].itertuples()
            ) + ")"
            checks.append(Check(f"{task} ({protocol})", expected, found, best["state"] in matched))
        if not sims.empty and measure in sims:
            part = sims[(sims["task"] == task) & sims["state"].isin(list(content))].dropna(subset=[measure])
            if not part.empty:
                closest = part.loc[part[measure].idxmax() if measure == "label_share" else part[measure].idxmin()]
                checks.append(Check(f"{task} (data similarity, {measure})", expected,
                                    f"{closest['state']} closest", closest["state"] in matched))
    factor = {f["factor"]: f for f in summary.get("factors") or []}.get("similarity")
    if factor and factor.get("coef") is not None:
        low, high = factor["ci_low"], factor["ci_high"]
        checks.append(Check("similarity effect (all tasks pooled)", "positive, interval above zero",
                            f"{factor['coef']:+.3f} per SD (95% CI {low:+.3f} to {high:+.3f})",
                            low is not None and low > 0))
    return checks
