"""The report page: the `Report` model through the Jinja2 template `templates/report.html.j2` (package
data), one self-contained file with every figure inlined as a PNG."""

from __future__ import annotations

import base64
from functools import cache

import jinja2
import pandas as pd
from markupsafe import Markup

from audiotransfer.analysis.figures import Drawn
from audiotransfer.analysis.report_model import Report
from audiotransfer.analysis.report_tables import fmt_value

# the table of contents, in page order of the anchors; a section that is absent is left out of it
SECTIONS = (
    ("answer", "Answer"),
    ("ontology", "Ontology view"),
    ("findings", "Findings"),
    ("advisor", "Could we have known?"),
    ("reference", "Published results"),
    ("figures", "Figures"),
    ("tables", "Tables"),
    ("caveats", "Caveats"),
    ("method", "Method notes"),
)


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("audiotransfer.analysis", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )


def img(figure: Drawn) -> Markup:
    """An inline PNG (the page works offline and by itself)."""
    data = base64.b64encode(figure.path.read_bytes()).decode()
    return Markup("<img alt='{}' src='data:image/png;base64,{}'>").format(figure.title, data)


def table(frame: pd.DataFrame, float_format: str | None = None) -> Markup:
    """A DataFrame as an HTML table (pandas escapes the cells)."""
    formatter = (lambda v: float_format % v) if float_format else fmt_value
    return Markup(frame.to_html(na_rep="n/a", float_format=formatter, border=0))


def render_html(report: Report) -> str:
    """The page: the answer and its evidence on the first screen, then the ontology view and the detail."""
    absent = set() if report.published else {"reference"}
    absent |= set() if report.advisor else {"advisor"}
    template = _environment().get_template("report.html.j2")
    return template.render(
        report=report, sections=[(k, t) for k, t in SECTIONS if k not in absent], img=img, table=table
    )
