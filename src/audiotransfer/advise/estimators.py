"""Transferability estimators: plain-array functions of (embeddings or source-head outputs, labels).

Each returns one float, larger = the candidate should transfer better. All take integer class labels
`y` (n,) in 0..C-1. They are the published estimators in their plain form:
- LogME (You et al., 2021): the mean per-sample log evidence of Bayesian linear regression of one-vs-rest
  targets on the embeddings, with the prior and noise precisions (alpha, beta) found by fixed-point
  iteration; averaged over classes.
- LEEP (Nguyen et al., 2020): log-likelihood of the labels under the empirical conditional P(y | z) of
  target labels given the candidate's own source-label distribution.
- NCE (Tran et al., 2019): negative conditional entropy H(Y | Z) of target labels given the source head's
  top-1 label.
- H-score (Bao et al., 2019) with Ledoit-Wolf shrinkage of the feature covariance (Ibrahim et al., 2022):
  tr(cov(f)^-1 cov(E[f | y])), how much of the feature variance is between-class.
- kNN leave-one-out UAR: each clip classified by the vote of its k nearest other clips.
- Linear probe: stratified k-fold logistic regression on standardised embeddings, mean UAR.
"""

from __future__ import annotations

import warnings

import numpy as np

from audiotransfer.errors import UserError


