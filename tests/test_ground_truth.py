"""The demo's ground-truth check: an analysis' tables compared with the world's generator sharing."""

from __future__ import annotations

import pandas as pd

from audiotransfer.data.synthetic import SHARES
from audiotransfer.demo.ground_truth import check_ground_truth

STATES = {
    "all": {},
    "human": {"categories": ["Human sounds"], "fraction": 0.3},
    "animal": {"categories": ["Animal"]},
    "things_nature": {"categories": ["Sounds of things", "Natural sounds"]},
    "fraction_15pc": {"fraction": 0.15},
}
BEST = {"commands": "human", "birds": "animal", "scenes": "things_nature"}


def tables(best: dict[str, str], coef: tuple[float, float, float]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Score, data-similarity and pooled-factor tables as the report's analysis holds them."""
    scores, sims = [], []
    for task in SHARES:
        for state in STATES:
            top = state == best[task]
            for protocol in ("finetune", "linear"):
                scores.append({"state": state, "task": task, "protocol": protocol, "mean": 0.9 if top else 0.7})
            sims.append({"state": state, "task": task, "frechet": 10.0 if top else 30.0, "label_share": 0.5})
    factors = pd.DataFrame([coef], columns=["coef", "ci_low", "ci_high"], index=pd.Index(["similarity"], name="factor"))
    return pd.DataFrame(scores), pd.DataFrame(sims), factors


def check(best: dict[str, str], coef: tuple[float, float, float]) -> list:
    scores, sims, factors = tables(best, coef)
    return check_ground_truth(scores, sims, "frechet", factors, STATES)


def test_matched_states_on_top_agree_everywhere() -> None:
    checks = check(BEST, (0.02, 0.01, 0.03))
    assert len(checks) == 3 * 3 + 1 and all(c.agrees for c in checks)
    assert "human best (0.900" in next(c.found for c in checks if c.subject == "commands (finetune)")


def test_an_unmatched_winner_and_a_null_effect_disagree() -> None:
    wrong = {**BEST, "commands": "animal"}
    checks = {c.subject: c for c in check(wrong, (0.01, -0.01, 0.03))}
    assert not checks["commands (finetune)"].agrees and not checks["commands (linear)"].agrees
    assert not checks["commands (data similarity, frechet)"].agrees and checks["birds (linear)"].agrees
    assert not checks["similarity effect (all tasks pooled)"].agrees
    assert "DISAGREES" in checks["commands (linear)"].line()
    # a random fraction is no category state: only category states compete for the best one
    fraction = {c.subject: c for c in check({**BEST, "scenes": "fraction_15pc"}, (0, 0, 0))}
    assert "fraction_15pc" not in fraction["scenes (finetune)"].found


def test_nothing_to_check_without_scores() -> None:
    assert check_ground_truth(pd.DataFrame(), pd.DataFrame(), "frechet", None, STATES) == []


def test_advisor_top1_against_shares() -> None:
    from audiotransfer.demo.ground_truth import check_advisor

    rows = [
        {"task": task, "candidate": state, "estimator": "knn", "score": 0.9 if state == best else 0.5}
        for task, best in {**BEST, "birds": "all"}.items()
        for state in STATES
    ]
    rows = [dict(r, score=0.7) if r["task"] == "birds" and r["candidate"] == "animal" else r for r in rows]
    checks = {c.subject: c for c in check_advisor(pd.DataFrame(rows), "knn", STATES)}
    assert len(checks) == 3 and checks["commands (advisor, before fine-tuning)"].agrees
    # "all" is no category state: only category states compete, and animal (matched) leads them
    assert checks["birds (advisor, before fine-tuning)"].agrees
    wrong = [dict(r, score=0.95) if r["task"] == "scenes" and r["candidate"] == "human" else r for r in rows]
    checks = {c.subject: c for c in check_advisor(pd.DataFrame(wrong), "knn", STATES)}
    assert not checks["scenes (advisor, before fine-tuning)"].agrees
    assert "human top-1 (knn 0.950" in checks["scenes (advisor, before fine-tuning)"].found
