"""The advice's bootstrap over a task's clips: intervals per candidate and the top two told apart or not."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from audiotransfer.advise import baselines, rank, uncertainty
from audiotransfer.errors import UserError


def inputs(strengths: dict[str, float], n: int = 90, seed: int = 0) -> dict[str, rank.Inputs]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    centres = rng.normal(size=(3, 8))
    noise = rng.normal(size=(n, 8))
    return {k: rank.Inputs(s * centres[y] + noise, np.zeros((n, 4)), y) for k, s in strengths.items()}


def test_knn_intervals_hold_the_estimate_and_separate_clear_winners() -> None:
    data = inputs({"strong": 3.0, "weak": 0.2, "twin": 3.0})
    scores = pd.Series({k: rank.ESTIMATORS["knn"](v) for k, v in data.items()})
    spread = uncertainty.spread("knn", {"strong": data["strong"], "weak": data["weak"]}, scores[["strong", "weak"]])
    for k in ("strong", "weak"):
        assert spread.low[k] <= scores[k] <= spread.high[k]
    assert spread.top == ("strong", "weak") and spread.apart and spread.line() == ""
    # the same embeddings twice: every resample gives the same score, the difference interval is [0, 0]
    same = uncertainty.spread("knn", {"strong": data["strong"], "twin": data["strong"]}, scores[["strong", "twin"]])
    assert not same.apart and "cannot be told apart" in same.line()


def test_refit_estimators_are_resampled_and_pooled_ones_refused() -> None:
    data = inputs({"a": 2.0, "b": 0.5}, n=60)
    reps = uncertainty.replicates("hscore", data)
    assert reps.shape == (uncertainty.REFIT_REPS, 2) and reps["a"].std() > 0
    assert (reps["a"] > reps["b"]).mean() > 0.9
    with pytest.raises(UserError, match="pooled"):
        uncertainty.replicates("ncti", data)


def test_annotate_adds_sizes_and_baseline_picks() -> None:
    table = pd.DataFrame({"knn": [0.9, 0.5, 0.4]}, index=pd.Index(["a", "b", "c"], name="candidate"))
    sizes = pd.DataFrame({"clips": [10, 300, 20], "classes": [8, 2, 2]}, index=["a", "b", "c"])
    out, line = baselines.annotate(table, sizes)
    assert out["largest_rank"].tolist() == [3, 1, 2] and out["clips"].tolist() == [10, 300, 20]
    assert line == "free baselines would pick: largest 'b', most_classes 'a'"
