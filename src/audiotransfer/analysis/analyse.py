"""The numbers of a study's report: `analyse(study_dir)` computes every table (scores, transfer gain,
similarities, factor fits, the advisor's check) once and returns them as one `Analysis`.

Whatever is missing (no store, a state without a model, fewer than two seeds) becomes a note in
`res.notes`, which the report lists while it renders the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import audiotransfer.analysis.advisor as advisor
import audiotransfer.analysis.gather as gather
import audiotransfer.analysis.overview as overview
import audiotransfer.analysis.reference as reference
from audiotransfer.analysis.factors import DESCRIBE, FACTORS, FactorFit, answer, fit_factors, headline
from audiotransfer.analysis.scores import score_table, transfer_gain
from audiotransfer.errors import UserError
from audiotransfer.study.results import StudyResults, load_results, pretrained_dir
from audiotransfer.study.spec import SCRATCH
from audiotransfer.training.metric_registry import REPORT_FALLBACK

SIMILARITIES = ("frechet", "mmd", "label_share")
# Default data similarity for the factors: the Frechet distance of embeddings sees dilution (a superset
# of the task's material is less similar than the material alone), while the label share saturates at 1
# for every superset and so moves with the class count.
DEFAULT_SIMILARITY = "frechet"


@dataclass
class Measures:
    """The similarity measures of a study: weights, CKA per task, data similarity and its tagger."""

    weights: pd.DataFrame = field(default_factory=pd.DataFrame)
    weight_blocks: pd.DataFrame = field(default_factory=pd.DataFrame)
    cka: dict[str, pd.DataFrame] = field(default_factory=dict)  # task -> long CKA table
    data_sim: pd.DataFrame = field(default_factory=pd.DataFrame)
    tagger: str | None = None


@dataclass
class Analysis:
    """All numbers of a report, built once by `analyse`. A caller may append `(title, lines)` to
    `sections` before the report is written (the demo adds its ground-truth check)."""

    res: StudyResults
    metric: str
    protocols: list[str]
    similarity: str
    scores: pd.DataFrame
    gains: pd.DataFrame
    measures: Measures
    fits: list[FactorFit]
    pooled_fits: dict[str, FactorFit]  # protocol -> pooled fit (forest plot); the first is the headline
    matched: dict[str, set[str]]  # task -> states sharing its material (if known)
    categories: dict[str, list[str]]  # state -> ontology categories it names
    ontology: Any  # audiotransfer.ontology.Ontology of the pre-training corpus, when readable
    full_state: str | None  # the state of every class, the ontology view's top node
    reference: pd.DataFrame  # published numbers beside the study's
    advisor: advisor.AdvisorCheck | None  # "Could we have known before fine-tuning?"
    sections: list[tuple[str, list[str]]] = field(default_factory=list)  # (title, lines) a caller adds

    @property
    def pooled(self) -> FactorFit | None:
        return next(iter(self.pooled_fits.values()), None)

    @property
    def weights(self) -> pd.DataFrame:
        return self.measures.weights

    @property
    def cka(self) -> dict[str, pd.DataFrame]:
        return self.measures.cka

    @property
    def data_sim(self) -> pd.DataFrame:
        return self.measures.data_sim

    @property
    def tagger(self) -> str | None:
        return self.measures.tagger

    @property
    def notes(self) -> list[str]:
        return self.res.notes

    @property
    def headline(self) -> list[str]:
        if self.pooled is None:
            return [f"{f:>10}: not estimable (no finished results)" for f in FACTORS]
        return headline(self.pooled)

    @property
    def paragraph(self) -> str:
        return answer(self.pooled) if self.pooled is not None else " ".join(self.notes)

    @property
    def sentence(self) -> str:
        return one_sentence(self)


def _metric(test: pd.DataFrame, metric: str, notes: list[str]) -> str:
    have = list(dict.fromkeys(test["metric"]))
    if metric in have or not have:
        return metric
    choice = next((m for m in REPORT_FALLBACK if m in have), have[0])
    notes.append(f"Metric '{metric}' was not recorded; the report uses '{choice}' (recorded: {', '.join(have)}).")
    return choice


def factor_table(scores: pd.DataFrame, states: pd.DataFrame, data_sim: pd.DataFrame, similarity: str) -> pd.DataFrame:
    """One row per state x task x protocol: mean score, samples, classes, similarity (higher = closer)."""
    if scores.empty or states.empty:
        return pd.DataFrame(columns=["state", "task", "protocol", "score", "samples", "classes", "similarity"])
    states = states.rename(columns={"num_clips": "samples", "num_classes": "classes"})
    table = scores.rename(columns={"mean": "score"})[["state", "task", "protocol", "score"]]
    table = table[table["state"] != SCRATCH].merge(states[["state", "samples", "classes"]], on="state")
    if data_sim.empty:
        return table.assign(similarity=np.nan)
    sim = data_sim[["state", "task", similarity]].rename(columns={similarity: "similarity"})
    if similarity != "label_share":
        sim["similarity"] = -sim["similarity"]  # distances: larger means less similar
    return table.merge(sim, on=["state", "task"], how="left")


def analyse(
    study_dir: str | Path,
    metric: str = "uar",
    similarity: str = DEFAULT_SIMILARITY,
    max_inputs: int = 256,
    batch_size: int = 64,
    progress: bool = True,
    matched: dict[str, set[str]] | None = None,
) -> Analysis:
    """Compute every table of the report from a study directory.

    `matched` (task -> states that share its material) is a known ground truth, e.g. the synthetic world's:
    the heat map outlines those cells.
    """
    if similarity not in SIMILARITIES:
        raise UserError(f"unknown similarity measure {similarity!r}", fix=f"use one of {', '.join(SIMILARITIES)}")
    res = load_results(study_dir)
    metric = _metric(res.test, metric, res.notes)
    protocols = sorted(res.test["protocol"].unique(), key=lambda p: (p != "finetune", p))
    scores = score_table(res.test, metric)
    categories, ontology, full_state = gather.state_categories(res)
    published = reference.compare(scores, res.tasks, metric)
    short = scores[scores["n_seeds"] < 2]
    if len(short):
        res.notes.append(
            f"{len(short)} state x task x protocol cells have fewer than two finished seeds: "
            "their intervals are marked unavailable, not estimated."
        )
    measures = _measure(res, protocols, similarity, max_inputs, batch_size, progress)
    data = factor_table(scores, res.states, measures.data_sim, similarity)
    fits, pooled_fits = _fit(data, protocols, metric, res.notes)
    _note_without_similarity(data, similarity, res.notes)
    return Analysis(
        res,
        metric,
        protocols,
        similarity,
        scores,
        transfer_gain(res.test, metric),
        measures,
        fits,
        pooled_fits,
        dict(matched or {}),
        categories,
        ontology,
        full_state,
        published,
        advisor.advisor_check(res, scores, progress),
    )


def _measure(
    res: StudyResults, protocols: list[str], similarity: str, max_inputs: int, batch_size: int, progress: bool
) -> Measures:
    """Weight, CKA and data similarity of the study's pre-trained states, with notes on what is missing."""
    tasks = sorted(res.test["task"].unique())
    known = set(res.tasks["task"]) if not res.tasks.empty else set()
    if set(tasks) - known:
        res.notes.append(
            f"Tasks {', '.join(sorted(set(tasks) - known))} are missing from the store's tasks table: "
            "no CKA or data similarity for them."
        )
        tasks = [t for t in tasks if t in known]
    states = [s for s in dict.fromkeys(res.test["state"]) if s != SCRATCH]
    missing = [s for s in states if pretrained_dir(res, s) is None]
    if missing:
        res.notes.append(
            f"No pre-trained model file for {', '.join(missing)}: left out of the weight, CKA and "
            "data-similarity measures."
        )
    weights, weight_blocks = gather.weight_similarity(res, states)
    cka = {
        task: gather.representation_similarity(res, states, task, protocols[0], max_inputs, batch_size, progress)
        for task in (tasks if protocols else [])
    }
    data_sim, tagger = gather.data_similarity(res, tasks, max_inputs, batch_size, progress)
    if data_sim.empty and tasks:
        res.notes.append(
            "Data similarity is unavailable (no pre-trained tagger model with a label set), so the "
            "factor analysis uses samples and classes only."
        )
    elif not data_sim.empty and data_sim[similarity].isna().all():
        res.notes.append(
            f"The '{similarity}' similarity could not be computed (tagger and subset label sets do not match)."
        )
    return Measures(weights, weight_blocks, cka, data_sim, tagger)


