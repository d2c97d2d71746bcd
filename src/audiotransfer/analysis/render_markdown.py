"""The Markdown summary of a report: the `Report` model in the page's order, figures linked by path."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from audiotransfer.analysis.report_model import AdvisorPart, Report, Table
from audiotransfer.analysis.report_tables import fmt_value


def markdown_table(df: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table of a DataFrame, index included."""
    flat = df.reset_index()
    head = "| " + " | ".join(str(c) for c in flat.columns) + " |"
    rule = "|" + "---|" * len(flat.columns)
    body = ["| " + " | ".join(fmt_value(v).replace("|", "\\|") for v in row) + " |" for row in flat.itertuples(False)]
    return "\n".join([head, rule, *body])


def _advisor(part: AdvisorPart) -> list[str]:
    out = [f"## {part.title}", "", part.method, "", *[f"- {x}" for x in part.lines], ""]
    if part.table is not None:
        out += [markdown_table(part.table), ""]
    return ["\n".join(out)]


def render_markdown(report: Report, root: Path) -> str:
    """The Markdown summary, in the page's order; figure paths relative to `root` (the report folder)."""

    def link(keys: tuple[str, ...]) -> list[str]:
        return [f"![{f.title}]({f.path.relative_to(root).as_posix()})" for f in report.figures_at(*keys)]

    lines = [
        f"# {report.study}: what transferred and why",
        "",
        f"Generated {report.generated}; metric: test {report.metric_display}; similarity: {report.similarity}.",
        "",
        f"**{report.sentence}**",
        "",
    ]
    lines += [*link(("heat:", "forest", "ontology:")), ""]
    lines += ["## Samples vs classes vs similarity", "", "```", *report.headline, "```", "", report.paragraph, ""]
    lines += [f"- {s}" for s in report.fit_sentences] + ([""] if report.fit_sentences else [])
    for section in report.sections:
        lines += [f"## {section.title}", "", *[f"- {i}" for i in section.lines], ""]
    lines += _advisor(report.advisor) if report.advisor else []
    tables = [report.regressions] if not report.regressions.frame.empty else []
    if report.published:
        tables.append(Table(report.published.title, report.published.frame.set_index(["state", "task"])))
    for t in [*tables, *report.detail_tables]:
        lines += [f"## {t.title}", "", markdown_table(t.frame), ""]
    grid = link(("grid", "wide"))
    if grid:
        lines += ["## Figures", "", *grid, ""]
    if report.notes:
        lines += ["## Caveats and missing pieces", "", *[f"- {n}" for n in report.notes], ""]
    lines += ["## Method notes", "", report.method, ""]
    return "\n".join(lines)
