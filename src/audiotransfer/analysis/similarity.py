"""Similarity between model states (weights) and between data sets (labels, embeddings).

Weights: 1 - cosine similarity of flattened convolution weights, the study's measure (first convolution)
and per block. Data, label-based: the share of a task's clips whose top-1 label under a tagger trained on
the full pre-training corpus belongs to a subset's label set. Top-1 rather than a threshold because it
needs no calibration and counts every clip exactly once; `threshold` switches to "any label with
probability >= threshold is in the subset". Data, embedding-based: Frechet distance (as in FAD) and an
RBF-kernel MMD with the median-heuristic bandwidth between embeddings of the two data sets under one fixed
reference model.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import linalg
from scipy.spatial.distance import cdist

StateDict = Mapping[str, Any]
_BLOCK = re.compile(r"^(conv_block\d+)\.")


def conv_weights(state: StateDict) -> dict[str, np.ndarray]:
    """The 4-D (convolution) weight tensors of a state dict, in order, as float64 arrays."""
    out = {}
    for name, tensor in state.items():
        arr = tensor.detach().cpu().numpy() if hasattr(tensor, "detach") else np.asarray(tensor)
        if name.endswith("weight") and arr.ndim == 4:
            out[name] = arr.astype(np.float64)
    if not out:
        raise ValueError("the state dict holds no convolution weights (4-D '*weight' tensors)")
    return out


def cosine_distance(a: np.ndarray, b: np.ndarray) -> float:
    """1 - cosine similarity of the flattened arrays (0 for identical, up to 2 for opposite)."""
    a, b = np.ravel(a), np.ravel(b)
    if a.shape != b.shape:
        raise ValueError(f"weights have different shapes: {a.shape} vs {b.shape}; compare the same model")
    denom = np.linalg.norm(a) * np.linalg.norm(b)
    return float(1.0 - a @ b / denom) if denom > 0 else float("nan")


def weight_distance(a: StateDict, b: StateDict) -> float:
    """The study's similarity measure: 1 - cosine of the first convolution's flattened weights."""
    first_a, first_b = next(iter(conv_weights(a).values())), next(iter(conv_weights(b).values()))
    return cosine_distance(first_a, first_b)


def block_weight_distances(a: StateDict, b: StateDict) -> dict[str, float]:
    """1 - cosine of all convolution weights of each block (`conv_blockN.*`), concatenated per block."""
    wa, wb = conv_weights(a), conv_weights(b)
    blocks: dict[str, list[str]] = {}
    for name in wa:
        match = _BLOCK.match(name)
        if match and name in wb:
            blocks.setdefault(match.group(1), []).append(name)
    return {
        block: cosine_distance(
            np.concatenate([wa[n].ravel() for n in names]), np.concatenate([wb[n].ravel() for n in names])
        )
        for block, names in blocks.items()
    }


def weight_distance_matrix(states: Mapping[str, StateDict]) -> pd.DataFrame:
    """First-convolution weight distance between every pair of states (symmetric, 0 diagonal)."""
    names = list(states)
    firsts = {n: next(iter(conv_weights(states[n]).values())) for n in names}
    mat = np.zeros((len(names), len(names)))
    for i, a in enumerate(names):
        for j in range(i + 1, len(names)):
            mat[i, j] = mat[j, i] = cosine_distance(firsts[a], firsts[names[j]])
    return pd.DataFrame(mat, index=names, columns=names)


def label_share(
    probs: np.ndarray,
    tagger_labels: Sequence[str],
    subset_labels: Sequence[str],
    threshold: float | None = None,
) -> float:
    """Share of clips (rows of `probs`, tagger scores over `tagger_labels`) assigned to the subset's labels.

    Top-1 by default; with `threshold`, a clip counts when any subset label scores >= threshold.
    """
    probs = np.asarray(probs)
    if probs.ndim != 2 or probs.shape[1] != len(tagger_labels):
        raise ValueError(f"scores of shape {probs.shape} do not match {len(tagger_labels)} tagger labels")
    if len(probs) == 0:
        return float("nan")
    wanted = set(subset_labels)
    mask = np.array([lab in wanted for lab in tagger_labels])
    if threshold is None:
        return float(mask[probs.argmax(axis=1)].mean())
    return float((probs[:, mask] >= threshold).any(axis=1).mean())


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to embeddings a (n, d) and b (m, d), as in FAD."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if len(a) < 2 or len(b) < 2:
        raise ValueError("the Frechet distance needs at least two embeddings per data set")
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    # a tiny ridge keeps sqrtm well-posed when covariances are singular (fewer points than dimensions,
    # or embedding units that never fire); it shifts the distance by a negligible constant
    ridge = 1e-6 * max(np.trace(cov_a), np.trace(cov_b), 1e-12) / a.shape[1] * np.eye(a.shape[1])
    cov_a, cov_b = cov_a + ridge, cov_b + ridge
    covmean = np.real(linalg.sqrtm(cov_a @ cov_b))
    dist = np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(covmean)
    return float(max(dist, 0.0))


def mmd_rbf(a: np.ndarray, b: np.ndarray, bandwidth: float | None = None) -> float:
    """Unbiased squared MMD with an RBF kernel; bandwidth by the median heuristic over pooled distances."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    n, m = len(a), len(b)
    if n < 2 or m < 2:
        raise ValueError("the MMD needs at least two embeddings per data set")
    pooled = np.concatenate([a, b])
    d2 = cdist(pooled, pooled, "sqeuclidean")
    if bandwidth is None:
        off = d2[np.triu_indices(len(pooled), k=1)]
        bandwidth = float(np.sqrt(0.5 * np.median(off[off > 0]))) if (off > 0).any() else 1.0
    k = np.exp(-d2 / (2 * bandwidth**2))
    kaa, kbb, kab = k[:n, :n], k[n:, n:], k[:n, n:]
    term_a = (kaa.sum() - np.trace(kaa)) / (n * (n - 1))
    term_b = (kbb.sum() - np.trace(kbb)) / (m * (m - 1))
    return float(term_a + term_b - 2 * kab.mean())
