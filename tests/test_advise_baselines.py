"""Baselines and the scoring of rankings: hand-worked cells, exact expectations, the published table."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from audiotransfer.advise import baselines as bl
from audiotransfer.analysis.advisor import published_baselines


def test_cell_metrics_by_hand() -> None:
    truth = pd.Series({"a": 0.60, "b": 0.70, "c": 0.65, "d": 0.50})
    m = bl.cell_metrics(pd.Series({"a": 4.0, "b": 1.0, "c": 3.0, "d": 2.0}), truth)
    # top-1 a (0.60): regret 0.10; top-3 a, c, d: best of them 0.65, regret 0.05
    assert m["top1"] == 0.0 and m["regret"] == pytest.approx(0.10) and m["top3_regret"] == pytest.approx(0.05)
    assert m["tau_w"] == pytest.approx(stats.weightedtau([4.0, 1.0, 3.0, 2.0], truth.to_numpy()).statistic)
    best = bl.cell_metrics(truth * 2, truth)
    assert best == pytest.approx({"tau_w": 1.0, "top1": 1.0, "regret": 0.0, "top3_regret": 0.0})
    assert np.isnan(bl.cell_metrics(pd.Series({"a": 1.0, "b": 1.0, "c": 1.0}), truth)["tau_w"])  # constant


def test_random_matches_the_exact_expectation_over_all_orders() -> None:
    truth = pd.Series({"a": 0.1, "b": 0.5, "c": 0.3, "d": 0.2})
    exact = pd.DataFrame(
        [
            bl.cell_metrics(pd.Series(np.array(p, float), index=truth.index), truth)
            for p in itertools.permutations(range(4))
        ]
    ).mean()
    drawn = bl.random_metrics(truth, draws=1500).mean()
    assert exact["top1"] == pytest.approx(0.25) and exact["regret"] == pytest.approx((0.4 + 0.2 + 0.3) / 4)
    assert drawn.to_numpy() == pytest.approx(exact.to_numpy(), abs=0.05)


def test_size_baselines_need_known_and_differing_sizes() -> None:
    sizes = pd.DataFrame(
        {"clips": [10, 20, 30], "classes": [5, 5, 5], "parameters": [1e6, np.nan, 2e6]}, index=["a", "b", "c"]
    )
    rows = bl.size_scores(sizes)
    assert set(rows["estimator"]) == {"largest"}  # classes all equal, one parameter count missing
    assert rows.set_index("candidate")["score"].to_dict() == {"a": 10.0, "b": 20.0, "c": 30.0}


def test_summary_intervals_and_verdict_wording() -> None:
    cells = pd.DataFrame(
        {
            "cell": [f"c{i}" for i in range(6)] * 2,
            "estimator": ["knn"] * 6 + ["largest"] * 6,
            "tau_w": [0.9, 0.8, 0.85, 0.9, 0.7, 0.8, 0.1, 0.2, 0.0, 0.3, 0.1, 0.2],
            "top1": 1.0,
            "regret": 0.0,
            "top3_regret": 0.0,
        }
    )
    table = bl.summary(cells)
    assert table.loc["knn", "tau_w"] == pytest.approx(0.825)
    assert table.loc["knn", "tau_w_low"] <= 0.825 <= table.loc["knn", "tau_w_high"]
    v = bl.verdict(cells, "knn")
    assert v.difference == pytest.approx(0.675) and v.low > 0 and v.cells == 6
    assert v.line().startswith("knn beat picking the largest pre-training set by +0.68 weighted tau")
    diffs = [0.2, -0.2, 0.1, -0.1, 0.3, -0.3]
    tied = cells.assign(tau_w=np.r_[[0.1, 0.5, -0.2, 0.3, 0.0, 0.2], np.add([0.1, 0.5, -0.2, 0.3, 0.0, 0.2], diffs)])
    assert "no better than picking the largest pre-training set" in bl.verdict(tied, "knn").line()
    few = cells[cells["cell"].isin(["c0", "c1"])]
    assert "too few to tell" in bl.verdict(few, "knn").line()


def test_published_table_baselines() -> None:
    cells = published_baselines(draws=200)
    tau = cells.pivot(index="cell", columns="estimator", values="tau_w")
    # the figures: rank states by pre-training clips -> 0.57 / 0.57 / 0.14
    assert tau.loc[["dcase2020_task1a", "dcase2018_task3", "speech_commands"], "largest"].round(2).tolist() == [
        0.57,
        0.57,
        0.14,
    ]
    top1 = cells.pivot(index="cell", columns="estimator", values="top1")
    assert top1["largest"].sum() == 2  # 'AS' is the best state on scenes and commands, not on birds
    assert abs(tau["random"]).max() < 0.2
