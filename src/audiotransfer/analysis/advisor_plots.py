"""The advisor's figures: its picks marked on the gain heat map, and its score against the fine-tuned one.

`mark_advisor` draws on the figure `overview.gain_heatmap` made (same state and task order): an orange
triangle in the cell of each task's advisor top-1 (the default estimator) and a star in the cell of the
grid's best state for that protocol. `score_scatter` puts, per task, every pre-trained state at (default
estimator's score, mean test score) so a reader sees why the advisor ranks as it does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

if TYPE_CHECKING:
    from audiotransfer.analysis.advisor import AdvisorCheck

PICK, BEST = "#d95f02", "#f2c200"


def mark_advisor(fig: Figure, gains: pd.DataFrame, check: AdvisorCheck | None, protocol: str) -> Figure:
    """Marks the advisor's top-1 and the grid's best state per task on a gain heat map of `protocol`."""
    if check is None or check.cells.empty or check.picks.empty:
        return fig
    ax = fig.axes[0]
    tasks = sorted(gains["task"].unique())
    states = list(dict.fromkeys(gains["state"]))
    picks = check.picks.set_index("task")["pick"]
    cells = check.cells[(check.cells["protocol"] == protocol) & (check.cells["estimator"] == check.default)]
    best = cells.set_index("task")["best"]
    for j, task in enumerate(tasks):
        for who, marker, colour, dx in ((picks, "v", PICK, -0.36), (best, "*", BEST, 0.36)):
            state = who.get(task)
            if state in states:
                ax.plot(j + dx, states.index(state) - 0.3, marker=marker, ms=8, color=colour, mec="black", mew=0.6)
    ax.set_xlabel(
        f"{ax.get_xlabel()}\norange triangle: the advisor's top-1 ({check.default}, before fine-tuning); "
        "star: the grid's best state",
        fontsize=6.5,
    )
    fig.tight_layout()
    return fig


def score_scatter(check: AdvisorCheck, scores: pd.DataFrame, protocol: str, metric: str) -> Figure | None:
    """One panel per task: each state's default-estimator score (x) against its mean test score (y)."""
    est = check.scores[check.scores["estimator"] == check.default].dropna(subset=["score"])
    truth = scores[scores["protocol"] == protocol]
    tasks = sorted(set(est["task"]) & set(truth["task"]))
    if not tasks:
        return None
    fig, axes = plt.subplots(1, len(tasks), figsize=(3.2 * len(tasks), 3.0), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        both = est[est["task"] == task].merge(truth[truth["task"] == task], left_on="candidate", right_on="state")
        ax.scatter(both["score"], both["mean"], s=22, color="#4c72b0", zorder=3)
        for r in both.itertuples():
            ax.annotate(str(r.candidate), (r.score, r.mean), fontsize=6, xytext=(3, 2), textcoords="offset points")
        cell = check.cells[
            (check.cells["task"] == task)
            & (check.cells["protocol"] == protocol)
            & (check.cells["estimator"] == check.default)
        ]
        tau = float(cell["tau_w"].iloc[0]) if len(cell) else np.nan
        ax.set_title(f"{task}: weighted tau {f'{tau:+.2f}' if np.isfinite(tau) else 'n/a (ties)'}", fontsize=8)
        ax.set_xlabel(f"{check.default} score (before fine-tuning)", fontsize=7)
        ax.tick_params(labelsize=6)
    axes[0][0].set_ylabel(f"mean test {metric} ({protocol})", fontsize=7)
    fig.tight_layout()
    return fig
