"""The report as one typed object: every number, sentence, table and figure the page, the Markdown summary
and summary.json show, built once by `build_report`. The renderers (`render_html`, `render_markdown`,
`render_json`) only read it.

Adding a section: a field here, filled in `build_report`, and its block in each renderer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

import audiotransfer.analysis.advisor as advisor
from audiotransfer.analysis.analyse import Analysis
from audiotransfer.analysis.factors import answer
from audiotransfer.analysis.figures import Drawn, figures
from audiotransfer.analysis.report_tables import detail_tables, regression_table
from audiotransfer.training.metric_registry import METRICS


@dataclass(frozen=True)
class Table:
    """A titled table of display cells (index included when rendered)."""

    title: str
    frame: pd.DataFrame


@dataclass(frozen=True)
class Section:
    """A titled list of lines: a section a caller added (the demo's ground-truth check)."""

    title: str
    lines: list[str]


@dataclass(frozen=True)
class AdvisorPart:
    """ "Could we have known before fine-tuning?": the advisor's lines, its method, its tables."""

    title: str
    method: str
    lines: list[str]
    default: str
    note: str
    cells: pd.DataFrame  # task, protocol, estimator, tau_w, rho, top1, best, ...
    picks: pd.DataFrame
    scores: pd.DataFrame
    summary: pd.DataFrame  # per estimator and baseline: means over the cells with intervals
    verdict: dict[str, Any] | None  # the default against `largest`, with its line

    @property
    def table(self) -> pd.DataFrame | None:
        shown = self.cells.drop(columns=["random_draw_tau"], errors="ignore")
        return shown.set_index(["task", "protocol", "estimator"]) if not shown.empty else None


@dataclass(frozen=True)
class Published:
    """The study's fine-tuned scores beside the published ones, and how far apart they are."""

    title: str
    frame: pd.DataFrame  # state, task, yours, published, difference
    mean_difference: float
    largest_difference: float


@dataclass(frozen=True)
class Report:
    """Everything a report shows."""

    study: str
    study_dir: str
    generated: str
    metric: str
    metric_display: str  # the metric's name for a reader (training.metric_registry)
    similarity: str
    sentence: str
    headline: list[str]
    paragraph: str
    fit_sentences: list[str]
    figures: list[Drawn]
    regressions: Table
    factors: pd.DataFrame  # the pooled fit's table: factor, coef, ci_low, ci_high, rho, lmg, ...
    most_important: str | None
    sections: list[Section]
    advisor: AdvisorPart | None
    published: Published | None
    detail_tables: list[Table]
    gains: pd.DataFrame
    scores: pd.DataFrame
    data_similarity: pd.DataFrame
    matched: dict[str, list[str]]
    notes: list[str]
    method: str

    def figures_at(self, *keys: str) -> list[Drawn]:
        """The figures whose key is one of `keys` or starts with one ending in ':' ('heat:')."""
        return [f for f in self.figures if f.key in keys or any(k.endswith(":") and f.key.startswith(k) for k in keys)]


def method_note(a: Analysis) -> str:
    """How the numbers were made, in two sentences."""
    tagger = f"'{a.tagger}'" if a.tagger else "the state with the most classes"
    return (
        f"Data similarity: label share = share of a task's test clips whose top-1 label under the tagger "
        f"{tagger} is one of the state's classes; Frechet distance and RBF-MMD compare the tagger's "
        "embeddings of the state's training clips and the task's test clips (with few clips per set the "
        "Frechet distance is biased upward: compare it across states only). Factors: OLS on standardised "
        "log samples, log classes and similarity over states (seed means), 95% CIs; pooled over tasks, with "
        "task effects and intervals clustered by state (a state's rows share its pre-trained model; t with "
        "states - 1 degrees of freedom, which with few states can still be somewhat narrow); importance = "
        "LMG share of R^2; a factor mattered most only if its interval excludes zero; transfer-gain "
        "intervals are paired by seed when seeds match, Welch otherwise. Score and gain intervals respect the "
        "metric's range: a t-interval that crosses a bound is clipped to it (the tables' note says so), and one "
        "wider than the whole range is reported as 'too few seeds to tell'."
    )


def frontend_note(states: pd.DataFrame) -> list[str]:
    """Which front-end each state read (a state given as a checkpoint may read its own), in one line."""
    if states.empty or "frontend" not in states or states["frontend"].isna().all():
        return []
    known = states.dropna(subset=["frontend"])
    groups = known.groupby(["frontend", "frontend_hash"], sort=False)["state"].apply(list)
    parts = [
        f"{', '.join(names)}: {name}" + ("" if recipe in name else f" (recipe {recipe})")
        for (name, recipe), names in groups.items()
    ]
    return ["Front-ends (the features each state was fine-tuned on): " + "; ".join(parts) + "."]


def _advisor_part(check: advisor.AdvisorCheck | None) -> AdvisorPart | None:
    if check is None:
        return None
    verdict = vars(check.verdict) | {"line": check.verdict.line()} if check.verdict is not None else None
    return AdvisorPart(
        advisor.TITLE,
        advisor.METHOD,
        advisor.summary_lines(check),
        check.default,
        check.note,
        check.cells,
        check.picks,
        check.scores,
        check.table,
        verdict,
    )


def _published(a: Analysis) -> Published | None:
    if a.reference.empty:
        return None
    d = a.reference["difference"]
    return Published(
        f"Your test {a.metric} beside the published one (Milling et al., CNN10, fine-tuning)",
        a.reference,
        float(d.mean()),
        float(d.abs().max()),
    )


def build_report(a: Analysis, figures_dir: Path, generated: str) -> Report:
    """The report of an analysis: draws its figures into `figures_dir` and gathers the rest."""
    pooled = a.pooled
    return Report(
        study=a.res.name,
        study_dir=str(a.res.study_dir),
        generated=generated,
        metric=a.metric,
        metric_display=METRICS[a.metric].display if a.metric in METRICS else a.metric,
        similarity=a.similarity,
        sentence=a.sentence,
        headline=a.headline,
        paragraph=a.paragraph,
        fit_sentences=[answer(f) for f in a.fits],
        figures=figures(a, figures_dir),
        regressions=Table(
            "Factors per fit (standardised coefficients, 95% CI, LMG share of the factors' R^2)", regression_table(a)
        ),
        factors=pooled.table.reset_index(names="factor") if pooled else pd.DataFrame(),
        most_important=pooled.most_important() if pooled else None,
        sections=[Section(title, list(lines)) for title, lines in a.sections],
        advisor=_advisor_part(a.advisor),
        published=_published(a),
        detail_tables=[Table(title, frame) for title, frame in detail_tables(a)],
        gains=a.gains,
        scores=a.scores,
        data_similarity=a.data_sim,
        matched={t: sorted(s) for t, s in a.matched.items()},
        notes=[*a.notes, *frontend_note(a.res.states)],
        method=method_note(a),
    )
