"""Newer transferability estimators, written from their papers (all read the candidate's embeddings).

- SFDA (Shao et al., ECCV 2022): a regularised Fisher discriminant fitted on the embeddings (the within-class
  scatter shrunk towards its mean eigenvalue by lambda = exp(-5 * its largest eigenvalue)); each clip is
  then mixed towards the mean of the other classes' centres by one minus its softened posterior of the true
  class ("ConfMix", the self-challenge), the discriminant refitted, and the score is the mean posterior of
  the true class. Higher = the classes stay separable under the challenge.
- GBC (Pandy et al., CVPR 2022): every class a Gaussian with diagonal covariance in a PCA space of at most
  64 dimensions; the score is minus the sum over ordered class pairs of their Bhattacharyya coefficients
  (overlap). Higher = less overlap.
- NCTI (Wang et al., CVPR 2023): how far the embeddings are from neural collapse on the task. In a PCA space
  of at most 64 dimensions a shrinkage LDA is fitted; three parts: the nuclear norm of its centred projection
  (the SELI geometry term), the mean posterior of the true class (nearest centre), and the log of the summed
  per-class nuclear norms of the posteriors (within-class variability). Each part is min-max normalised over
  the candidate pool and the score is seli + ncc - vc: a pooled estimator (`ncti_combine`).
- Energy (ETran, Gholami et al., ICCV 2023): the mean negative free energy log sum_j exp(f_j) of the
  embeddings; it reads no labels (ETran's energy term: in-distribution-like inputs have low energy).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy import special

from audiotransfer.advise.estimators import _compact, check_inputs

PCA_DIMS = 64


def _lda(shrinkage: float) -> Any:
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    return LinearDiscriminantAnalysis(solver="eigen", shrinkage=float(shrinkage))


def _posteriors(f: np.ndarray, y: np.ndarray, shrinkage: float) -> np.ndarray:
    """Class posteriors (n, C) of a shrinkage LDA fitted on (f, y) and applied to f."""
    with warnings.catch_warnings():  # collinear embeddings: the shrunk covariance is still invertible
        warnings.simplefilter("ignore")
        model = _lda(shrinkage).fit(f, y)
        return np.asarray(model.predict_proba(f))


def sfda_shrinkage(f: np.ndarray, y: np.ndarray) -> float:
    """SFDA's regularisation strength: exp(-5 * largest eigenvalue of the prior-weighted within-class covariance)."""
    y, c = _compact(y)
    priors = np.bincount(y) / len(y)
    sw = sum(p * np.atleast_2d(np.cov(f[y == k].T, bias=True)) for k, p in zip(range(c), priors, strict=True))
    return float(max(np.exp(-5.0 * np.linalg.eigvalsh(sw).max()), 1e-10))


def sfda(f: np.ndarray, y: np.ndarray) -> float:
    """SFDA: mean true-class posterior of the regularised Fisher discriminant after ConfMix."""
    f, y = check_inputs(f, y)
    y, c = _compact(y)
    lam = sfda_shrinkage(f, y)
    soft = special.softmax(_posteriors(f, y, lam), axis=1)  # softened, as the paper does before mixing
    means = np.stack([f[y == k].mean(axis=0) for k in range(c)])
    others = (means.sum(axis=0) - means) / (c - 1)  # the mean of the other classes' centres
    conf = soft[np.arange(len(y)), y][:, None]
    mixed = conf * f + (1.0 - conf) * others[y]
    prob = _posteriors(mixed, y, lam)
    return float(prob[np.arange(len(y)), y].mean())


def _pca(f: np.ndarray, dims: int = PCA_DIMS) -> np.ndarray:
    from sklearn.decomposition import PCA

    k = int(min(dims, f.shape[1], len(f) - 1))
    return np.asarray(PCA(n_components=k, random_state=0).fit_transform(f))


def bhattacharyya(mu: np.ndarray, var: np.ndarray) -> np.ndarray:
    """Bhattacharyya coefficients (C, C) between diagonal Gaussians with means and variances (C, d)."""
    s = (var[:, None, :] + var[None, :, :]) / 2
    dist = 0.125 * ((mu[:, None, :] - mu[None, :, :]) ** 2 / s).sum(axis=2) + 0.5 * (
        np.log(s) - 0.5 * (np.log(var)[:, None, :] + np.log(var)[None, :, :])
    ).sum(axis=2)
    return np.asarray(np.exp(-dist))


def gbc(f: np.ndarray, y: np.ndarray, dims: int = PCA_DIMS) -> float:
    """GBC: minus the summed Bhattacharyya coefficients of every ordered pair of distinct classes."""
    f, y = check_inputs(f, y, min_per_class=2)
    y, c = _compact(y)
    z = _pca(f, dims)
    mu = np.stack([z[y == k].mean(axis=0) for k in range(c)])
    var = np.stack([z[y == k].var(axis=0) for k in range(c)]) + 1e-9
    bc = bhattacharyya(mu, var)
    return float(-(bc.sum() - np.trace(bc)))


def ncti_parts(f: np.ndarray, y: np.ndarray, dims: int = PCA_DIMS) -> tuple[float, float, float]:
    """NCTI's three parts for one candidate: (seli, ncc, vc); see the module docstring."""
    from sklearn.decomposition import PCA

    f, y = check_inputs(f, y)
    y, c = _compact(y)
    k = int(min(dims, f.shape[1], len(f) - 1))
    pca = PCA(n_components=k, random_state=0).fit(f)
    z = pca.transform(f)
    lam = float(max(np.exp(-pca.explained_variance_[:32].sum()), 1e-10))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = _lda(lam).fit(z, y)
        low = np.asarray(model.transform(z))
        prob = np.asarray(model.predict_proba(z))
    seli = float(np.linalg.norm(low - low.mean(axis=0), ord="nuc"))
    ncc = float(prob[np.arange(len(y)), y].mean())
    vc = float(np.log(sum(np.linalg.norm(prob[y == j], ord="nuc") for j in range(c))))
    return seli, ncc, vc


def ncti_combine(parts: Mapping[str, tuple[float, float, float]]) -> dict[str, float]:
    """NCTI over a pool: each part min-max normalised over the candidates, then seli + ncc - vc
    (a part equal for every candidate contributes 0)."""
    names = list(parts)
    table = np.array([parts[n] for n in names], dtype=np.float64).reshape(len(names), 3)
    low, span = table.min(axis=0), np.ptp(table, axis=0)
    norm = np.divide(table - low, span, out=np.zeros_like(table), where=span > 0)
    return {n: float(norm[i, 0] + norm[i, 1] - norm[i, 2]) for i, n in enumerate(names)}


def energy(f: np.ndarray, y: np.ndarray) -> float:
    """ETran's energy score: mean over clips of log sum_j exp(f_j) (minus the free energy, temperature 1);
    the labels are only checked, not read."""
    f, _ = check_inputs(f, y)
    return float(special.logsumexp(f, axis=1).mean())