def check_inputs(
    x: np.ndarray, y: np.ndarray, what: str = "embeddings", min_per_class: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """float64 (n, d) and int (n,) arrays; UserError for NaN, shape mismatch, one class, or classes with
    fewer than `min_per_class` clips (leave-one-out and cross-validation need two)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y)
    if x.ndim != 2 or len(x) != len(y):
        raise UserError(f"{what} of shape {x.shape} do not match {len(y)} labels", fix="pass one row per labelled clip")
    if not np.isfinite(x).all():
        bad = int((~np.isfinite(x).all(axis=1)).sum())
        raise UserError(
            f"{what} hold NaN or infinite values in {bad} of {len(x)} clips",
            fix="check the candidate's weights (a diverged training gives NaN embeddings)",
        )
    counts = np.bincount(y.astype(np.int64))
    counts = counts[counts > 0]
    if len(counts) < 2:
        raise UserError(
            "the task has only one class among its labelled clips",
            fix="a transferability estimate needs at least two classes",
        )
    if counts.min() < min_per_class:
        raise UserError(
            f"{int((counts < min_per_class).sum())} class(es) have a single clip",
            fix="give every class at least two training clips",
        )
    return x, y.astype(np.int64)


def _compact(y: np.ndarray) -> tuple[np.ndarray, int]:
    """Labels renumbered 0..C-1 (classes absent from y dropped) and C."""
    classes, inverse = np.unique(y, return_inverse=True)
    return inverse, len(classes)


# ------------------------------------------------------------------------------------------------ LogME
def _evidence(s2: np.ndarray, z2: np.ndarray, res2: float, n: int, d: int, alpha: float, beta: float) -> float:
    """Log evidence per sample, from the SVD form: s2 = singular values^2, z2 = (U'y)^2 on them, res2 = the
    squared norm of y outside U's span."""
    m2 = np.sum(beta**2 * s2 * z2 / (alpha + beta * s2) ** 2)
    fit = np.sum((alpha / (alpha + beta * s2)) ** 2 * z2) + res2
    logdet = np.sum(np.log(alpha + beta * s2)) + (d - len(s2)) * np.log(alpha)
    ev = (n * np.log(beta) + d * np.log(alpha) - n * np.log(2 * np.pi) - beta * fit - alpha * m2 - logdet) / 2
    return float(ev / n)


def logme_target(
    f: np.ndarray, t: np.ndarray, iters: int = 1000, tol: float = 1e-9, svd: tuple[np.ndarray, np.ndarray] | None = None
) -> float:
    """LogME of one real-valued target `t` on features `f` (n, d): the maximised log evidence per sample."""
    n, d = f.shape
    u, s = svd if svd is not None else np.linalg.svd(f, full_matrices=False)[:2]
    s2 = s**2
    z = u.T @ t
    z2 = z**2
    res2 = max(float(t @ t - z2.sum()), 0.0)
    alpha, beta = 1.0, 1.0
    for _ in range(iters):
        gamma = np.sum(beta * s2 / (alpha + beta * s2))
        m2 = np.sum(beta**2 * s2 * z2 / (alpha + beta * s2) ** 2)
        fit = np.sum((alpha / (alpha + beta * s2)) ** 2 * z2) + res2
        new_alpha, new_beta = gamma / max(m2, 1e-12), max(n - gamma, 1e-12) / max(fit, 1e-12)
        done = abs(new_alpha / new_beta - alpha / beta) / (alpha / beta) < tol
        alpha, beta = new_alpha, new_beta
        if done:
            break
    return _evidence(s2, z2, res2, n, d, alpha, beta)


def logme(f: np.ndarray, y: np.ndarray) -> float:
    """LogME of a classification task: mean over classes of the one-vs-rest target's LogME."""
    f, y = check_inputs(f, y)
    y, c = _compact(y)
    u, s, _ = np.linalg.svd(f, full_matrices=False)
    return float(np.mean([logme_target(f, (y == k).astype(np.float64), svd=(u, s)) for k in range(c)]))


# ------------------------------------------------------------------------------------------- LEEP, NCE
def leep(source_probs: np.ndarray, y: np.ndarray) -> float:
    """LEEP from the candidate's source-label distributions (n, Z), rows summing to 1 (renormalised here)."""
    p, y = check_inputs(source_probs, y, "source-head outputs")
    if (p < 0).any():
        raise UserError("source-head outputs hold negative values", fix="pass probabilities, not logits")
    p = p / np.clip(p.sum(axis=1, keepdims=True), 1e-300, None)
    y, c = _compact(y)
    joint = np.zeros((c, p.shape[1]))
    np.add.at(joint, y, p)
    joint /= len(y)
    cond = joint / np.clip(joint.sum(axis=0, keepdims=True), 1e-300, None)  # P(y | z)
    eep = np.einsum("nz,nz->n", p, cond[y])
    return float(np.mean(np.log(np.clip(eep, 1e-300, None))))


def nce(source_labels: np.ndarray, y: np.ndarray) -> float:
    """NCE: -H(Y | Z) with Z the source head's top-1 label per clip (in nats)."""
    z = np.asarray(source_labels).astype(np.int64)
    _, y = check_inputs(z[:, None].astype(np.float64), y, "source labels")
    _, z = np.unique(z, return_inverse=True)
    y, c = _compact(y)
    joint = np.zeros((c, z.max() + 1))
    np.add.at(joint, (y, z), 1.0)
    joint /= len(y)
    pz = joint.sum(axis=0)
    nz = joint > 0
    return float(np.sum(joint[nz] * np.log((joint / pz[None, :])[nz])))


# ---------------------------------------------------------------------------------------------- H-score
def hscore(f: np.ndarray, y: np.ndarray, shrinkage: bool = True) -> float:
    """H-score tr(cov(f)^-1 cov(E[f|y])); the feature covariance by Ledoit-Wolf shrinkage unless disabled."""
    from sklearn.covariance import LedoitWolf

    f, y = check_inputs(f, y)
    f = f - f.mean(axis=0)
    cov = LedoitWolf(assume_centered=True).fit(f).covariance_ if shrinkage else np.cov(f, rowvar=False, bias=True)
    y, c = _compact(y)
    means = np.zeros((c, f.shape[1]))
    np.add.at(means, y, f)
    means /= np.bincount(y)[:, None]
    g = means[y]
    between = g.T @ g / len(f)
    return float(np.trace(np.linalg.pinv(np.atleast_2d(cov), rcond=1e-10, hermitian=True) @ between))


# ------------------------------------------------------------------------------------------ kNN, probe
def uar(y: np.ndarray, pred: np.ndarray) -> float:
    """Unweighted average recall (balanced accuracy) over the classes present in y."""
    classes = np.unique(y)
    return float(np.mean([(pred[y == k] == k).mean() for k in classes]))


def knn_loo_predict(f: np.ndarray, y: np.ndarray, k: int = 5) -> np.ndarray:
    """Leave-one-out k-nearest-neighbour predictions (Euclidean; majority vote, ties to the lowest class)."""
    from sklearn.neighbors import NearestNeighbors

    k = min(k, len(f) - 1)
    _, idx = NearestNeighbors(n_neighbors=k + 1).fit(f).kneighbors(f)
    rows = np.arange(len(f))
    # drop each clip itself (normally the first neighbour; with duplicates it may be elsewhere)
    keep = idx != rows[:, None]
    neigh = np.array([r[m][:k] for r, m in zip(idx, keep, strict=True)])
    votes = np.zeros((len(f), int(y.max()) + 1))
    np.add.at(votes, (np.repeat(rows, k), y[neigh].ravel()), 1.0)
    return votes.argmax(axis=1)


def knn_loo(f: np.ndarray, y: np.ndarray, k: int = 5) -> float:
    """kNN leave-one-out UAR of the (standardised) embeddings."""
    f, y = check_inputs(f, y, min_per_class=2)
    f = _standardise(f)
    return uar(y, knn_loo_predict(f, y, k))


def linear_probe(f: np.ndarray, y: np.ndarray, folds: int = 5, c: float = 1.0, seed: int = 0) -> float:
    """Mean UAR of stratified k-fold logistic regression on standardised embeddings."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    f, y = check_inputs(f, y, min_per_class=2)
    folds = int(min(folds, np.bincount(y)[np.bincount(y) > 0].min()))
    model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=500))
    with warnings.catch_warnings():  # an unconverged fold still gives a usable estimate
        warnings.simplefilter("ignore", ConvergenceWarning)
        pred = cross_val_predict(model, f, y, cv=StratifiedKFold(folds, shuffle=True, random_state=seed))
    return uar(y, pred)


def _standardise(f: np.ndarray) -> np.ndarray:
    std = f.std(axis=0)
    return (f - f.mean(axis=0)) / np.where(std > 0, std, 1.0)


def source_probs(logits: np.ndarray) -> np.ndarray:
    """A distribution over source labels from multi-label logits: sigmoid scores renormalised per clip."""
    p = 1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64)))
    return p / p.sum(axis=1, keepdims=True)
