"""SFDA, GBC, NCTI, the energy score and the rank ensemble against independent computations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, linalg, stats

from audiotransfer.advise import rank, recent


def blobs(
    n: int = 90, d: int = 6, classes: int = 3, scale: float = 0.3, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    f = scale * (rng.normal(size=(classes, d))[y] + rng.normal(size=(n, d)))
    return f, y


def shrunk_within(f: np.ndarray, y: np.ndarray, lam: float) -> np.ndarray:
    """(1 - lam) Sw + lam * mean eigenvalue * I, Sw the prior-weighted biased class covariances."""
    d = f.shape[1]
    sw = np.zeros((d, d))
    for k in np.unique(y):
        g = f[y == k] - f[y == k].mean(axis=0)
        sw += g.T @ g / len(f)
    return (1 - lam) * sw + lam * np.trace(sw) / d * np.eye(d)


def gaussian_posteriors(f: np.ndarray, y: np.ndarray, lam: float) -> np.ndarray:
    """Shared-covariance Gaussian class posteriors with the shrunk within-class covariance (dense solve)."""
    cov = shrunk_within(f, y, lam)
    classes = np.unique(y)
    means = np.stack([f[y == k].mean(axis=0) for k in classes])
    priors = np.array([(y == k).mean() for k in classes])
    w = np.linalg.solve(cov, means.T)  # (d, C)
    logits = f @ w - 0.5 * np.einsum("cd,dc->c", means, w) + np.log(priors)
    return np.exp(logits - logits.max(axis=1, keepdims=True)) / np.exp(logits - logits.max(axis=1, keepdims=True)).sum(
        axis=1, keepdims=True
    )


def test_sfda_matches_a_dense_computation() -> None:
    f, y = blobs()
    sw = shrunk_within(f, y, 0.0)
    lam = max(np.exp(-5 * np.max(np.linalg.eigvalsh(sw))), 1e-10)
    assert 1e-3 < lam < 1  # the shrinkage is active on this data
    assert recent.sfda_shrinkage(f, y) == pytest.approx(lam, rel=1e-10)
    p = gaussian_posteriors(f, y, lam)
    soft = np.exp(p) / np.exp(p).sum(axis=1, keepdims=True)
    means = np.stack([f[y == k].mean(axis=0) for k in range(3)])
    mixed = f.copy()
    for i in range(len(f)):
        others = np.mean([means[k] for k in range(3) if k != y[i]], axis=0)
        mixed[i] = soft[i, y[i]] * f[i] + (1 - soft[i, y[i]]) * others
    expected = np.mean(gaussian_posteriors(mixed, y, lam)[np.arange(len(y)), y])
    assert recent.sfda(f, y) == pytest.approx(expected, rel=1e-8)


def test_bhattacharyya_matches_numerical_integration() -> None:
    mu = np.array([[0.0, 1.0], [0.7, -0.5]])
    var = np.array([[1.0, 0.5], [2.0, 0.8]])
    bc = recent.bhattacharyya(mu, var)
    by_dim = [
        integrate.quad(
            lambda x, j=j: np.sqrt(
                stats.norm.pdf(x, mu[0, j], np.sqrt(var[0, j])) * stats.norm.pdf(x, mu[1, j], np.sqrt(var[1, j]))
            ),
            -30,
            30,
        )[0]
        for j in range(2)
    ]
    assert bc[0, 1] == pytest.approx(np.prod(by_dim), rel=1e-7)
    assert bc[1, 0] == pytest.approx(bc[0, 1]) and np.diag(bc) == pytest.approx([1.0, 1.0])


def test_gbc_identical_classes_overlap_fully_and_separation_raises_it() -> None:
    f, _ = blobs(n=40, classes=1, seed=1)
    twice = np.concatenate([f, f])
    y = np.repeat([0, 1], 40)
    assert recent.gbc(twice, y) == pytest.approx(-2.0)  # one ordered pair each way, coefficient 1
    near, far = blobs(scale=0.3, seed=2), blobs(scale=3.0, seed=2)
    assert -6 < recent.gbc(*near) < recent.gbc(*far) <= 0


def test_ncti_parts_match_a_dense_computation() -> None:
    f, y = blobs(n=120, d=5, classes=3, scale=0.5, seed=3)
    seli, ncc, vc = recent.ncti_parts(f, y)
    # with d <= 64 the PCA is a rotation; shrinkage to the mean eigenvalue does not depend on the rotation
    lam = max(np.exp(-np.sort(np.linalg.eigvalsh(np.cov(f.T)))[::-1][:32].sum()), 1e-10)
    p = gaussian_posteriors(f, y, lam)
    assert ncc == pytest.approx(p[np.arange(len(y)), y].mean(), rel=1e-7)
    nuc = sum(np.linalg.svd(p[y == k], compute_uv=False).sum() for k in range(3))
    assert vc == pytest.approx(np.log(nuc), rel=1e-7)
    sw = shrunk_within(f, y, lam)
    total = np.cov(f.T, bias=True)
    st = (1 - lam) * total + lam * np.trace(total) / 5 * np.eye(5)
    vals, vecs = linalg.eigh(st - sw, sw)
    low = f @ vecs[:, np.argsort(vals)[::-1][:2]]
    assert seli == pytest.approx(np.linalg.svd(low - low.mean(axis=0), compute_uv=False).sum(), rel=1e-6)


def test_ncti_combine_by_hand() -> None:
    parts = {"a": (1.0, 0.5, 2.0), "b": (3.0, 0.7, 2.0), "c": (2.0, 0.9, 4.0)}
    # seli -> 0, 1, 0.5; ncc -> 0, 0.5, 1; vc -> 0, 0, 1
    assert recent.ncti_combine(parts) == pytest.approx({"a": 0.0, "b": 1.5, "c": 0.5})
    assert recent.ncti_combine({"only": (1.0, 0.5, 2.0)}) == {"only": 0.0}


def test_energy_is_the_mean_log_sum_exp() -> None:
    f, y = blobs(n=12, d=4)
    assert recent.energy(f, y) == pytest.approx(np.mean(np.log(np.exp(f).sum(axis=1))))
    assert recent.energy(f + 2.0, y) == pytest.approx(recent.energy(f, y) + 2.0)


def test_ensemble_is_minus_the_mean_member_rank() -> None:
    long = pd.DataFrame(
        {
            "candidate": ["a", "b", "c"] * 2,
            "estimator": ["knn"] * 3 + ["logme"] * 3,
            "score": [0.9, 0.5, 0.1, -1.0, -2.0, 0.0],
            "seconds": 0.0,
            "note": "",
        }
    )
    got = rank.ensemble(long, members=("knn", "logme")).set_index("candidate")["score"]
    # ranks: knn a1 b2 c3; logme c1 a2 b3
    assert got.to_dict() == pytest.approx({"a": -1.5, "b": -2.5, "c": -2.0})


def test_pooled_estimators_in_the_long_table() -> None:
    made = {name: blobs(scale=s, seed=4) for name, s in [("weak", 0.1), ("strong", 2.0)]}
    inputs = {k: rank.Inputs(f, np.zeros((len(y), 3)), y) for k, (f, y) in made.items()}
    long = rank.score(inputs, ["ncti", "ensemble"])
    scores = long.pivot(index="candidate", columns="estimator", values="score")
    assert set(rank.ENSEMBLE) <= set(scores.columns)  # the members are computed for the ensemble
    assert scores.loc["strong", "ncti"] > scores.loc["weak", "ncti"]
    assert scores.loc["strong", "ensemble"] > scores.loc["weak", "ensemble"] and scores["ensemble"].min() >= -2
    assert (long["note"] == "").all()
