"""The published test UAR table ships with the package and is matched to the states of paper.yaml."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from audiotransfer.analysis.reference import PAPER_STATES, PAPER_TASKS, compare, published

PAPER = Path(__file__).resolve().parents[1] / "examples" / "studies" / "paper.yaml"


def test_published_table_is_package_data_with_14_states_and_3_tasks():
    table = published()
    assert len(table) == 14 * 3 and set(table["corpus"]) == set(PAPER_TASKS)
    assert table["uar"].between(0, 1).all()
    row = table[(table["state"] == "AS") & (table["corpus"] == "dcase2020_task1a")].iloc[0]
    assert row["uar"] == pytest.approx(0.6261) and row["num_classes"] == 527


def test_every_state_and_task_of_paper_yaml_matches_a_published_cell():
    spec = yaml.safe_load(PAPER.read_text())
    states = [*spec["pretraining"]["states"], "scratch"]
    assert set(states) == set(PAPER_STATES)  # every paper state is mapped, nothing else
    labels = set(published()["state"])
    assert {PAPER_STATES[s] for s in states} == labels
    corpora = {t["corpus"] for t in spec["downstream"].values()}
    assert corpora == set(PAPER_TASKS)
    # the fractions are mapped in order of size: the published clip counts fall with the fraction
    sizes = published().drop_duplicates("state").set_index("state")["num_samples"]
    fractions = ["full", "fraction_30pct", "fraction_10pct", "fraction_3pct", "fraction_1pct"]
    assert list(sizes[[PAPER_STATES[f] for f in fractions]]) == sorted(
        sizes[[PAPER_STATES[f] for f in fractions]], reverse=True
    )


def _scores(states: list[str], value: float = 0.6) -> pd.DataFrame:
    return pd.DataFrame(
        [dict(state=s, task=t, protocol="finetune", mean=value) for s in states for t in ("scenes", "words")]
    )


def test_compare_puts_the_users_numbers_beside_the_published_ones():
    spec = yaml.safe_load(PAPER.read_text())
    tasks = pd.DataFrame(
        {
            "task": [*spec["downstream"], "words"],
            "corpus": [t["corpus"] for t in spec["downstream"].values()] + ["esc50"],
        }
    )
    out = compare(_scores(["full", "animal", "mine"]), tasks, "uar").set_index(["state", "task"])
    assert list(out.index) == [("full", "scenes"), ("animal", "scenes")]  # 'mine' and esc50 are not published
    assert out.loc[("full", "scenes"), "published"] == pytest.approx(0.6261)
    assert out.loc[("animal", "scenes"), "difference"] == pytest.approx(0.6 - 0.5634)
    assert compare(_scores(["full", "scratch", "mine"]), tasks, "uar").empty  # one matching state: a coincidence
    assert compare(_scores(["full", "animal"]), tasks, "accuracy").empty  # only UAR is published
