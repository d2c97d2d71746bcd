"""Known answers for the analysis statistics: CKA, weight and data similarity, scores, factor regression."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ortho_group

from audiotransfer.analysis.cka import MinibatchCKA, linear_cka
from audiotransfer.analysis.factors import FactorFit, answer, fit_factors, headline
from audiotransfer.analysis.scores import TOO_FEW, bounded, metric_range, score_table, t_interval, transfer_gain
from audiotransfer.analysis.similarity import (
    block_weight_distances,
    frechet_distance,
    label_share,
    mmd_rbf,
    weight_distance,
    weight_distance_matrix,
)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(7)


def test_cka_invariant_to_orthogonal_transform_and_scaling(rng):
    x = rng.normal(size=(300, 20))
    q = ortho_group.rvs(20, random_state=1)
    assert linear_cka(x, x @ q) == pytest.approx(1.0, abs=1e-10)
    assert linear_cka(x, 3.7 * x) == pytest.approx(1.0, abs=1e-10)
    assert linear_cka(x, x + 5.0) == pytest.approx(1.0, abs=1e-10)  # centring removes offsets


def test_cka_of_independent_features_is_small_and_falls_with_n(rng):
    values = [
        np.mean([linear_cka(rng.normal(size=(n, 16)), rng.normal(size=(n, 16))) for _ in range(5)])
        for n in (50, 400, 3200)
    ]
    assert values[0] > values[1] > values[2]
    assert values[2] < 0.02


def _pair(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    x = rng.normal(size=(n, 32))
    y = np.tanh(x[:, :16] @ rng.normal(size=(16, 24))) + 0.5 * rng.normal(size=(n, 24))
    return x, y


def test_minibatch_estimator_agrees_with_full_cka(rng):
    x, y = _pair(rng, 4096)
    full = linear_cka(x, y)
    acc = MinibatchCKA()
    for start in range(0, len(x), 256):
        acc.update({"a": {"b1": x[start : start + 256]}, "b": {"b1": y[start : start + 256]}})
    mat = acc.matrix("b1")
    assert acc.num_inputs == 4096 and acc.num_batches == 16
    assert mat.loc["a", "a"] == pytest.approx(1.0)
    assert mat.loc["a", "b"] == pytest.approx(mat.loc["b", "a"])
    assert mat.loc["a", "b"] == pytest.approx(full, abs=0.03)
    # the unbiased estimator removes the positive bias of the full estimator on independent features
    noise = MinibatchCKA()
    for _ in range(8):
        noise.update({"a": {"b1": rng.normal(size=(64, 16))}, "b": {"b1": rng.normal(size=(64, 16))}})
    assert (
        abs(noise.matrix("b1").loc["a", "b"]) < 0.05 < linear_cka(rng.normal(size=(64, 16)), rng.normal(size=(64, 16)))
    )


def test_minibatch_cka_rejects_mismatched_inputs(rng):
    acc = MinibatchCKA()
    with pytest.raises(ValueError, match="inputs"):
        acc.update({"a": {"b": rng.normal(size=(8, 3))}, "c": {"b": rng.normal(size=(9, 3))}})


def _state(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {
        "conv_block1.conv1.weight": rng.normal(size=(8, 1, 3, 3)),
        "conv_block1.bn1.weight": rng.normal(size=8),
        "conv_block1.conv2.weight": rng.normal(size=(8, 8, 3, 3)),
        "conv_block2.conv1.weight": rng.normal(size=(16, 8, 3, 3)),
        "fc1.weight": rng.normal(size=(4, 16)),
    }


def test_weight_distance_of_a_state_with_itself_is_zero(rng):
    a, b = _state(rng), _state(rng)
    assert weight_distance(a, a) == pytest.approx(0.0, abs=1e-12)
    assert weight_distance(a, {k: -v for k, v in a.items()}) == pytest.approx(2.0)
    assert 0.5 < weight_distance(a, b) < 1.5  # independent random weights: cosine near 0
    blocks = block_weight_distances(a, a)
    assert set(blocks) == {"conv_block1", "conv_block2"}
    assert all(v == pytest.approx(0.0, abs=1e-12) for v in blocks.values())
    mat = weight_distance_matrix({"a": a, "b": b})
    assert mat.loc["a", "a"] == 0 and mat.loc["a", "b"] == mat.loc["b", "a"] == pytest.approx(weight_distance(a, b))


def test_label_share_top1_and_threshold():
    probs = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.6], [0.1, 0.2, 0.3]])
    labels = ["dog", "cat", "rain"]
    assert label_share(probs, labels, ["dog"]) == pytest.approx(1 / 3)
    assert label_share(probs, labels, ["cat", "rain"]) == pytest.approx(2 / 3)
    assert label_share(probs, labels, ["rain"], threshold=0.5) == pytest.approx(1 / 3)
    with pytest.raises(ValueError):
        label_share(probs, labels[:2], ["dog"])


def test_embedding_distances_grow_with_shift(rng):
    a = rng.normal(size=(300, 6))
    same = rng.normal(size=(300, 6))
    far = rng.normal(size=(300, 6)) + 2.0
    assert frechet_distance(a, same) < 0.3
    assert frechet_distance(a, far) == pytest.approx(6 * 4.0, rel=0.15)  # ||mu_a - mu_b||^2 = 24
    assert abs(mmd_rbf(a, same)) < 0.02
    assert mmd_rbf(a, far) > 0.2


def _metrics(values: dict[tuple[str, int], float], task: str = "scenes") -> pd.DataFrame:
    return pd.DataFrame(
        [
            dict(state=s, task=task, protocol="finetune", seed=seed, metric="uar", value=v)
            for (s, seed), v in values.items()
        ]
    )


def test_scores_intervals_and_missing_seeds():
    data = _metrics({("full", 1): 0.6, ("full", 2): 0.7, ("full", 3): 0.8, ("tiny", 1): 0.5})
    table = score_table(data, "uar").set_index("state")
    assert table.loc["full", "mean"] == pytest.approx(0.7)
    assert table.loc["full", "std"] == pytest.approx(0.1)
    half = 4.302652729911275 * 0.1 / np.sqrt(3)  # t(0.975, 2)
    assert table.loc["full", "ci_low"] == pytest.approx(0.7 - half)
    assert np.isnan(table.loc["tiny", "ci_low"]) and "unavailable" in table.loc["tiny", "note"]


def test_transfer_gain_paired_welch_and_missing_control():
    paired = _metrics(
        {
            ("full", 1): 0.7,
            ("full", 2): 0.8,
            ("full", 3): 0.9,
            ("scratch", 1): 0.5,
            ("scratch", 2): 0.62,
            ("scratch", 3): 0.7,
        }
    )
    row = transfer_gain(paired, "uar").iloc[0]
    assert row["method"].startswith("paired") and row["gain"] == pytest.approx(0.58 / 3)
    assert row["ci_low"] < row["gain"] < row["ci_high"]
    welch = _metrics({("full", 1): 0.7, ("full", 2): 0.8, ("scratch", 3): 0.5, ("scratch", 4): 0.6})
    assert transfer_gain(welch, "uar").iloc[0]["method"] == "Welch"
    alone = _metrics({("full", 1): 0.7, ("full", 2): 0.8})
    row = transfer_gain(alone, "uar").iloc[0]
    assert np.isnan(row["gain"]) and "scratch" in row["note"]


def test_bounded_interval_equals_the_t_interval_inside_the_range():
    _, _, low, high = t_interval(np.array([0.6, 0.7, 0.8]))
    assert bounded(low, high, (0.0, 1.0)) == (low, high, "")


def test_bounded_interval_is_never_outside_the_range(rng):
    for _ in range(300):  # two to four seeds near a bound, spreads up to the whole range
        n = int(rng.integers(2, 5))
        values = np.clip(rng.uniform(0.0, 1.0) + rng.uniform(0.0, 0.6) * rng.normal(size=n), 0.0, 1.0)
        mean, _, low, high = t_interval(values)
        blow, bhigh, note = bounded(low, high, (0.0, 1.0))
        if np.isnan(blow):
            assert (high - low > 1.0 or high - low < 1e-9) and note.startswith(TOO_FEW)
        else:
            assert 0.0 <= blow <= bhigh <= 1.0 and blow <= mean <= bhigh
            assert (note == "") == (blow == low and bhigh == high)


def test_seeds_that_agree_exactly_give_no_zero_width_interval():
    """Two seeds with the same paired difference (discrete UAR) must not read as a certain, 'clear' gain."""
    data = _metrics({("full", 1): 0.75, ("full", 2): 0.80, ("scratch", 1): 0.70, ("scratch", 2): 0.75})
    gain = transfer_gain(data, "uar").iloc[0]
    assert gain["gain"] == pytest.approx(0.05) and np.isnan(gain["ci_low"]) and gain["note"].startswith(TOO_FEW)
    same = score_table(_metrics({("full", 1): 0.8, ("full", 2): 0.8}), "uar").iloc[0]
    assert same["mean"] == pytest.approx(0.8) and np.isnan(same["ci_high"]) and same["note"].startswith(TOO_FEW)


def test_scores_and_gains_say_too_few_seeds_instead_of_a_wider_interval():
    data = _metrics(
        {
            ("full", 1): 0.05,
            ("full", 2): 0.95,
            ("near", 1): 0.97,
            ("near", 2): 0.99,
            ("near", 3): 0.93,
            ("scratch", 1): 0.9,
            ("scratch", 2): 0.1,
        }
    )
    table = score_table(data, "uar").set_index("state")
    assert np.isnan(table.loc["full", "ci_low"]) and table.loc["full", "note"].startswith(TOO_FEW)
    assert table.loc["near", "ci_high"] == 1.0 and "clipped" in table.loc["near", "note"]  # t-interval reaches 1.04
    gains = transfer_gain(data, "uar").set_index("state")
    assert np.isnan(gains.loc["full", "ci_low"]) and gains.loc["full", "note"].startswith(TOO_FEW)
    assert metric_range("uar", gain=True) == (-1.0, 1.0) and metric_range("loss") == (-np.inf, np.inf)


def _planted(rng: np.random.Generator, n: int, noise: float) -> pd.DataFrame:
    samples = 10 ** rng.uniform(2, 5, n)
    classes = 10 ** rng.uniform(0.5, 2.7, n)
    similarity = rng.uniform(0, 1, n)
    z = lambda v: (v - v.mean()) / v.std(ddof=1)  # noqa: E731
    score = 0.5 + 0.02 * z(np.log10(samples)) + 0.01 * z(np.log10(classes)) + 0.08 * z(similarity)
    return pd.DataFrame(
        dict(samples=samples, classes=classes, similarity=similarity, score=score + noise * rng.normal(size=n))
    )


def test_regression_recovers_planted_coefficients(rng):
    fit = fit_factors(_planted(rng, 40, 0.005), metric="UAR", label="scenes")
    t = fit.table
    for factor, coef in (("samples", 0.02), ("classes", 0.01), ("similarity", 0.08)):
        assert t.loc[factor, "ci_low"] < t.loc[factor, "coef"] < t.loc[factor, "ci_high"]
        assert abs(t.loc[factor, "coef"] - coef) < t.loc[factor, "ci_high"] - t.loc[factor, "ci_low"]  # ~4 SE
        assert t.loc[factor, "coef"] == pytest.approx(coef, abs=0.005)
    assert fit.most_important() == "similarity"
    assert t["lmg"].sum() == pytest.approx(fit.r2)
    text = answer(fit)
    assert "data similarity mattered most" in text
    lines = headline(fit)
    assert len(lines) == 3 and "mattered most" in lines[2]


def test_regression_says_when_the_data_cannot_tell(rng):
    data = _planted(rng, 14, 0.05)
    data["classes"] = data["samples"] ** 0.5 * (1 + 0.01 * rng.normal(size=14))  # collinear with samples
    text = answer(fit_factors(data, metric="UAR"))
    assert "cannot separate" in text
    data["classes"] = data["samples"] ** 0.5  # exactly collinear: no separate estimates, no invented intervals
    exact = fit_factors(data, metric="UAR")
    assert exact.table.loc[["samples", "classes"], "coef"].isna().all()
    assert np.isfinite(exact.table.loc["similarity", "coef"]) and "exactly collinear" in answer(exact)
    few = fit_factors(_planted(rng, 4, 0.01), metric="UAR")
    assert not np.isfinite(few.r2) and "too few" in answer(few)


def test_pooled_regression_with_task_effects(rng):
    a, b = _planted(rng, 14, 0.005), _planted(rng, 14, 0.005)
    b["score"] += 0.3  # a different task level must not leak into the factors
    pooled = pd.concat([a.assign(task="scenes"), b.assign(task="birds")], ignore_index=True)
    fit = fit_factors(pooled, metric="UAR")
    assert fit.table.loc["similarity", "coef"] == pytest.approx(0.08, abs=0.01)
    assert fit.most_important() == "similarity"


def test_pooled_intervals_are_clustered_by_state(rng):
    """One state's rows share its model: a state-level factor is known from the states, not from the rows."""
    states = _planted(rng, 10, 0.02).assign(state=[f"s{i}" for i in range(10)])
    tasks = []
    for offset, task in ((0.0, "scenes"), (0.2, "birds"), (-0.1, "commands")):
        part = states.assign(task=task, score=states["score"] + offset + 0.002 * rng.normal(size=10))
        part["similarity"] = rng.uniform(0, 1, 10)  # similarity varies per task, samples per state only
        tasks.append(part)
    pooled = pd.concat(tasks, ignore_index=True)
    clustered = fit_factors(pooled, metric="UAR")
    naive = fit_factors(pooled.drop(columns="state"), metric="UAR")
    assert clustered.clusters == 10 and naive.clusters == 0
    width = lambda fit, f: fit.table.loc[f, "ci_high"] - fit.table.loc[f, "ci_low"]  # noqa: E731
    assert clustered.table.loc["samples", "coef"] == pytest.approx(naive.table.loc["samples", "coef"])
    assert width(clustered, "samples") > 1.5 * width(naive, "samples")  # 30 rows, but only 10 states


def test_a_factor_mattered_most_only_when_its_interval_excludes_zero():
    table = pd.DataFrame(
        {
            "coef": [0.007, 0.005, 0.007],
            "ci_low": [-0.001, -0.003, 0.002],
            "ci_high": [0.015, 0.012, 0.012],
            "lmg": [0.04, 0.02, 0.03],
            "vif": 1.1,
            "rho": 0.2,
        },
        index=pd.Index(["samples", "classes", "similarity"], name="factor"),
    )
    fit = FactorFit(label="pooled", metric="UAR", n_states=27, table=table, r2=0.5)
    assert fit.most_important() == "similarity"  # samples has the larger share, but its interval includes zero
    text = answer(fit)
    assert "data similarity mattered most" in text and "Log pre-training samples has a larger share" in text
    assert "mattered most" in headline(fit)[2] and "mattered most" not in headline(fit)[0]
    table.loc["similarity", "ci_low"] = -0.001  # nothing clear: the largest share, flagged as unclear
    assert fit.most_important() == "samples" and "no factor clearly mattered most" in answer(fit)
