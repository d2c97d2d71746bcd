"""The report's figures (matplotlib, Agg backend), each saved as PNG and SVG.

Every function takes tidy DataFrames from the other analysis modules and returns a Figure; `save` writes
it. Nothing here computes statistics beyond a least-squares line for display.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter


def save(fig: Figure, out_dir: Path, name: str) -> dict[str, Path]:
    """Write `name.png` (for the HTML page) and `name.svg` (for print) and close the figure."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for ext in ("png", "svg"):
        paths[ext] = out_dir / f"{name}.{ext}"
        fig.savefig(paths[ext], dpi=110, bbox_inches="tight")
    plt.close(fig)
    return paths


def _grid(n: int, width: float = 4.2, height: float = 3.4) -> tuple[Figure, np.ndarray]:
    cols = min(n, 3)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    return fig, axes.ravel()


def _usable(values: pd.Series, log: bool) -> pd.Series:
    """Plottable values: present, and positive on a log axis."""
    return values.notna() & (values > 0) if log else values.notna()


def score_vs_factor(
    seeds: pd.DataFrame,
    summary: pd.DataFrame,
    factor: str,
    metric: str,
    log: bool = True,
    label: str | None = None,
    bounds: tuple[float, float] = (-np.inf, np.inf),
) -> Figure:
    """Score against a factor per task: seed values, mean with 95% CI, least-squares line (on log10 x if `log`).

    `seeds`: state, task, value, <factor>; `summary`: state, task, mean, ci_low, ci_high, <factor>. Each state
    has its own colour and marker, named once in a legend below the panels (labels beside points overlap);
    the y axis stops at the metric's `bounds`.
    """
    tasks = sorted(summary["task"].unique())
    fig, axes = _grid(len(tasks))
    styles = _state_styles(list(dict.fromkeys(summary["state"])))
    for ax, task in zip(axes, tasks, strict=False):
        s = summary[(summary["task"] == task) & _usable(summary[factor], log)]
        d = seeds[(seeds["task"] == task) & _usable(seeds[factor], log)]
        ax.scatter(d[factor], d["value"], s=10, alpha=0.5, color="grey", zorder=2)
        for row in s.itertuples():
            err = [[row.mean - row.ci_low], [row.ci_high - row.mean]] if np.isfinite(row.ci_low) else None
            ax.errorbar([getattr(row, factor)], [row.mean], yerr=err, capsize=3, zorder=3, **styles[row.state])
        if s[factor].nunique() > 1:
            x = np.log10(s[factor]) if log else s[factor]
            slope, icept = np.polyfit(x, s["mean"], 1)
            xs = np.linspace(x.min(), x.max(), 50)
            unit = "/decade" if log else "/SD"
            per = slope if log else slope * float(np.std(x, ddof=1))  # raw units (a distance) read badly
            (line,) = ax.plot(
                10**xs if log else xs, icept + slope * xs, "--", color="C3", label=f"fit: {per:+.3f}{unit}"
            )
            ax.legend(handles=[line], fontsize=7, loc="best")
        if log:
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())
        clip_axis(ax, bounds)
        ax.set_xlabel(label or f"pre-training {factor}")
        ax.set_ylabel(metric)
        ax.set_title(task)
    handles = [plt.Line2D([], [], linestyle="", **style) for style in styles.values()]
    fig.legend(
        handles,
        list(styles),
        loc="lower center",
        ncol=min(len(styles), 5),
        fontsize=7,
        frameon=False,
        title="state (mean, 95% CI; grey: seeds)",
        title_fontsize=7,
    )
    rows = int(np.ceil(len(styles) / 5))
    fig.tight_layout(rect=(0, 0.06 + 0.04 * rows, 1, 1))
    return fig


def _state_styles(states: list[str]) -> dict[str, dict]:
    """A distinct colour and marker per state, stable in the order given."""
    markers = "osD^vP*Xh<>"
    return {
        s: {
            "color": plt.get_cmap("tab10" if len(states) <= 10 else "tab20")(i % 20),
            "marker": markers[i % len(markers)],
            "markersize": 5,
            "label": s,
        }
        for i, s in enumerate(states)
    }


def clip_axis(ax: plt.Axes, bounds: tuple[float, float]) -> None:
    """Stop the y axis at the metric's bounds (a UAR axis never reaches 1.025)."""
    low, high = ax.get_ylim()
    ax.set_ylim(max(low, bounds[0]), min(high, bounds[1]))


def heatmap(matrix: pd.DataFrame, title: str, cmap: str = "viridis", fmt: str = "{:.2f}") -> Figure:
    """An annotated heatmap of a labelled matrix (rows x columns)."""
    rows, cols = matrix.shape
    fig, ax = plt.subplots(figsize=(1.2 + 0.55 * cols, 1.0 + 0.45 * rows))
    values = matrix.to_numpy(dtype=float)
    image = ax.imshow(values, cmap=cmap, aspect="auto")
    ax.set_xticks(range(cols), [str(c) for c in matrix.columns], rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(rows), [str(r) for r in matrix.index], fontsize=8)
    if rows * cols <= 400:
        for i in range(rows):
            for j in range(cols):
                if np.isfinite(values[i, j]):
                    r, g, b, _ = image.cmap(image.norm(values[i, j]))
                    color = "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"
                    ax.text(j, i, fmt.format(values[i, j]), ha="center", va="center", fontsize=6, color=color)
    fig.colorbar(image, ax=ax, shrink=0.8)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def cka_layers(table: pd.DataFrame, title: str) -> Figure:
    """CKA per layer, one line per state: `table` rows = states, columns = blocks in forward order."""
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    for state, row in table.iterrows():
        ax.plot(range(len(row)), row.to_numpy(dtype=float), marker="o", label=str(state))
    ax.set_xticks(range(table.shape[1]), list(table.columns), rotation=30, ha="right")
    ax.set_ylim(0, 1)
    ax.set_ylabel("linear CKA")
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=2, loc="lower left")
    fig.tight_layout()
    return fig
