""" "Could we have known before fine-tuning?": the advisor's estimators checked against a study's grid.

For every task the advisor scores the study's pre-trained states (embeddings of the task's train + dev clips,
in the embedding cache `STUDY/cache/embeddings/` that the study's linear probes filled); for every task x
protocol x estimator this compares those scores with the states' actual mean test scores: weighted Kendall tau
(`scipy.stats.weightedtau`, which weighs agreement among the top states most), Spearman rho, and whether the
estimator's top-1 state is the actual best or within the best state's 95% interval, the regret (test score
lost by starting from its top-1 instead of the best) and top-3 regret. Beside the estimators stand the
baselines a user gets for free (`advise.baselines`: largest pre-training set, most classes, random order) and
a plain verdict: did the default beat `largest`, with a paired bootstrap interval over task x protocol cells.
Cost: the advisor's seconds (forward passes + estimators) against the grid's (the fine-tuning runs of the
task, from the results store).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

import audiotransfer.advise.baselines as bl
import audiotransfer.analysis.gather as gather
from audiotransfer.errors import UserError

TITLE = "Could we have known before fine-tuning?"
METHOD = (
    "Estimators score each pre-trained state from one forward pass over the task's train + dev clips; "
    "tau_w = weighted Kendall tau and rho = Spearman rho between an estimator's scores and the states' "
    "mean test scores; top1_is_best / within_best_ci: the estimator's top state is the actual best, or "
    "its mean is within the best state's 95% interval; regret = the best state's mean test score minus that "
    "of the estimator's top state (top-3: of the best of its first three); seconds = forward passes + "
    "estimator. Baselines need no forward pass: largest = most pre-training clips, most_classes = most "
    "pre-training classes, random = the expectation over 1,000 random orders. Intervals: 95% bootstrap "
    "over the task x protocol cells; the verdict's interval is paired (default minus largest, per cell)."
)


@dataclass
class AdvisorCheck:
    """The validation tables of one study (empty with a note when it could not be computed)."""

    default: str = ""
    cells: pd.DataFrame = field(default_factory=pd.DataFrame)  # task, protocol, estimator, tau_w, rho, ...
    picks: pd.DataFrame = field(default_factory=pd.DataFrame)  # task: default's pick, seconds, grid best
    scores: pd.DataFrame = field(default_factory=pd.DataFrame)  # task, candidate, estimator, score, seconds
    note: str = ""
    table: pd.DataFrame = field(default_factory=pd.DataFrame)  # per estimator/baseline: means + intervals
    verdict: bl.Verdict | None = None


def advisor_check(res: Any, scores: pd.DataFrame, progress: bool = True) -> AdvisorCheck:
    """Run the advisor on the study's states and tasks and compare with the score table (state, task,
    protocol, mean, ci_low, ci_high)."""
    import audiotransfer.advise.public as public
    from audiotransfer.advise.driver import advise, study_candidates, study_tasks
    from audiotransfer.advise.rank import DEFAULT, NAMES
    from audiotransfer.models.public import public_hash
    from audiotransfer.study.layout import StudyDir

    if scores.empty:
        return AdvisorCheck(note="no finished fine-tuning results to compare with")
    try:
        tasks = study_tasks(res, sorted(set(scores["task"]) & set(res.tasks.get("task", []))))
        candidates = study_candidates(res)
    except UserError as exc:
        return AdvisorCheck(note=f"the advisor could not run: {exc.message}")
    made: dict[str, pd.DataFrame] = {}

    def run() -> pd.DataFrame:
        advice = advise(candidates, tasks, StudyDir(res.study_dir).embeddings, progress=progress)
        made["embed"] = pd.DataFrame(
            [dict(task=t, candidate=c, seconds=s) for t, d in advice.embed_seconds.items() for c, s in d.items()],
            columns=["task", "candidate", "seconds"],
        )
        return advice.long

    # the estimators' table is cached beside the report's other measures (the probe takes a while)
    key = gather.fingerprint(
        {c.name: c.path for c in candidates if not public.is_public(c)},
        public={c.name: [c.source, public_hash(c.path, c.source)] for c in candidates if public.is_public(c)},
        estimators=list(NAMES),
        tasks={t.name: t.manifest.hash for t in tasks},
    )
    cache = res.study_dir / "report" / "cache"
    long = gather.cached(cache, "advisor_scores", key, run)
    embed = gather.cached(
        cache, "advisor_embed", key, lambda: made["embed"] if "embed" in made else (run(), made["embed"])[1]
    )
    if long.empty:
        return AdvisorCheck(note="no task could be ranked (multi-label tasks are skipped)")
    cells = compare(with_baselines(long, state_sizes(res)), embed, scores)
    flat = bootstrap_cells(cells)
    return AdvisorCheck(
        DEFAULT,
        cells,
        picks(long, embed, scores, res.runs, DEFAULT),
        long,
        table=bl.summary(flat),
        verdict=bl.verdict(flat, DEFAULT),
    )


def state_sizes(res: Any) -> pd.DataFrame:
    """Per pre-trained state its pre-training clips and classes."""
    return bl.study_sizes(res)


def with_baselines(long: pd.DataFrame, sizes: pd.DataFrame) -> pd.DataFrame:
    """The advisor's long table plus the size baselines' rows for each task (over the same candidates)."""
    parts = [long]
    for task, part in long.groupby("task", sort=False):
        rows = bl.size_scores(sizes.reindex(part["candidate"].unique()))
        parts.append(rows.assign(task=task, seconds=0.0, note=""))
    return pd.concat(parts, ignore_index=True)


def bootstrap_cells(cells: pd.DataFrame) -> pd.DataFrame:
    """The cells in the form `advise.baselines` summarises: cell, estimator, the four metrics."""
    out = cells.assign(cell=cells["task"] + "/" + cells["protocol"], top1=cells["top1_is_best"].astype(float))
    return out[["cell", "estimator", *bl.METRICS, *(["random_draw_tau"] if "random_draw_tau" in out else [])]]


def compare(long: pd.DataFrame, embed: pd.DataFrame, scores: pd.DataFrame, draws: int = 1000) -> pd.DataFrame:
    """One row per task x protocol x estimator (baselines included, `random` as its expectation over `draws`
    permutations): tau_w, rho, top-1 state, actual best, hit, within, regret, top3_regret, seconds."""
    rows = []
    for (task, protocol), part in scores.groupby(["task", "protocol"], sort=True):
        actual = part.set_index("state")
        mine = long[long["task"] == task]
        pool = [c for c in dict.fromkeys(mine["candidate"]) if c in actual.index]
        if not pool:
            continue
        truth = actual.loc[pool, "mean"]
        best = truth.idxmax()
        for estimator, est in mine.groupby("estimator", sort=False):
            s = est.set_index("candidate")["score"].dropna()
            common = [c for c in s.index if c in actual.index]
            x, y = s[common].to_numpy(), actual.loc[common, "mean"].to_numpy()
            ok = len(common) >= 3 and np.ptp(x) > 0 and np.ptp(y) > 0
            top = s[common].idxmax() if common else None
            low = actual.loc[best, "ci_low"]
            within = bool(top is not None and (top == best or (np.isfinite(low) and actual.loc[top, "mean"] >= low)))
            spent = est["seconds"].sum() + (
                0.0 if estimator in bl.BASELINES else embed.loc[embed["task"] == task, "seconds"].sum()
            )
            m = bl.cell_metrics(s[common], truth)
            rows.append(
                dict(
                    task=task,
                    protocol=protocol,
                    estimator=estimator,
                    n_states=len(common),
                    tau_w=stats.weightedtau(x, y).statistic if ok else np.nan,
                    rho=stats.spearmanr(x, y).statistic if ok else np.nan,
                    top1=top,
                    best=best,
                    top1_is_best=top == best,
                    within_best_ci=within,
                    regret=m["regret"],
                    top3_regret=m["top3_regret"],
                    seconds=spent,
                )
            )
        rand = bl.random_metrics(truth, draws, seed=len(rows))
        rows.append(
            dict(
                task=task,
                protocol=protocol,
                estimator=bl.RANDOM,
                n_states=len(pool),
                tau_w=rand["tau_w"].mean(),
                rho=np.nan,
                top1=None,
                best=best,
                top1_is_best=rand["top1"].mean(),
                within_best_ci=np.nan,
                regret=rand["regret"].mean(),
                top3_regret=rand["top3_regret"].mean(),
                seconds=0.0,
                random_draw_tau=rand["tau_w"].to_numpy(),
            )
        )
    return pd.DataFrame(rows)


def picks(
    long: pd.DataFrame, embed: pd.DataFrame, scores: pd.DataFrame, runs: pd.DataFrame, default: str
) -> pd.DataFrame:
    """Per task: the default estimator's pick and its seconds, the grid's best (per protocol) and seconds."""
    rows = []
    for task, part in long[long["estimator"] == default].groupby("task", sort=True):
        s = part.set_index("candidate")["score"].dropna()
        spent = part["seconds"].sum() + embed.loc[embed["task"] == task, "seconds"].sum()
        ft = runs[(runs["kind"] == "finetune") & (runs["task"] == task)] if not runs.empty else runs
        best = {p: g.set_index("state")["mean"].idxmax() for p, g in scores[scores["task"] == task].groupby("protocol")}
        rows.append(
            dict(
                task=task,
                pick=s.idxmax() if len(s) else None,
                seconds=spent,
                grid_best=best,
                grid_seconds=float(ft["duration_s"].fillna(0).sum()) if len(ft) else np.nan,
            )
        )
    return pd.DataFrame(rows)


def summary_lines(check: AdvisorCheck) -> list[str]:
    """Plain-language lines: per task the default's pick vs the grid's best; the verdict against `largest`;
    per estimator and baseline its means over the cells with 95% bootstrap intervals."""
    if check.cells.empty:
        return [f"Not available: {check.note or 'no states or tasks to compare'}."]
    lines = [pick_line(r) for r in check.picks.itertuples()]
    if check.verdict is not None:
        lines.append(check.verdict.line())
    # seconds are per task (one advice serves every protocol): count each task once
    seconds = check.cells.drop_duplicates(["estimator", "task"]).groupby("estimator")["seconds"].sum()
    for name, r in check.table.iterrows():
        lines.append(ranking_line(str(name), r, check.default, float(seconds.get(name, 0.0))))
    return lines


def ranking_line(name: str, r: Any, default: str, seconds: float) -> str:
    """'knn (default): weighted tau +0.57 [+0.40, +0.70]; top-1 the best in 14 of 18 cells; regret ...'."""
    mark = " (default)" if name == default else " (baseline)" if name in bl.BASELINES else ""
    sd = (
        f", SD over permutations {r['random_sd']:.2f}"
        if name == bl.RANDOM and np.isfinite(r.get("random_sd", np.nan))
        else ""
    )
    cost = f"; {seconds:.1f} s with the forward passes" if name not in bl.BASELINES else ""
    return (
        f"{name}{mark}: weighted tau {r['tau_w']:+.2f} [{r['tau_w_low']:+.2f}, {r['tau_w_high']:+.2f}]{sd}; "
        f"top-1 the best state in {r['top1']:.0%} of {int(r['cells'])} cells; regret {r['regret']:.3f} "
        f"[{r['regret_low']:.3f}, {r['regret_high']:.3f}], top-3 regret {r['top3_regret']:.3f}{cost}"
    )


def pick_line(r: Any) -> str:
    """'TASK: the advisor would have picked X in N s; the grid's best was Y (protocol), ...'."""
    best = ", ".join(f"{s} ({p})" for p, s in r.grid_best.items())
    grid = f" (after {r.grid_seconds:.0f} s of fine-tuning)" if np.isfinite(r.grid_seconds) else ""
    return f"{r.task}: the advisor would have picked {r.pick} in {r.seconds:.1f} s; the grid's best{grid} was {best}"


def published_baselines(draws: int = 1000) -> pd.DataFrame:
    """The free baselines on the study authors' published table: per corpus (a cell) and baseline the four
    metrics, over the pre-trained states (scratch is no candidate to start from)."""
    from audiotransfer.analysis.reference import published

    long = published()
    long = long[long["state"] != "scratch"]
    sizes = (
        long.drop_duplicates("state")
        .set_index("state")
        .rename(columns={"num_samples": "clips", "num_classes": "classes"})
    )
    rows = bl.size_scores(sizes)
    scores = pd.concat([rows.assign(cell=corpus) for corpus in long["corpus"].unique()], ignore_index=True)
    truth = long.rename(columns={"corpus": "cell", "state": "candidate", "uar": "value"})
    return bl.score_cells(scores, truth, draws)
