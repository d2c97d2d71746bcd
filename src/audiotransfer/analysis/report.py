"""The study report: what transferred and why, as one self-contained HTML page, a Markdown summary and
`summary.json`.

`analyse` (analysis/analyse.py) computes the numbers, `build_report` (report_model.py) gathers them with
the figures into one `Report`, and the renderers (render_html.py through a Jinja2 template,
render_markdown.py, render_json.py) only read it. This module writes the three files.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from audiotransfer.analysis.analyse import DEFAULT_SIMILARITY, Analysis, analyse
from audiotransfer.analysis.render_html import render_html
from audiotransfer.analysis.render_json import render_json
from audiotransfer.analysis.render_markdown import render_markdown
from audiotransfer.analysis.report_model import build_report

__all__ = ["DEFAULT_SIMILARITY", "Analysis", "analyse", "write_analysis", "write_report"]


def write_report(
    study_dir: str | Path,
    metric: str = "uar",
    similarity: str = DEFAULT_SIMILARITY,
    max_inputs: int = 256,
    batch_size: int = 64,
    progress: bool = True,
    matched: dict[str, set[str]] | None = None,
) -> dict[str, Any]:
    """Write `report/index.html`, `report/summary.md` and `report/summary.json` for a study directory.

    Returns {"html": Path, "markdown": Path, "json": Path, "headline": [three lines], "answer": paragraph,
    "sentence": the one-sentence answer}. `matched`: see `analyse`.
    """
    return write_analysis(analyse(study_dir, metric, similarity, max_inputs, batch_size, progress, matched))


def write_analysis(a: Analysis) -> dict[str, Any]:
    """Write the report files of an analysis (see `write_report`), with any sections a caller added."""
    root = a.res.dir.report
    root.mkdir(parents=True, exist_ok=True)
    report = build_report(a, root / "figures", datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"))
    paths = {"html": root / "index.html", "markdown": root / "summary.md", "json": root / "summary.json"}
    paths["html"].write_text(render_html(report), encoding="utf-8")
    paths["markdown"].write_text(render_markdown(report, root), encoding="utf-8")
    paths["json"].write_text(render_json(report), encoding="utf-8")
    return {**paths, "headline": report.headline, "answer": report.paragraph, "sentence": report.sentence}
