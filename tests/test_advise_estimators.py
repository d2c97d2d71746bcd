"""The advisor's estimators against independent computations and hand-worked examples."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize

from audiotransfer.advise import estimators as est
from audiotransfer.advise.rank import ESTIMATORS, Inputs
from audiotransfer.errors import UserError


def slow_evidence(f: np.ndarray, t: np.ndarray, log_alpha: float, log_beta: float) -> float:
    """Closed-form log evidence of Bayesian ridge regression, by dense linear algebra (per sample)."""
    n, d = f.shape
    alpha, beta = np.exp(log_alpha), np.exp(log_beta)
    a = alpha * np.eye(d) + beta * f.T @ f
    m = beta * np.linalg.solve(a, f.T @ t)
    ev = (
        n * np.log(beta)
        + d * np.log(alpha)
        - n * np.log(2 * np.pi)
        - beta * np.sum((t - f @ m) ** 2)
        - alpha * m @ m
        - np.linalg.slogdet(a)[1]
    ) / 2
    return ev / n


@pytest.mark.parametrize("n,d", [(60, 8), (40, 60)])
def test_logme_is_the_maximised_evidence(n: int, d: int) -> None:
    rng = np.random.default_rng(n)
    f = rng.normal(size=(n, d))
    y = rng.integers(0, 3, size=n)
    y[:3] = [0, 1, 2]
    targets = [(y == k).astype(float) for k in range(3)]
    slow = [
        -optimize.minimize(
            lambda p, t=t: -slow_evidence(f, t, *p),
            x0=[0.0, 0.0],
            method="Nelder-Mead",
            options={"xatol": 1e-9, "fatol": 1e-12, "maxiter": 5000},
        ).fun
        for t in targets
    ]
    assert est.logme(f, y) == pytest.approx(np.mean(slow), abs=1e-5)
    for t, s in zip(targets, slow, strict=True):
        assert est.logme_target(f, t) == pytest.approx(s, abs=1e-5)


def test_leep_by_hand() -> None:
    # two clips, two source labels, two target labels
    p = np.array([[0.8, 0.2], [0.4, 0.6], [0.5, 0.5]])
    y = np.array([0, 1, 1])
    joint = np.array([[0.8, 0.2], [0.9, 1.1]]) / 3  # rows: y, cols: z
    cond = joint / joint.sum(axis=0)
    expected = np.mean(
        [
            np.log(0.8 * cond[0, 0] + 0.2 * cond[0, 1]),
            np.log(0.4 * cond[1, 0] + 0.6 * cond[1, 1]),
            np.log(0.5 * cond[1, 0] + 0.5 * cond[1, 1]),
        ]
    )
    assert est.leep(p, y) == pytest.approx(expected)
    # unnormalised rows are renormalised; a head that predicts the labels perfectly scores log 1 = 0
    assert est.leep(2 * p, y) == pytest.approx(expected)
    assert est.leep(np.eye(2)[[0, 1, 1, 0]], np.array([0, 1, 1, 0])) == pytest.approx(0.0)


def test_nce_by_hand() -> None:
    z = np.array([0, 0, 1, 1])
    assert est.nce(z, np.array([0, 0, 1, 1])) == pytest.approx(0.0)  # Z determines Y
    assert est.nce(z, np.array([0, 1, 0, 1])) == pytest.approx(-np.log(2))  # Z says nothing
    # P(z=0) = 3/4 with y 2:1, P(z=1) = 1/4 pure: -H = 3/4 (2/3 log 2/3 + 1/3 log 1/3)
    expected = 0.75 * (2 / 3 * np.log(2 / 3) + 1 / 3 * np.log(1 / 3))
    assert est.nce(np.array([0, 0, 0, 1]), np.array([0, 0, 1, 1])) == pytest.approx(expected)


def test_hscore_known_answers() -> None:
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 20000)
    # one feature: class means +-1, unit noise: between variance 1 of total 2
    f = (2 * y - 1)[:, None] + rng.normal(size=(len(y), 1))
    assert est.hscore(f, y) == pytest.approx(0.5, abs=0.01)
    # without shrinkage it is exactly tr(cov^-1 cov_between) of the sample
    g = rng.normal(size=(50, 3))
    yy = np.arange(50) % 3
    means = np.array([g[yy == k].mean(axis=0) for k in range(3)]) - g.mean(axis=0)
    between = means[yy].T @ means[yy] / 50
    exact = np.trace(np.linalg.inv(np.cov(g, rowvar=False, bias=True)) @ between)
    assert est.hscore(g, yy, shrinkage=False) == pytest.approx(exact)


def test_knn_loo_matches_sklearn() -> None:
    from sklearn.model_selection import LeaveOneOut, cross_val_predict
    from sklearn.neighbors import KNeighborsClassifier

    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, size=90)
    f = rng.normal(size=(90, 5)) + y[:, None] * 0.7
    for k in (1, 5):
        ours = est.knn_loo_predict(f, y, k)
        ref = cross_val_predict(KNeighborsClassifier(k), f, y, cv=LeaveOneOut())
        np.testing.assert_array_equal(ours, ref)
    z = (f - f.mean(axis=0)) / f.std(axis=0)
    ref = cross_val_predict(KNeighborsClassifier(5), z, y, cv=LeaveOneOut())
    assert est.knn_loo(f, y) == pytest.approx(est.uar(y, ref))


def test_linear_probe_separable_and_chance() -> None:
    rng = np.random.default_rng(4)
    y = np.repeat([0, 1, 2], 30)
    assert est.linear_probe(np.eye(3)[y] * 5 + rng.normal(size=(90, 3)) * 0.1, y) == pytest.approx(1.0)
    assert est.linear_probe(rng.normal(size=(90, 3)), y) < 0.6


def planted(strength: float, seed: int = 0, n: int = 240, d: int = 16, classes: int = 4) -> Inputs:
    """Embeddings with class means `strength` apart and a source head whose top-1 follows the class with
    probability growing with the strength: the planted order of transferability."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    centres = rng.normal(size=(classes, d))
    f = strength * centres[y] + rng.normal(size=(n, d))
    logits = rng.normal(size=(n, 10))
    logits[np.arange(n), y] += 3 * strength
    return Inputs(f, logits, y)


def test_every_estimator_ranks_planted_separation_in_order() -> None:
    strengths = [0.1, 0.4, 0.8, 1.6]
    for name, fn in ESTIMATORS.items():
        scores = [fn(planted(s, seed=i)) for i, s in enumerate(strengths)]
        assert np.all(np.diff(scores) > 0), f"{name}: {scores}"


def test_bad_inputs_are_user_errors() -> None:
    f = np.random.default_rng(0).normal(size=(6, 2))
    with pytest.raises(UserError, match="only one class"):
        est.logme(f, np.zeros(6, int))
    with pytest.raises(UserError, match="single clip"):
        est.knn_loo(f, np.array([0, 0, 0, 1, 1, 2]))
    f[2, 1] = np.nan
    with pytest.raises(UserError, match="NaN"):
        est.hscore(f, np.array([0, 0, 0, 1, 1, 1]))
