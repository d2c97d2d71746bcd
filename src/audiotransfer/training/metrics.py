"""Evaluation metrics, computed with scikit-learn (single-label ones from a numpy confusion matrix; scipy for
d-prime).

Multi-label: mAP (macro average precision), macro ROC AUC, d-prime, micro and macro F1 at 0.5.
Single-label: accuracy, UAR (macro recall), macro F1. Binary: ROC AUC of the positive class, plus accuracy
and UAR. Classes without positives (or, for AUC, without negatives) in the evaluated set cannot be
scored: they are left out of the macro averages and reported in `Scores.skipped`, never turned into NaN.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.stats import norm
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score


@dataclass
class Scores:
    """Metric values (floats) and the class indices that could not be scored."""

    values: dict[str, float]
    skipped: list[int] = field(default_factory=list)


def d_prime(auc: float) -> float:
    """Sensitivity index from ROC AUC: sqrt(2) * Phi^-1(AUC) (PANNs' convention)."""
    return float(math.sqrt(2.0) * norm.ppf(np.clip(auc, 1e-6, 1 - 1e-6)))


def multilabel_scores(targets: np.ndarray, probs: np.ndarray) -> Scores:
    """Scores of (N, C) multi-hot targets against (N, C) probabilities."""
    targets = np.asarray(targets).astype(bool)
    positives = targets.sum(axis=0)
    scorable = (positives > 0) & (positives < len(targets))
    skipped = np.flatnonzero(~scorable).tolist()
    values: dict[str, float] = {}
    if scorable.any():
        t, p = targets[:, scorable], probs[:, scorable]
        values["mAP"] = float(np.mean(average_precision_score(t, p, average=None)))
        values["auc"] = float(np.mean(roc_auc_score(t, p, average=None)))
        values["d_prime"] = d_prime(values["auc"])
    predicted = probs >= 0.5
    values["micro_f1"] = float(f1_score(targets, predicted, average="micro", zero_division=0))
    has_pos = positives > 0
    values["macro_f1"] = (
        float(f1_score(targets[:, has_pos], predicted[:, has_pos], average="macro", zero_division=0))
        if has_pos.any()
        else 0.0
    )
    values["classes_scored"] = float(scorable.sum())
    return Scores(values, skipped)


def singlelabel_scores(classes: np.ndarray, probs: np.ndarray) -> Scores:
    """Scores of (N,) class indices against (N, C) class probabilities (C == 2: binary, adds AUC).

    Accuracy, UAR and macro F1 come from one confusion matrix (numpy): scikit-learn's functions give the
    same values but validate their inputs on every call, which cost more than a small run's dev pass."""
    classes = np.asarray(classes).astype(np.int64)
    n_classes = probs.shape[1]
    predicted = probs.argmax(axis=1)
    confusion = np.bincount(classes * n_classes + predicted, minlength=n_classes * n_classes)
    confusion = confusion.reshape(n_classes, n_classes)
    hits, actual, said = np.diag(confusion), confusion.sum(axis=1), confusion.sum(axis=0)
    present = np.flatnonzero(actual)
    skipped = np.flatnonzero(actual == 0).tolist()
    values = {
        "accuracy": float(hits.sum() / max(1, len(classes))),
        "uar": float(np.mean(hits[present] / actual[present])) if len(present) else 0.0,
        # F1 = 2 tp / (2 tp + fp + fn); a present class has tp + fn > 0, so no zero division
        "macro_f1": float(np.mean(2 * hits[present] / (actual[present] + said[present]))) if len(present) else 0.0,
    }
    if n_classes == 2 and len(present) == 2:
        values["auc"] = float(roc_auc_score(classes, probs[:, 1]))
    values["classes_scored"] = float(len(present))
    return Scores(values, skipped)


def compute_scores(task_type: str, targets: np.ndarray, probs: np.ndarray) -> Scores:
    """Dispatch on the manifest's task type ("multilabel", "multiclass" or "binary")."""
    if task_type == "multilabel":
        return multilabel_scores(targets, probs)
    return singlelabel_scores(targets, probs)
