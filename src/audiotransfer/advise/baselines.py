"""The answers a user gets for free, and how any ranking of candidates is scored against the truth.

Baselines rank candidates without looking at the task: `largest` by pre-training clips, `most_classes` by
pre-training classes, `parameters` by model size (only where the candidates differ in size), `random` by a
random order (scored as its expectation over permutations). Every ranking, estimator or baseline, is scored
per cell (a task x protocol of a study, or a task of a published table) by the weighted Kendall tau
(`scipy.stats.weightedtau`, the top of the ranking weighs most), top-1 hit (its first candidate is the best),
regret (the true score lost by taking its first candidate instead of the best) and top-3 regret (the same
for the best of its first three). Intervals are percentile bootstraps over the cells.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import stats

if TYPE_CHECKING:
    from audiotransfer.advise.embed import Candidate

SIZE_BASELINES = {"largest": "clips", "most_classes": "classes", "parameters": "parameters"}
RANDOM = "random"
BASELINES = (*SIZE_BASELINES, RANDOM)
METRICS = ("tau_w", "top1", "regret", "top3_regret")
MIN_CELLS = 4  # fewer task x protocol cells give no verdict: a bootstrap of two or three values is no interval


def size_scores(sizes: pd.DataFrame) -> pd.DataFrame:
    """Long rows (candidate, estimator, score) of the size baselines from a table indexed by candidate with
    columns clips, classes, parameters (any may be missing or NaN); a baseline is left out when some
    candidate lacks its size or all candidates have the same one."""
    rows = []
    for name, column in SIZE_BASELINES.items():
        values = pd.to_numeric(sizes[column], errors="coerce") if column in sizes else None
        if values is None or values.isna().any() or values.nunique() < 2:
            continue
        rows += [dict(candidate=c, estimator=name, score=float(v)) for c, v in values.items()]
    return pd.DataFrame(rows, columns=["candidate", "estimator", "score"])


def cell_metrics(pred: pd.Series, truth: pd.Series) -> dict[str, float]:
    """tau_w, top1 (1.0 / 0.0), regret and top3_regret of one ranking (`pred`, higher = better) against the
    true scores, over the candidates both hold (tau_w NaN when fewer than three or either is constant)."""
    common = [c for c in pred.dropna().index if c in truth.dropna().index]
    if len(common) < 2:
        return dict.fromkeys(METRICS, np.nan)
    return _metrics(pred[common].to_numpy(dtype=float), truth[common].to_numpy(dtype=float))


def _metrics(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    order = np.argsort(-x, kind="stable")
    ok = len(x) >= 3 and np.ptp(x) > 0 and np.ptp(y) > 0
    return dict(
        tau_w=float(stats.weightedtau(x, y).statistic) if ok else np.nan,
        top1=float(y[order[0]] == y.max()),
        regret=float(y.max() - y[order[0]]),
        top3_regret=float(y.max() - y[order[:3]].max()),
    )


def random_metrics(truth: pd.Series, draws: int = 1000, seed: int = 0) -> pd.DataFrame:
    """The metrics of `draws` random orders of the candidates (one row per draw)."""
    rng = np.random.default_rng(seed)
    y = truth.dropna().to_numpy(dtype=float)
    rows = [_metrics(rng.permutation(len(y)).astype(float), y) for _ in range(draws)]
    return pd.DataFrame(rows, columns=list(METRICS))


def score_cells(scores: pd.DataFrame, truth: pd.DataFrame, draws: int = 1000) -> pd.DataFrame:
    """Per cell and ranking the metrics. `scores`: long (cell, candidate, estimator, score) with estimators
    and size baselines; `truth`: long (cell, candidate, value). The random baseline is added per cell as its
    expectation over `draws` permutations; `random_draw_tau` keeps its per-draw tau for the spread."""
    rows = []
    for cell, part in truth.groupby("cell", sort=False):
        actual = part.set_index("candidate")["value"]
        for name, est in scores[scores["cell"] == cell].groupby("estimator", sort=False):
            rows.append(dict(cell=cell, estimator=name, **cell_metrics(est.set_index("candidate")["score"], actual)))
        rand = random_metrics(actual, draws, seed=len(rows))
        rows.append(
            dict(cell=cell, estimator=RANDOM, **rand.mean().to_dict(), random_draw_tau=rand["tau_w"].to_numpy())
        )
    return pd.DataFrame(rows)


def bootstrap_mean(values: np.ndarray, reps: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """(mean, 2.5th, 97.5th percentile of the bootstrap means) over the finite values."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return np.nan, np.nan, np.nan
    means = np.random.default_rng(seed).choice(v, size=(reps, len(v)), replace=True).mean(axis=1)
    return float(v.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def summary(cells: pd.DataFrame, reps: int = 2000) -> pd.DataFrame:
    """Per ranking: each metric's mean over cells with a bootstrap interval (METRIC, METRIC_low, METRIC_high),
    the cells counted, and for `random` the SD over permutations of its mean tau (`random_sd`)."""
    rows = []
    for name, part in cells.groupby("estimator", sort=False):
        row: dict[str, object] = dict(estimator=name, cells=int(part["tau_w"].notna().sum()))
        for m in METRICS:
            row[m], row[f"{m}_low"], row[f"{m}_high"] = bootstrap_mean(part[m].to_numpy(), reps)
        if name == RANDOM and "random_draw_tau" in part:
            draws = np.stack([np.asarray(d, dtype=float) for d in part["random_draw_tau"]])
            row["random_sd"] = float(np.nanstd(np.nanmean(draws, axis=0)))
        rows.append(row)
    return pd.DataFrame(rows).set_index("estimator")


@dataclass
class Verdict:
    """The default against `largest`: mean tau difference with a paired bootstrap interval over cells."""

    default: str
    baseline: str
    difference: float
    low: float
    high: float
    cells: int

    def line(self) -> str:
        if not np.isfinite(self.difference):
            return f"{self.default}: not compared with '{self.baseline}' (no cell where both rank >= 3 states)"
        spread = f"{self.difference:+.2f} weighted tau, 95% interval {self.low:+.2f} to {self.high:+.2f}"
        if self.cells < MIN_CELLS:
            return (
                f"{self.default} vs picking the {_words(self.baseline)}: {spread} over only {self.cells} "
                f"cell(s), too few to tell (>= {MIN_CELLS} needed)"
            )
        if self.low > 0:
            return f"{self.default} beat picking the {_words(self.baseline)} by {spread} over {self.cells} cells"
        if self.high < 0:
            return f"{self.default} did worse than picking the {_words(self.baseline)} ({spread}, {self.cells} cells)"
        return f"{self.default}: no better than picking the {_words(self.baseline)} ({spread}, {self.cells} cells)"


def _words(baseline: str) -> str:
    return {
        "largest": "largest pre-training set",
        "most_classes": "pre-training set with most classes",
        "parameters": "biggest model",
    }.get(baseline, baseline)


def verdict(cells: pd.DataFrame, default: str, baseline: str = "largest", reps: int = 2000) -> Verdict:
    """Paired over the cells both scored: mean(tau_default - tau_baseline) and its bootstrap interval."""
    wide = cells[cells["estimator"].isin([default, baseline])].pivot(index="cell", columns="estimator", values="tau_w")
    if default not in wide or baseline not in wide:
        return Verdict(default, baseline, np.nan, np.nan, np.nan, 0)
    diff = (wide[default] - wide[baseline]).dropna().to_numpy()
    mean, low, high = bootstrap_mean(diff, reps)
    return Verdict(default, baseline, mean, low, high, len(diff))


# --------------------------------------------------------------------------- in `advise`'s own output
def study_sizes(res: Any) -> pd.DataFrame:
    """Per pre-trained state of a study its pre-training clips and classes (the study's states table)."""
    states = getattr(res, "states", pd.DataFrame())
    if states.empty:
        return pd.DataFrame(columns=["clips", "classes"])
    return states.set_index("state").rename(columns={"num_clips": "clips", "num_classes": "classes"})[
        ["clips", "classes"]
    ]


def parameter_counts(candidates: list[Candidate]) -> pd.Series:
    """Parameters of each candidate's model (`load_candidate`), NaN where it does not load."""
    from audiotransfer.advise.embed import load_candidate
    from audiotransfer.errors import UserError

    counts = {}
    for cand in candidates:
        try:
            counts[cand.name] = float(sum(p.numel() for p in load_candidate(cand).parameters()))
        except UserError:
            counts[cand.name] = np.nan
    return pd.Series(counts, dtype=float)


def annotate(table: pd.DataFrame, sizes: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The ranked table with the candidates' sizes and each size baseline's rank, and a line naming each
    baseline's pick ('' when no baseline applies)."""
    known = sizes.reindex(table.index)
    rows = size_scores(known)
    table = table.copy()
    picks = []
    for name, part in rows.groupby("estimator", sort=False):
        s = part.set_index("candidate")["score"]
        table[SIZE_BASELINES[str(name)]] = s
        table[f"{name}_rank"] = s.rank(ascending=False, method="min").astype("Int64")
        picks.append(f"{name} '{s.idxmax()}'")
    return table, ("free baselines would pick: " + ", ".join(picks)) if picks else ""
