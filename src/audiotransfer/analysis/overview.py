"""The report's first screen and ontology view: the gain heat map, the factor forest plot, the category tree.

`gain_heatmap` draws state x task transfer gain over scratch (value and interval in every cell, cells whose
interval excludes zero starred, states that share generators with a task outlined when a ground truth is
known); `forest` draws the pooled factor coefficients of every protocol with their intervals;
`ontology_tree` draws the AudioSet categories the states name (with their roots), each node coloured by the
gain of the state built from it, one panel per task. All take tidy tables and return matplotlib Figures.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from audiotransfer.analysis.factors import FACTORS, FactorFit

if TYPE_CHECKING:
    from audiotransfer.ontology import Ontology

CMAP = "RdBu"  # diverging: blue helps, red hurts, white is no change


def excludes_zero(low: float, high: float) -> bool:
    """An estimated interval that lies wholly above or below zero."""
    return bool(np.isfinite(low) and np.isfinite(high) and (low > 0 or high < 0))


def _norm(values: np.ndarray) -> TwoSlopeNorm:
    span = float(np.nanmax(np.abs(values))) if np.isfinite(values).any() else 0.0
    span = max(span, 1e-3)
    return TwoSlopeNorm(vcenter=0.0, vmin=-span, vmax=span)


def _ink(rgba: Any) -> str:
    r, g, b, _ = (float(v) for v in rgba)
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"


def gain_heatmap(
    gains: pd.DataFrame, metric: str, protocol: str, matched: Mapping[str, set[str]] | None = None
) -> Figure:
    """State x task gain over scratch; each cell `+0.012` over `[-0.003, +0.027]` (or 'too few seeds').

    `gains`: the rows of one protocol (state, task, gain, ci_low, ci_high); `matched`: task -> states that
    share generators with it (outlined).
    """
    tasks = sorted(gains["task"].unique())
    states = list(dict.fromkeys(gains["state"]))
    mat = gains.pivot(index="state", columns="task", values="gain").reindex(index=states, columns=tasks)
    values = mat.to_numpy(dtype=float)
    fig, ax = plt.subplots(figsize=(1.9 + 1.25 * len(tasks), 0.9 + 0.42 * len(states)))
    image = ax.imshow(values, cmap=CMAP, norm=_norm(values), aspect="auto")
    rows = gains.set_index(["state", "task"])
    for i, state in enumerate(states):
        for j, task in enumerate(tasks):
            if (state, task) not in rows.index or not np.isfinite(values[i, j]):
                continue
            r = rows.loc[(state, task)]
            clear = excludes_zero(r["ci_low"], r["ci_high"])
            ci = f"[{r['ci_low']:+.3f}, {r['ci_high']:+.3f}]" if np.isfinite(r["ci_low"]) else "too few seeds"
            ink = _ink(image.cmap(image.norm(values[i, j])))
            ax.text(
                j,
                i - 0.13,
                f"{values[i, j]:+.3f}{' *' if clear else ''}",
                ha="center",
                va="center",
                fontsize=8,
                color=ink,
                fontweight="bold" if clear else "normal",
            )
            ax.text(j, i + 0.22, ci, ha="center", va="center", fontsize=5.5, color=ink)
            if matched and state in matched.get(task, set()):
                ax.add_patch(Rectangle((j - 0.47, i - 0.47), 0.94, 0.94, fill=False, lw=2.2, ec="#1b7837"))
    ax.set_xticks(range(len(tasks)), tasks, fontsize=8)
    ax.xaxis.tick_top()
    ax.set_yticks(range(len(states)), states, fontsize=8)
    ax.tick_params(length=0)
    ax.set_title(f"{metric} gain over scratch ({protocol})", fontsize=9, pad=18)
    bar = fig.colorbar(image, ax=ax, shrink=0.7, pad=0.02)
    bar.set_label(f"{metric} gain over scratch", fontsize=7)
    bar.ax.tick_params(labelsize=6)
    key = "* 95% interval excludes zero"
    if matched:
        key += "; green outline: shares generators with the task (ground truth)"
    ax.set_xlabel(key, fontsize=6.5)
    fig.tight_layout()
    return fig


def forest(fits: Mapping[str, FactorFit]) -> Figure:
    """Pooled factor coefficients (per SD, with 95% intervals) of each protocol, one row per factor."""
    fig, ax = plt.subplots(figsize=(4.4, 1.3 + 0.55 * len(FACTORS)))
    k = max(len(fits), 1)
    for n, (protocol, fit) in enumerate(fits.items()):
        offset = (n - (k - 1) / 2) * 0.5 / k
        t = fit.table.reindex(list(FACTORS))
        y = np.arange(len(FACTORS)) + offset
        clear = [excludes_zero(lo, hi) for lo, hi in zip(t["ci_low"], t["ci_high"], strict=True)]
        err = np.vstack([t["coef"] - t["ci_low"], t["ci_high"] - t["coef"]]).astype(float)
        ax.errorbar(t["coef"], y, xerr=np.nan_to_num(err), fmt="none", ecolor=f"C{n}", capsize=3, lw=1.4)
        ax.scatter(
            t["coef"],
            y,
            color=[f"C{n}" if c else "white" for c in clear],
            edgecolors=f"C{n}",
            zorder=3,
            s=30,
            label=protocol,
        )
        for f, yy in zip(FACTORS, y, strict=True):
            if not np.isfinite(t.loc[f, "coef"]):
                ax.text(0, yy, "not estimable", fontsize=6, ha="center", va="center", color=f"C{n}")
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(range(len(FACTORS)), list(FACTORS), fontsize=8)
    ax.invert_yaxis()
    metric = next(iter(fits.values())).metric if fits else "score"
    ax.set_xlabel(f"{metric} change per SD of the factor (95% CI)\nfilled: interval excludes zero", fontsize=7)
    ax.tick_params(labelsize=7)
    ax.legend(
        fontsize=7,
        loc="lower center",
        bbox_to_anchor=(0.5, 1.0),
        ncol=k,
        frameon=False,
        title="pooled over tasks, task effects removed",
        title_fontsize=7,
    )
    fig.tight_layout()
    return fig


def _tree_rows(ontology: Ontology, named: list[str]) -> list[tuple[int, str]]:
    """(depth, class id) in drawing order: every root, and each named category under its root path."""
    keep: set[str] = set()
    for cid in named:
        keep |= {cid} | ontology.ancestors(cid)
    rows: list[tuple[int, str]] = []

    def visit(cid: str, depth: int) -> None:
        rows.append((depth, cid))
        for child in ontology.children(cid):
            if child in keep:
                visit(child, depth + 1)

    for root in ontology.roots:
        visit(root, 0)
    return rows


def node_states(categories: Mapping[str, list[str]], ontology: Ontology) -> dict[str, str]:
    """Class id -> the state built from it: the state naming it with the fewest categories."""
    out: dict[str, str] = {}
    for state, cats in sorted(categories.items(), key=lambda kv: len(kv[1])):
        for name in cats:
            out.setdefault(ontology.resolve(name), state)
    return out


def ontology_tree(
    ontology: Ontology,
    categories: Mapping[str, list[str]],
    gains: pd.DataFrame,
    metric: str,
    full_state: str | None = None,
    matched: Mapping[str, set[str]] | None = None,
) -> Figure:
    """The category tree of the states, one panel per task, nodes coloured by their state's gain.

    `categories`: state -> category names; `gains`: one protocol's rows; `full_state`: the state of every
    class (drawn as the tree's top node) when the study has one; `matched`: task -> states that share its
    material (their nodes get a green edge).
    """
    owner = node_states(categories, ontology)
    rows = _tree_rows(ontology, [ontology.resolve(c) for cats in categories.values() for c in cats])
    tasks = sorted(gains["task"].unique())
    lookup = gains.set_index(["state", "task"])["gain"]
    norm = _norm(gains["gain"].to_numpy(dtype=float))
    cmap = plt.get_cmap(CMAP)
    top = [(-1, "")] if full_state else []
    drawn = top + rows
    fig, axes = plt.subplots(1, len(tasks), figsize=(3.6 * len(tasks) + 0.8, 0.6 + 0.32 * len(drawn)), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        for y, (depth, cid) in enumerate(drawn):
            state = full_state if depth < 0 else owner.get(cid)
            gain = lookup.get((state, task), np.nan) if state else np.nan
            color = cmap(norm(gain)) if np.isfinite(gain) else (0.92, 0.92, 0.92, 1.0)
            name = "AudioSet (all classes)" if depth < 0 else ontology.name(cid)
            text = f"{name}  {gain:+.3f} ({state})" if np.isfinite(gain) else name
            x = 0.06 * (depth + (1 if top else 0))
            if depth >= 0 and (depth > 0 or top):
                ax.plot([x - 0.045, x - 0.045, x - 0.01], [y - 0.5, y, y], color="#888", lw=0.7)
            hit = bool(matched and state in matched.get(task, set()))
            ax.text(
                x,
                y,
                text,
                fontsize=7,
                va="center",
                color=_ink(color) if np.isfinite(gain) else "#555",
                bbox=dict(boxstyle="round,pad=0.25", fc=color, ec="#1b7837" if hit else "#999", lw=1.8 if hit else 0.5),
            )
        ax.set_xlim(0, 1)
        ax.set_ylim(len(drawn) - 0.5, -0.7)
        ax.set_axis_off()
        ax.set_title(task, fontsize=9)
    fig.subplots_adjust(left=0.01, right=0.9, top=0.9, bottom=0.06, wspace=0.04)
    bar = fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), cax=fig.add_axes((0.92, 0.15, 0.012, 0.7)))
    bar.set_label(f"{metric} gain over scratch", fontsize=7)
    if matched:
        fig.text(
            0.01, 0.005, "green edge: the state shares the task's material (ground truth)", fontsize=7, va="bottom"
        )
    bar.ax.tick_params(labelsize=6)
    return fig