def _fit(
    data: pd.DataFrame, protocols: list[str], metric: str, notes: list[str]
) -> tuple[list[FactorFit], dict[str, FactorFit]]:
    """Per task x protocol fits and one pooled fit per protocol; the pooled fits of the protocols after
    the first lead the per-task list (the first protocol's is the headline)."""
    unknown = sorted(data.loc[data[["samples", "classes"]].isna().any(axis=1), "state"].unique())
    if unknown:
        notes.append(
            f"Left out of the factor regression: {', '.join(unknown)}, checkpoint states whose pre-training "
            "data (clips, classes) the study does not know. To include one, add to its state in the study "
            "YAML `pretraining: {clips: N, classes: N, categories: [ontology categories]}` (AST and BEATs: "
            "AudioSet, about 2000000 clips and 527 classes) and run the report again."
        )
    fits = []
    for protocol in protocols:
        part = data[data["protocol"] == protocol]
        for task in sorted(part["task"].unique()):
            fits.append(fit_factors(part[part["task"] == task], metric, label=f"{task} ({protocol})"))
    pooled = [
        fit_factors(data[data["protocol"] == p], metric, label=f"all tasks pooled ({p}, task effects removed)")
        for p in protocols
    ]
    return pooled[1:] + fits, dict(zip(protocols, pooled, strict=True))


