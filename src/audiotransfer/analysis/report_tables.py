"""The report's tables as titled DataFrames of display cells: scores and gains with their intervals, the
factor fits, similarities, CKA and weight distances. Renderers only lay them out."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from audiotransfer.analysis.analyse import Analysis
from audiotransfer.analysis.factors import FACTORS
from audiotransfer.analysis.figures import cka_kept
from audiotransfer.analysis.scores import TOO_FEW


def _interval(low: float, high: float, note: str, sign: str = "") -> str:
    if np.isfinite(low):
        return f"[{low:{sign}.3f}, {high:{sign}.3f}]"
    return f"({TOO_FEW})" if str(note).startswith(TOO_FEW) else "[n/a]"


def score_cell(r: Any) -> str:
    """'0.812 [0.790, 0.834] (n=3)', or the reason there is no interval."""
    if not np.isfinite(r.mean):
        return "n/a"
    return f"{r.mean:.3f} {_interval(r.ci_low, r.ci_high, r.note)} (n={r.n_seeds})"


def gain_cell(r: Any) -> str:
    """'+0.021 [+0.004, +0.038] paired (3 seeds)', or the reason there is no interval."""
    if not np.isfinite(r.gain):
        return "n/a"
    return f"{r.gain:+.3f} {_interval(r.ci_low, r.ci_high, r.note, '+')} {r.method}".strip()


def _signed(v: float, digits: int = 3) -> str:
    return f"{v:+.{digits}f}" if np.isfinite(v) else "n/a"


def regression_table(a: Analysis) -> pd.DataFrame:
    """The factor fits as one compact table: a row per fit (pooled, then each task) x factor."""
    rows = []
    pooled = {id(f) for f in a.pooled_fits.values()}
    for fit in [*a.pooled_fits.values(), *(f for f in a.fits if id(f) not in pooled)]:
        shares = fit.shares()
        for factor in FACTORS:
            r = fit.table.loc[factor]
            rows.append(
                {
                    "fit": fit.label,
                    "factor": factor,
                    "coef per SD": _signed(r["coef"]),
                    "95% CI": _interval(r["ci_low"], r["ci_high"], "", "+") if np.isfinite(r["coef"]) else "n/a",
                    "share of R^2": f"{shares[factor]:.0%}" if np.isfinite(shares[factor]) else "n/a",
                    "Spearman rho": _signed(r["rho"], 2),
                    "n": fit.n_states,
                    "R^2": fit.r2,
                }
            )
    return pd.DataFrame(rows).set_index(["fit", "factor"]) if rows else pd.DataFrame()


def detail_tables(a: Analysis) -> list[tuple[str, pd.DataFrame]]:
    """Scores, gains, similarities, CKA and weight distances: the page's collapsed tables."""
    out: list[tuple[str, pd.DataFrame]] = []
    for proto in a.protocols:
        s = a.scores[a.scores["protocol"] == proto]
        cells = s.assign(cell=[score_cell(r) for r in s.itertuples()])
        out.append(
            (
                f"Test {a.metric}: mean [95% CI] over seeds ({proto})",
                cells.pivot(index="state", columns="task", values="cell"),
            )
        )
        g = a.gains[a.gains["protocol"] == proto]
        if not g.empty:
            g = g.assign(cell=[gain_cell(r) for r in g.itertuples()])
            out.append((f"Transfer gain over scratch ({proto})", g.pivot(index="state", columns="task", values="cell")))
    if not a.data_sim.empty:
        out.append((f"Data similarity (tagger: {a.tagger})", a.data_sim.set_index(["state", "task"])))
    for task, long in a.cka.items():
        kept = cka_kept(long)
        if not kept.empty:
            out.append((f"CKA of each state with its fine-tuned model, per layer ({task})", kept))
    if not a.weights.empty:
        out.append(("Weight distance, first convolution (1 - cosine)", a.weights))
    return out


def fmt_value(v: Any) -> str:
    """A table cell as text: floats to 3 decimals (or 3 significant digits when tiny or large), NaN as n/a."""
    if isinstance(v, float | np.floating):
        x = float(v)
        if not np.isfinite(x):
            return "n/a"
        return f"{x:.3g}" if abs(x) >= 1000 or (0 < abs(x) < 0.001) else f"{x:.3f}"
    return "n/a" if v is None or v is pd.NA else str(v)
