"""How robust is the demo's answer? Margins of every ground-truth check over finished demos on several worlds.

For each demo folder (e.g. made by `audiotransfer demo --world-seed N`) it reads `study.yaml` and
`report/summary.json` and prints, per check, the margin by which it agrees (> 0) or disagrees (< 0):
- best state on a task and protocol: best matched category state minus best unmatched one (test metric);
- data similarity: distance of the closest unmatched state minus that of the closest matched one (Frechet;
  for label share the other way round);
- pooled similarity effect: t = coefficient / standard error (SE from the interval: half-width / t(0.975,
  G - 1) with G the states the intervals are clustered by); agrees when t > t(0.975, G - 1).
Over two or more worlds it adds the mean and SD of each margin and P(agree) = Phi(mean / SD), the normal
approximation docs/POWER.md uses, and P(at least 9 of 10 agree) for independent checks.

Usage: .venv/bin/python benchmarks/demo_agreement.py audiotransfer-demo audiotransfer-demo-world1 ...
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from scipy import stats

from audiotransfer.data.synthetic import SHARES
from audiotransfer.demo.ground_truth import category_states, matched_states


def margins(folder: Path) -> dict[str, float]:
    """Check name -> margin (> 0 agrees) for one finished demo."""
    states = yaml.safe_load((folder / "study.yaml").read_text())["pretraining"]["states"]
    summary = json.loads((folder / "report" / "summary.json").read_text())
    content, matched = category_states(states), matched_states(states)
    scores, sims = pd.DataFrame(summary["scores"]), pd.DataFrame(summary["data_similarity"])
    measure = summary["similarity"]
    out: dict[str, float] = {}
    for task in SHARES:
        good, other = matched[task], set(content) - matched[task]
        for protocol, part in scores[(scores["task"] == task) & scores["state"].isin(content)].groupby("protocol"):
            mean = part.set_index("state")["mean"]
            out[f"{task} ({protocol})"] = mean[mean.index.isin(good)].max() - mean[mean.index.isin(other)].max()
        if not sims.empty:
            s = sims[sims["task"] == task].set_index("state")[measure].dropna()
            near, far = s[s.index.isin(good)], s[s.index.isin(other)]
            out[f"{task} (data similarity)"] = (
                near.max() - far.max() if measure == "label_share" else far.min() - near.min()
            )
    row = next((f for f in summary["factors"] if f["factor"] == "similarity"), None)
    if row and row["coef"] is not None:
        clusters = scores.loc[scores["state"] != "scratch", "state"].nunique()
        crit = stats.t.ppf(0.975, clusters - 1)
        se = (row["ci_high"] - row["ci_low"]) / (2 * crit)
        out["similarity effect t - t_crit"] = row["coef"] / se - crit
    return out


def at_least(p: list[float], k: int) -> float:
    """P(at least k of the independent events with probabilities p happen)."""
    total = 0.0
    for hits in itertools.product([0, 1], repeat=len(p)):
        if sum(hits) >= k:
            total += float(np.prod([q if h else 1 - q for q, h in zip(p, hits, strict=True)]))
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    args = parser.parse_args()
    table = pd.DataFrame({f.name: margins(f) for f in args.folders})
    if len(args.folders) > 1:
        table["mean"], table["sd"] = table.mean(axis=1), table.std(axis=1, ddof=1)
        table["P(agree)"] = stats.norm.cdf(table["mean"] / table["sd"])
    print(table.to_string(float_format=lambda v: f"{v:+.3f}"))
    for name in [f.name for f in args.folders]:
        ties = int((table[name] == 0).sum())  # the report's check breaks a tie by state order
        print(
            f"{name}: {(table[name] > 0).sum()} of {table[name].notna().sum()} checks agree"
            + (f", {ties} tied (agreement then depends on the state order)" if ties else "")
        )
    if "P(agree)" in table:
        print(f"P(at least 9 of {len(table)} agree on a new world) = {at_least(list(table['P(agree)']), 9):.2f}")


if __name__ == "__main__":
    main()
