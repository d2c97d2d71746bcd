"""Downstream scores over seeds with 95% t-intervals, and transfer gain over the scratch control.

Input is the long table of test metrics (one row per run and metric: state, task, protocol, seed, metric,
value). With fewer than two seeds an interval is not estimable: it is NaN and the `note` column says so.
Transfer gain = state score - scratch score for the same task and protocol. When both have at least two
seeds in common the interval is a paired t-interval on the per-seed differences (seeds share the
fine-tuning data order, so pairing removes that variance); otherwise Welch's interval on two independent
samples. The `method` column names which was used.

Intervals respect the metric's range (`training.metric_registry.METRICS`: scores in [0, 1], gains in [-1, 1]):
a t-interval from two or three seeds can reach far outside it, so one that is wider than the range becomes
"too few seeds to tell" (NaN bounds, said in `note`), as does one of zero width (seeds that agree exactly say
nothing about the spread), and one that crosses a bound is clipped to it (said in `note`); inside the range it
is the t-interval unchanged.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from audiotransfer.study.spec import SCRATCH
from audiotransfer.training.metric_registry import METRICS

KEYS = ["state", "task", "protocol"]
CONTROL = SCRATCH  # the random-initialisation state every transfer gain is measured against
TOO_FEW = "too few seeds to tell"


def metric_range(metric: str, gain: bool = False) -> tuple[float, float]:
    """The values a metric (or a difference of two of its values, `gain`) can take; unbounded if unknown."""
    lo, hi = METRICS[metric].range if metric in METRICS else (-np.inf, np.inf)
    return (lo - hi, hi - lo) if gain else (lo, hi)


def bounded(low: float, high: float, bounds: tuple[float, float]) -> tuple[float, float, str]:
    """An interval made to respect `bounds`: unchanged inside, clipped across a bound, NaN (too few seeds to
    tell) when wider than the whole range or of zero width (seeds that agree exactly, e.g. two runs with the
    same discrete UAR, say nothing about the spread); the third value says which (empty when unchanged)."""
    lo, hi = bounds
    if not (np.isfinite(low) and np.isfinite(high)):
        return low, high, ""
    if np.isclose(high, low, rtol=0.0, atol=1e-9):
        return np.nan, np.nan, f"{TOO_FEW}: every seed gave the same value, so the spread is unknown"
    if high - low > hi - lo:
        return np.nan, np.nan, f"{TOO_FEW}: the interval is wider than the range [{lo:g}, {hi:g}]"
    if low < lo or high > hi:
        return max(low, lo), min(high, hi), f"interval clipped to the range [{lo:g}, {hi:g}]"
    return low, high, ""


def t_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float, float]:
    """(mean, std, low, high) of a sample; std and bounds are NaN below two values."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return (np.nan,) * 4
    mean = float(values.mean())
    if len(values) < 2:
        return mean, np.nan, np.nan, np.nan
    std = float(values.std(ddof=1))
    half = float(stats.t.ppf(0.5 + level / 2, len(values) - 1) * std / np.sqrt(len(values)))
    return mean, std, mean - half, mean + half


def select_metric(test_metrics: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Rows of one metric, one per (state, task, protocol, seed) (the last if repeated)."""
    rows = test_metrics[test_metrics["metric"] == metric]
    return rows.drop_duplicates(subset=[*KEYS, "seed"], keep="last")


def score_table(test_metrics: pd.DataFrame, metric: str, level: float = 0.95) -> pd.DataFrame:
    """Mean, std and t-interval over seeds per state x task x protocol."""
    rows = []
    for key, grp in select_metric(test_metrics, metric).groupby(KEYS, sort=True):
        mean, std, low, high = t_interval(grp["value"].to_numpy(), level)
        low, high, note = bounded(low, high, metric_range(metric))
        n = int(grp["value"].notna().sum())
        note = note if n >= 2 else f"{n} seed: interval unavailable"
        rows.append(
            dict(zip(KEYS, key, strict=True), n_seeds=n, mean=mean, std=std, ci_low=low, ci_high=high, note=note)
        )
    return pd.DataFrame(rows, columns=[*KEYS, "n_seeds", "mean", "std", "ci_low", "ci_high", "note"])


def transfer_gain(test_metrics: pd.DataFrame, metric: str, control: str = CONTROL, level: float = 0.95) -> pd.DataFrame:
    """Score minus the control state's score per state x task x protocol, with its interval and method."""
    cols = [*KEYS, "gain", "ci_low", "ci_high", "n_state", "n_control", "method", "note"]
    data = select_metric(test_metrics, metric).dropna(subset=["value"])
    ctrl = data[data["state"] == control]
    rows = []
    for key, grp in data[data["state"] != control].groupby(KEYS, sort=True):
        state, task, protocol = key
        base = ctrl[(ctrl["task"] == task) & (ctrl["protocol"] == protocol)]
        row = dict(state=state, task=task, protocol=protocol, n_state=len(grp), n_control=len(base))
        if base.empty:
            rows.append(
                row
                | dict(
                    gain=np.nan,
                    ci_low=np.nan,
                    ci_high=np.nan,
                    method="",
                    note=f"no finished '{control}' runs for this task and protocol",
                )
            )
            continue
        gain = _gain(grp.set_index("seed")["value"], base.set_index("seed")["value"], level)
        gain["ci_low"], gain["ci_high"], note = bounded(gain["ci_low"], gain["ci_high"], metric_range(metric, True))
        rows.append(row | gain | ({"note": note} if note else {}))
    return pd.DataFrame(rows, columns=cols)


def _gain(state: pd.Series, base: pd.Series, level: float) -> dict:
    gain = float(state.mean() - base.mean())
    common = state.index.intersection(base.index)
    if len(common) >= 2:
        diff = (state.loc[common] - base.loc[common]).to_numpy()
        _, _, low, high = t_interval(diff, level)
        return dict(gain=float(diff.mean()), ci_low=low, ci_high=high, method=f"paired ({len(common)} seeds)", note="")
    if len(state) >= 2 and len(base) >= 2:
        res = stats.ttest_ind(state.to_numpy(), base.to_numpy(), equal_var=False)
        ci = res.confidence_interval(level)
        return dict(gain=gain, ci_low=float(ci.low), ci_high=float(ci.high), method="Welch", note="")
    return dict(gain=gain, ci_low=np.nan, ci_high=np.nan, method="", note="fewer than two seeds: interval unavailable")
