""""Could we have known before fine-tuning?": the advisor's estimators checked against a study's grid.

For every task the advisor scores the study's pre-trained states (embeddings of the task's train + dev
clips, cached in `STUDY/advise/cache/`); for every task x protocol x estimator this compares those scores
with the states' actual mean test scores: weighted Kendall tau (`scipy.stats.weightedtau`, which weighs
agreement among the top states most), Spearman rho, and whether the estimator's top-1 state is the actual
best or within the best state's 95% interval. Cost: the advisor's seconds (forward passes + estimators)
against the grid's (the fine-tuning runs of the task, from the results store).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

import audiotransfer.analysis.gather as gather
from audiotransfer.errors import UserError

TITLE = "Could we have known before fine-tuning?"
METHOD = ("Estimators score each pre-trained state from one forward pass over the task's train + dev clips; "
          "tau_w = weighted Kendall tau and rho = Spearman rho between an estimator's scores and the states' "
          "mean test scores; top1_is_best / within_best_ci: the estimator's top state is the actual best, or "
          "its mean is within the best state's 95% interval; seconds = forward passes + estimator.")


@dataclass
class AdvisorCheck:
    """The validation tables of one study (empty with a note when it could not be computed)."""

    default: str = ""
    cells: pd.DataFrame = field(default_factory=pd.DataFrame)  # task, protocol, estimator, tau_w, rho, ...
    picks: pd.DataFrame = field(default_factory=pd.DataFrame)  # task: default's pick, seconds, grid best
    scores: pd.DataFrame = field(default_factory=pd.DataFrame)  # task, candidate, estimator, score, seconds
    note: str = ""


def advisor_check(res: Any, scores: pd.DataFrame, progress: bool = True) -> AdvisorCheck:
    """Run the advisor on the study's states and tasks and compare with the score table (state, task,
    protocol, mean, ci_low, ci_high)."""
    from audiotransfer.advise.driver import advise, study_candidates, study_tasks
    from audiotransfer.advise.rank import DEFAULT, ESTIMATORS

    if scores.empty:
        return AdvisorCheck(note="no finished fine-tuning results to compare with")
    try:
        tasks = study_tasks(res, sorted(set(scores["task"]) & set(res.tasks.get("task", []))))
        candidates = study_candidates(res)
    except UserError as exc:
        return AdvisorCheck(note=f"the advisor could not run: {exc.message}")
    made: dict[str, pd.DataFrame] = {}

    def run() -> pd.DataFrame:
        advice = advise(candidates, tasks, res.study_dir / "advise" / "cache", progress=progress)
        made["embed"] = pd.DataFrame([dict(task=t, candidate=c, seconds=s) for t, d in advice.embed_seconds.items()
                                      for c, s in d.items()], columns=["task", "candidate", "seconds"])
        return advice.long

    # the estimators' table is cached beside the report's other measures (the probe takes a while)
    key = gather.fingerprint({c.name: c.path for c in candidates}, estimators=list(ESTIMATORS),
                       tasks={t.name: t.manifest.hash for t in tasks})
    cache = res.study_dir / "report" / "cache"
    long = gather.cached(cache, "advisor_scores", key, run)
    embed = gather.cached(cache, "advisor_embed", key,
                          lambda: made["embed"] if "embed" in made else (run(), made["embed"])[1])
    if long.empty:
        return AdvisorCheck(note="no task could be ranked (multi-label tasks are skipped)")
    return AdvisorCheck(DEFAULT, compare(long, embed, scores), picks(long, embed, scores, res.runs, DEFAULT), long)


def compare(long: pd.DataFrame, embed: pd.DataFrame, scores: pd.DataFrame) -> pd.DataFrame:
    """One row per task x protocol x estimator: tau_w, rho, top-1 state, actual best, hit, within, seconds."""
    rows = []
    for (task, protocol), part in scores.groupby(["task", "protocol"], sort=True):
        actual = part.set_index("state")
        best = actual["mean"].idxmax()
        for estimator, est in long[long["task"] == task].groupby("estimator", sort=False):
            s = est.set_index("candidate")["score"].dropna()
            common = [c for c in s.index if c in actual.index]
            x, y = s[common].to_numpy(), actual.loc[common, "mean"].to_numpy()
            ok = len(common) >= 3 and np.ptp(x) > 0 and np.ptp(y) > 0
            top = s[common].idxmax() if common else None
            low = actual.loc[best, "ci_low"]
            within = bool(top is not None and (top == best or (np.isfinite(low) and actual.loc[top, "mean"] >= low)))
            spent = est["seconds"].sum() + embed.loc[embed["task"] == task, "seconds"].sum()
            rows.append(dict(task=task, protocol=protocol, estimator=estimator, n_states=len(common),
                             tau_w=stats.weightedtau(x, y).statistic if ok else np.nan,
                             rho=stats.spearmanr(x, y).statistic if ok else np.nan,
                             top1=top, best=best, top1_is_best=top == best, within_best_ci=within,
                             seconds=spent))
    return pd.DataFrame(rows)


def picks(long: pd.DataFrame, embed: pd.DataFrame, scores: pd.DataFrame, runs: pd.DataFrame,
          default: str) -> pd.DataFrame:
    """Per task: the default estimator's pick and its seconds, the grid's best (per protocol) and seconds."""
    rows = []
    for task, part in long[long["estimator"] == default].groupby("task", sort=True):
        s = part.set_index("candidate")["score"].dropna()
        spent = part["seconds"].sum() + embed.loc[embed["task"] == task, "seconds"].sum()
        ft = runs[(runs["kind"] == "finetune") & (runs["task"] == task)] if not runs.empty else runs
        best = {p: g.set_index("state")["mean"].idxmax() for p, g in scores[scores["task"] == task].groupby("protocol")}
        rows.append(dict(task=task, pick=s.idxmax() if len(s) else None, seconds=spent,
                         grid_best=best, grid_seconds=float(ft["duration_s"].fillna(0).sum()) if len(ft) else np.nan))
    return pd.DataFrame(rows)


def summary_lines(check: AdvisorCheck) -> list[str]:
    """Plain-language lines: per task the default's pick vs the grid's best; per estimator the mean tau_w."""
    if check.cells.empty:
        return [f"Not available: {check.note or 'no states or tasks to compare'}."]
    lines = [pick_line(r) for r in check.picks.itertuples()]
    agg = check.cells.groupby("estimator", sort=False).agg(tau_w=("tau_w", "mean"), rho=("rho", "mean"),
                                                            hits=("top1_is_best", "sum"),
                                                            within=("within_best_ci", "sum"), n=("task", "size"))
    # seconds are per task (one advice serves every protocol): count each task once
    seconds = check.cells.drop_duplicates(["estimator", "task"]).groupby("estimator")["seconds"].sum()
    for name, r in agg.iterrows():
        mark = " (default)" if name == check.default else ""
        lines.append(f"{name}{mark}: mean weighted Kendall tau {r.tau_w:+.2f}, Spearman rho {r.rho:+.2f}; top-1 is "
                     f"the best state in {int(r.hits)} of {int(r.n)} task x protocol cells, within the best's "
                     f"interval in {int(r.within)}; {seconds[name]:.1f} s with the forward passes")
    return lines


def pick_line(r: Any) -> str:
    """'TASK: the advisor would have picked X in N s; the grid's best was Y (protocol), ...'."""
    best = ", ".join(f"{s} ({p})" for p, s in r.grid_best.items())
    grid = f" (after {r.grid_seconds:.0f} s of fine-tuning)" if np.isfinite(r.grid_seconds) else ""
    return f"{r.task}: the advisor would have picked {r.pick} in {r.seconds:.1f} s; the grid's best{grid} was {best}"