def _note_without_similarity(data: pd.DataFrame, similarity: str, notes: list[str]) -> None:
    """Name the states with known counts whose similarity is missing while others have one (a public model
    under an embedding distance, which needs pre-training clips the study does not hold)."""
    known = data[["samples", "classes"]].notna().all(axis=1)
    if data.empty or data["similarity"].isna().all():
        return
    missing = sorted(data.loc[known & data["similarity"].isna(), "state"].unique())
    if missing:
        notes.append(
            f"Left out of the factor regression: {', '.join(missing)}, which have no '{similarity}' data "
            "similarity (it compares pre-training clips with the task's, and the study holds none of theirs). "
            "`audiotransfer study report --similarity label_share` computes theirs from their pre-training "
            "categories."
        )


def one_sentence(a: Analysis) -> str:
    """The answer in one sentence: where pre-training clearly beat scratch, and which factor mattered most."""
    if a.pooled is None or a.gains["gain"].isna().all():
        return "No answer yet: " + (a.notes[0] if a.notes else "the study has no finished results.")
    proto = a.protocols[0]
    g = a.gains[(a.gains["protocol"] == proto)].dropna(subset=["gain"])
    best = g.sort_values("gain", ascending=False).drop_duplicates("task").sort_values("task")
    wins = [f"{r.task}: {r.state} {r.gain:+.3f}" for r in best.itertuples()]
    clear = sum(overview.excludes_zero(r.ci_low, r.ci_high) and r.gain > 0 for r in best.itertuples())
    top = a.pooled.most_important()
    if top is None or not np.isfinite(a.pooled.table.loc[top, "coef"]):
        factor = "the factor analysis has too few states to say which of samples, classes and similarity mattered"
    else:
        row = a.pooled.table.loc[top]
        ci = f"{row['coef']:+.3f} {a.metric} per SD, 95% CI {row['ci_low']:+.3f} to {row['ci_high']:+.3f}"
        factor = (
            f"of samples, classes and similarity, {DESCRIBE[top]} mattered most ({ci})"
            if overview.excludes_zero(row["ci_low"], row["ci_high"])
            else f"no factor clearly mattered most (the largest share, {DESCRIBE[top]}, has an interval that "
            f"includes zero: {ci})"
        )
    return (
        f"Under {proto}, the best pre-training state per task ({'; '.join(wins)} {a.metric} over scratch) beat "
        f"scratch with an interval above zero on {clear} of {len(best)} tasks, and {factor}."
    )
