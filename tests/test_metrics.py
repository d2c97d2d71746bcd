"""Metrics on small cases worked out by hand, including classes absent from the evaluated set."""

from __future__ import annotations

import math

import numpy as np
import pytest

from audiotransfer.training.metrics import compute_scores, d_prime, singlelabel_scores


def test_multilabel_hand_computed() -> None:
    targets = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 0]], dtype=bool)
    probs = np.array([[0.9, 0.2, 0.1], [0.1, 0.6, 0.1], [0.8, 0.4, 0.1], [0.3, 0.7, 0.1]])
    scores = compute_scores("multilabel", targets, probs)
    v = scores.values
    # class 0 ranks perfectly (AP 1, AUC 1); class 1: AP (1/2 + 2/3) / 2, AUC 2/4; class 2 has no positive
    assert scores.skipped == [2] and v["classes_scored"] == 2
    assert v["mAP"] == pytest.approx((1 + (0.5 + 2 / 3) / 2) / 2)
    assert v["auc"] == pytest.approx(0.75)
    assert v["d_prime"] == pytest.approx(math.sqrt(2) * 0.6744897501960817)
    assert v["micro_f1"] == pytest.approx(0.75)  # TP 3, FP 1, FN 1
    assert v["macro_f1"] == pytest.approx(0.75)  # classes 0 and 1: F1 1 and 1/2


def test_singlelabel_uar_skips_absent_classes() -> None:
    classes = np.array([0, 0, 1, 2])
    probs = np.array([[0.7, 0.1, 0.1, 0.1], [0.2, 0.5, 0.2, 0.1], [0.1, 0.6, 0.2, 0.1], [0.1, 0.5, 0.3, 0.1]])
    scores = compute_scores("multiclass", classes, probs)
    assert scores.skipped == [3]
    assert scores.values["accuracy"] == pytest.approx(0.5)
    assert scores.values["uar"] == pytest.approx((0.5 + 1 + 0) / 3)
    assert scores.values["macro_f1"] == pytest.approx((2 / 3 + 0.5 + 0) / 3)
    assert "auc" not in scores.values


def test_binary_reports_auc_and_survives_one_class() -> None:
    probs1 = np.array([0.2, 0.9, 0.6, 0.4])
    probs = np.stack([1 - probs1, probs1], axis=1)
    scores = compute_scores("binary", np.array([0, 1, 0, 1]), probs)
    assert scores.values["auc"] == pytest.approx(0.75)  # 3 of 4 (positive, negative) pairs ordered
    only = compute_scores("binary", np.array([1, 1, 1, 1]), probs)
    assert "auc" not in only.values and only.skipped == [0]
    assert not any(math.isnan(x) for x in only.values.values())


def test_d_prime_is_zero_at_chance() -> None:
    assert d_prime(0.5) == pytest.approx(0.0)
    assert d_prime(1.0) > 6


def test_singlelabel_scores_equal_scikit_learns() -> None:
    """The confusion-matrix scores equal scikit-learn's accuracy, macro recall and macro F1 over the present
    classes, on random tasks that include never-predicted and absent classes."""
    from sklearn.metrics import accuracy_score, f1_score, recall_score

    rng = np.random.default_rng(0)
    for trial in range(200):
        n_classes, n = int(rng.integers(2, 12)), int(rng.integers(1, 80))
        classes, probs = rng.integers(0, n_classes, n), rng.random((n, n_classes))
        if trial % 4 == 0:
            probs[:, 0] += 2.0  # one class predicted for every clip
        predicted, present = probs.argmax(axis=1), np.unique(classes)
        got = singlelabel_scores(classes, probs)
        assert got.values["accuracy"] == pytest.approx(accuracy_score(classes, predicted), abs=1e-12)
        uar = recall_score(classes, predicted, labels=present, average="macro", zero_division=0)
        f1 = f1_score(classes, predicted, labels=present, average="macro", zero_division=0)
        assert got.values["uar"] == pytest.approx(uar, abs=1e-12)
        assert got.values["macro_f1"] == pytest.approx(f1, abs=1e-12)
        assert got.skipped == sorted(set(range(n_classes)) - set(present.tolist()))
