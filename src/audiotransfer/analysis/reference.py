"""The study authors' published test UAR (14 states x 3 tasks), beside a user's numbers when the study matches.

The table ships as package data (`reference/ontotlaudio_finetune_test_uar.csv`; provenance in the README
beside it: the authors' companion repository, CNN10 fine-tuned, mean over three seeds). A study matches when
its tasks use the published corpora and its states carry the names of `examples/studies/paper.yaml`
(`PAPER_STATES` maps those names to the authors' row labels).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

TABLE = Path(__file__).with_name("reference") / "ontotlaudio_finetune_test_uar.csv"
METRIC = "uar"
PROTOCOL = "finetune"
PAPER_STATES = {
    "full": "AS",
    "fraction_30pct": "AS-0.3",
    "fraction_10pct": "AS-0.1",
    "fraction_3pct": "AS-0.03",
    "fraction_1pct": "AS-0.01",
    "human_animal_natural": "AS-naturalsources",
    "human": "AS-humansounds",
    "speech": "AS-speech",
    "animal_natural_things": "AS-nonhuman",
    "things": "AS-things",
    "animal_natural": "AS-nature",
    "animal": "AS-animal",
    "natural": "AS-naturalsounds",
    "scratch": "scratch",
}
PAPER_TASKS = ("dcase2020_task1a", "dcase2018_task3", "speech_commands")  # corpus names = table columns


def published() -> pd.DataFrame:
    """The published table, long: state (the authors' label), corpus, uar, num_samples, num_classes."""
    wide = pd.read_csv(TABLE)
    return wide.melt(
        id_vars=["state", "num_samples", "num_classes"],
        value_vars=list(PAPER_TASKS),
        var_name="corpus",
        value_name="uar",
    )


def compare(scores: pd.DataFrame, tasks: pd.DataFrame, metric: str) -> pd.DataFrame:
    """state, task, yours, published, difference for the study's matching cells (empty when none match).

    `scores`: the report's score table; `tasks`: the store's tasks table (task, corpus). Cells match when the
    metric is UAR, the protocol is fine-tuning, the task's corpus is a published task and the state is named
    as in paper.yaml; at least two pre-trained states (besides scratch) must match, so an unrelated study with
    a state called 'full' is not compared.
    """
    cols = ["state", "task", "yours", "published", "difference"]
    if metric != METRIC or scores.empty or tasks.empty or "corpus" not in tasks:
        return pd.DataFrame(columns=cols)
    corpus = tasks.set_index("task")["corpus"].to_dict()
    mine = scores[
        (scores["protocol"] == PROTOCOL)
        & scores["state"].isin(list(PAPER_STATES))
        & scores["task"].map(corpus).isin(PAPER_TASKS)
    ]
    if mine.loc[mine["state"] != "scratch", "state"].nunique() < 2:
        return pd.DataFrame(columns=cols)
    ref = published().set_index(["state", "corpus"])["uar"]
    rows = [
        dict(state=r.state, task=r.task, yours=r.mean, published=ref[(PAPER_STATES[r.state], corpus[r.task])])
        for r in mine.itertuples()
    ]
    out = pd.DataFrame(rows, columns=cols[:-1])
    return out.assign(difference=out["yours"] - out["published"])
