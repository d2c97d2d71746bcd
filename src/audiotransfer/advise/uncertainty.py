"""How sure is the advice? A bootstrap over the task's clips of one estimator's score for every candidate.

All candidates are scored on the same resampled clips (a paired bootstrap), so the difference between the
top two has its own interval: when it holds zero the two cannot be told apart on this task's clips. kNN and
the probe are resampled through their per-clip predictions (made once, as leave-one-out and
cross-validation already hold each clip out; refitting on a resample would see duplicated clips); every
other single-candidate estimator is recomputed on each resample. Pooled estimators have no interval.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

import audiotransfer.advise.estimators as est
import audiotransfer.advise.rank as rank
from audiotransfer.errors import UserError

REPS = {"knn": 500, "probe": 500}  # per-clip predictions: cheap replicates
REFIT_REPS = 50


@dataclass
class Spread:
    """Per candidate the bootstrap interval of its score, and the top two's difference interval."""

    estimator: str
    low: pd.Series
    high: pd.Series
    top: tuple[str, str] | None = None
    difference: tuple[float, float, float] | None = None  # mean, low, high of top1 - top2

    @property
    def apart(self) -> bool:
        return self.difference is None or not (self.difference[1] <= 0 <= self.difference[2])

    def line(self) -> str:
        if self.top is None or self.difference is None or self.apart:
            return ""
        d, lo, hi = self.difference
        return (
            f"'{self.top[0]}' and '{self.top[1]}' cannot be told apart on this task's clips ({self.estimator} "
            f"difference {d:+.3f}, 95% interval {lo:+.3f} to {hi:+.3f})"
        )


def _predictions(name: str, data: rank.Inputs) -> np.ndarray:
    f, y = est.check_inputs(data.embeddings, data.y, min_per_class=2)
    if name == "knn":
        return est.knn_loo_predict(est._standardise(f), y)
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    folds = int(min(5, np.bincount(y)[np.bincount(y) > 0].min()))
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    return np.asarray(cross_val_predict(model, f, y, cv=StratifiedKFold(folds, shuffle=True, random_state=0)))


def replicates(name: str, inputs: Mapping[str, rank.Inputs], seed: int = 0) -> pd.DataFrame:
    """(replicate x candidate) scores of `name` on paired resamples of the clips (NaN where it fails)."""
    if name not in rank.ESTIMATORS:
        raise UserError(f"no clip bootstrap for the pooled estimator {name}", fix="use a single-candidate estimator")
    y = next(iter(inputs.values())).y
    reps = REPS.get(name, REFIT_REPS)
    draws = np.random.default_rng(seed).integers(0, len(y), size=(reps, len(y)))
    out = {}
    for cand, data in inputs.items():
        try:
            if name in REPS:
                pred = _predictions(name, data)
                out[cand] = [est.uar(data.y[i], pred[i]) for i in draws]
            else:
                out[cand] = [_refit(name, data, i) for i in draws]
        except (UserError, ValueError, np.linalg.LinAlgError):
            out[cand] = [np.nan] * reps
    return pd.DataFrame(out)


def _refit(name: str, data: rank.Inputs, rows: np.ndarray) -> float:
    try:
        return float(rank.ESTIMATORS[name](rank.Inputs(data.embeddings[rows], data.logits[rows], data.y[rows])))
    except (UserError, ValueError, np.linalg.LinAlgError):
        return float("nan")


def spread(name: str, inputs: Mapping[str, rank.Inputs], scores: pd.Series, seed: int = 0) -> Spread:
    """Intervals for every candidate and, for the two best by `scores`, their paired difference."""
    reps = replicates(name, inputs, seed)
    low, high = reps.quantile(0.025), reps.quantile(0.975)
    ranked = scores.dropna().sort_values(ascending=False)
    if len(ranked) < 2:
        return Spread(name, low, high)
    a, b = str(ranked.index[0]), str(ranked.index[1])
    diff = (reps[a] - reps[b]).dropna().to_numpy()
    if len(diff) == 0:
        return Spread(name, low, high, (a, b))
    d = float(scores[a] - scores[b])
    return Spread(name, low, high, (a, b), (d, float(np.percentile(diff, 2.5)), float(np.percentile(diff, 97.5))))
