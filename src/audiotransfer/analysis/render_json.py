"""`summary.json` of a report: the `Report` model's sentences and tables as JSON (NaN as null)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from audiotransfer.analysis.report_model import AdvisorPart, Report


def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """A table as JSON records (NaN as null)."""
    return json.loads(df.to_json(orient="records")) if not df.empty else []


def _float(v: Any) -> float | None:
    return float(v) if v is not None and np.isfinite(v) else None


def _advisor(part: AdvisorPart) -> dict[str, Any]:
    cells = part.cells.drop(columns=["random_draw_tau"], errors="ignore")
    return {
        "default": part.default,
        "note": part.note,
        "lines": part.lines,
        "cells": records(cells),
        "picks": records(part.picks),
        "scores": records(part.scores),
        "table": records(part.summary.reset_index()) if not part.summary.empty else [],
        "verdict": part.verdict,
    }


def summary(report: Report) -> dict[str, Any]:
    """The summary's fields: sentence, headline, paragraph, factor tables, gains, scores, sections, ..."""
    factors = report.factors
    return {
        "study": report.study,
        "metric": report.metric,
        "metric_display": report.metric_display,
        "similarity": report.similarity,
        "headline": report.headline,
        "sentence": report.sentence,
        "answer": report.paragraph,
        "notes": report.notes,
        "generated": report.generated,
        "importance": {r["factor"]: _float(r["lmg"]) for r in factors.to_dict("records")},
        "most_important": report.most_important,
        "factors": records(factors),
        "regressions": records(report.regressions.frame.reset_index()),
        "gains": records(report.gains),
        "matched": report.matched,
        "reference": records(report.published.frame) if report.published else [],
        "scores": records(report.scores),
        "data_similarity": records(report.data_similarity),
        "sections": {s.title: s.lines for s in report.sections},
        "advisor": _advisor(report.advisor) if report.advisor else None,
    }


def render_json(report: Report) -> str:
    return json.dumps(summary(report), indent=2)
