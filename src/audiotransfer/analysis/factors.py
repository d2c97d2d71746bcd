"""What explains downstream scores: samples, classes or similarity? Regression, ranks, importance, words.

One row per pre-training state (scores averaged over seeds, so seeds are not counted as independent
states). Predictors are standardised: log10 samples, log10 classes and data similarity (higher = more
similar), so coefficients read as "score change per standard deviation of the factor". OLS (statsmodels)
gives 95% confidence intervals; Spearman correlations give a model-free check; relative importance is the
LMG decomposition (the Shapley value of R^2 over all orders of entering the predictors), which splits R^2
fairly between correlated predictors. When several tasks are pooled, task fixed effects are always in the
model and LMG splits the R^2 beyond them, and the intervals are clustered by state: the rows of one state
share its pre-trained model, so they are not independent (cluster-robust covariance, t with G - 1 degrees
of freedom for G states). A factor "mattered most" only when its interval excludes zero.
"""

from __future__ import annotations

import itertools
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

FACTORS = ("samples", "classes", "similarity")
DESCRIBE = {
    "samples": "log pre-training samples",
    "classes": "log pre-training classes",
    "similarity": "data similarity",
}
VIF_LIMIT = 5.0


@dataclass
class FactorFit:
    """The result for one group of states (a task and protocol, or pooled tasks)."""

    label: str
    metric: str
    n_states: int
    table: pd.DataFrame  # per factor: coef, ci_low, ci_high, p, vif, lmg, rho, rho_p
    r2: float = float("nan")
    notes: list[str] = field(default_factory=list)
    unit: str = "states"  # what a row is: "states", or "state-task pairs" when tasks are pooled
    r2_base: float = 0.0  # R^2 of the task effects alone (pooled fits)
    clusters: int = 0  # states the intervals are clustered by (pooled fits; 0: rows are independent states)

    def shares(self) -> pd.Series:
        """Each factor's share of the R^2 the factors explain (beyond task effects), from LMG."""
        total = self.table["lmg"].sum()
        return self.table["lmg"] / total if total > 0 else self.table["lmg"] * np.nan

    def r2_text(self) -> str:
        if self.r2_base > 0:
            return f"R^2 = {self.r2:.2f}, of which {self.r2 - self.r2_base:.2f} beyond the task effects"
        return f"R^2 = {self.r2:.2f}"

    def most_important(self) -> str | None:
        """The factor with the largest R^2 share among those whose interval excludes zero (else overall)."""
        lmg = self.table["lmg"].dropna()
        clear = [f for f in lmg.index if _clear(self.table.loc[f])]
        if clear:
            return str(lmg[clear].idxmax())
        return str(lmg.idxmax()) if not lmg.empty else None


def _design(data: pd.DataFrame, factors: list[str]) -> pd.DataFrame:
    cols = {}
    for f in factors:
        raw = data[f].astype(float)
        values = np.log10(raw) if f in ("samples", "classes") else raw
        cols[f] = (values - values.mean()) / values.std(ddof=1)
    return pd.DataFrame(cols, index=data.index)


def _r2(y: np.ndarray, x: np.ndarray) -> float:
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    resid = y - x @ beta
    total = ((y - y.mean()) ** 2).sum()
    return float(1 - (resid**2).sum() / total) if total > 0 else float("nan")


def lmg(y: np.ndarray, x: pd.DataFrame, base: np.ndarray) -> dict[str, float]:
    """Shapley decomposition of R^2 among the columns of x, over the `base` columns (always in)."""
    names = list(x.columns)
    k = len(names)
    r2: dict[frozenset, float] = {}
    for size in range(k + 1):
        for subset in itertools.combinations(names, size):
            mat = np.column_stack([base, *(x[c].to_numpy() for c in subset)])
            r2[frozenset(subset)] = _r2(y, mat)
    out = {}
    for name in names:
        others = [c for c in names if c != name]
        total = 0.0
        for size in range(k):
            weight = math.factorial(size) * math.factorial(k - size - 1) / math.factorial(k)
            for subset in itertools.combinations(others, size):
                s = frozenset(subset)
                total += weight * (r2[s | {name}] - r2[s])
        out[name] = total
    return out


def _usable_factors(data: pd.DataFrame, notes: list[str]) -> tuple[pd.DataFrame, list[str]]:
    """The scored rows and the factors that are present and vary (each one left out gets a note)."""
    data = data.dropna(subset=["score"]).copy()
    factors = []
    for f in FACTORS:
        if f not in data.columns or data[f].isna().all():
            notes.append(f"{DESCRIBE[f]} is not available, so it is left out.")
            continue
        if f in ("samples", "classes") and (data[f] <= 0).any():
            data = data[data[f] > 0]
        factors.append(f)
    data = data.dropna(subset=factors)
    for f in list(factors):
        if data[f].nunique() < 2:
            notes.append(f"{DESCRIBE[f]} does not vary between the states, so its effect cannot be estimated.")
            factors.remove(f)
    return data, factors


def fit_factors(data: pd.DataFrame, metric: str = "score", label: str = "", level: float = 0.95) -> FactorFit:
    """Regress `score` on the standardised factors present in `data` (one row per state, or per state and
    task when a `task` column with several values is present: then task fixed effects are added)."""
    import statsmodels.api as sm
    from statsmodels.stats.outliers_influence import variance_inflation_factor

    notes: list[str] = []
    data, factors = _usable_factors(data, notes)
    tasks = sorted(data["task"].unique()) if "task" in data.columns else []
    n = len(data)
    table = pd.DataFrame(
        index=pd.Index(list(FACTORS), name="factor"),
        columns=["coef", "ci_low", "ci_high", "p", "vif", "lmg", "rho", "rho_p"],
        dtype=float,
    )
    fit = FactorFit(
        label=label,
        metric=metric,
        n_states=n,
        table=table,
        notes=notes,
        unit="state-task pairs" if len(tasks) > 1 else "states",
    )
    if n < 3 or not factors:
        notes.append(f"Only {n} {fit.unit} with scores: too few to relate scores to factors.")
        return fit
    if data["score"].nunique() < 2:
        notes.append(
            f"The score is the same ({data['score'].iloc[0]:.3f}) for all {n} {fit.unit}: there is no "
            "difference for the factors to explain."
        )
        return fit
    for f in factors:
        if data[f].nunique() > 1 and data["score"].nunique() > 1:
            rho, p = stats.spearmanr(data[f], data["score"])
            table.loc[f, ["rho", "rho_p"]] = [rho, p]
    x = _design(data, factors)
    dummies = pd.get_dummies(data["task"], drop_first=True, dtype=float) if len(tasks) > 1 else None
    base = np.ones((n, 1)) if dummies is None else np.column_stack([np.ones(n), dummies.to_numpy()])
    df_resid = n - base.shape[1] - len(factors)
    y = data["score"].to_numpy(dtype=float)
    if df_resid < 1:
        notes.append(f"{n} {fit.unit} are too few for {len(factors)} factors: no regression, ranks only.")
        return fit
    design = sm.add_constant(pd.concat([x, dummies], axis=1) if dummies is not None else x, has_constant="add")
    clusters = pd.factorize(data["state"])[0] if "state" in data.columns and data["state"].duplicated().any() else None
    if clusters is not None:
        fit.clusters = int(clusters.max()) + 1
    with warnings.catch_warnings():  # rank-deficient designs are detected and reported below
        warnings.simplefilter("ignore")
        model = (
            sm.OLS(y, design).fit()
            if clusters is None
            else sm.OLS(y, design).fit(cov_type="cluster", cov_kwds={"groups": clusters}, use_t=True)
        )
        xv = sm.add_constant(x, has_constant="add").to_numpy()
        vifs = {f: variance_inflation_factor(xv, i) for i, f in enumerate(factors, start=1)} if len(factors) > 1 else {}
    ci = model.conf_int(alpha=1 - level)
    for f in factors:
        table.loc[f, ["coef", "ci_low", "ci_high", "p"]] = [
            model.params[f],
            ci.loc[f, 0],
            ci.loc[f, 1],
            model.pvalues[f],
        ]
        table.loc[f, "vif"] = vifs.get(f, np.nan)
    if np.linalg.matrix_rank(design.to_numpy()) < design.shape[1]:
        tied = [f for f in factors if vifs.get(f, 0) > 1e6]
        table.loc[tied, ["coef", "ci_low", "ci_high", "p"]] = np.nan
        notes.append(
            f"{' and '.join(DESCRIBE[f] for f in tied).capitalize()} are exactly collinear here: their "
            "separate effects are not estimable (shown as n/a); their importance is split between them."
        )
    fit.r2 = float(model.rsquared)
    fit.r2_base = _r2(y, base) if base.shape[1] > 1 else 0.0
    for f, share in lmg(y, x, base).items():
        table.loc[f, "lmg"] = share
    if df_resid < 3:
        notes.append(f"Only {df_resid} residual degrees of freedom ({n} {fit.unit}): intervals are very wide.")
    return fit


def _fmt(v: float) -> str:
    return f"{v:+.3f}" if np.isfinite(v) else "n/a"


def _clear(row: pd.Series) -> bool:
    """The factor's interval is estimated and excludes zero."""
    return bool(np.isfinite(row["ci_low"]) and (row["ci_low"] > 0 or row["ci_high"] < 0))


def _limits(fit: FactorFit) -> list[str]:
    """Sentences on what the data cannot tell: collinear factors, intervals spanning zero."""
    t = fit.table
    out = []
    collinear = [f for f in FACTORS if t.loc[f, "vif"] > VIF_LIMIT]  # NaN compares False; inf is collinear
    if len(collinear) >= 2 and t.loc[collinear, "coef"].notna().all():
        names = " and ".join(DESCRIBE[f] for f in collinear)
        out.append(
            f"{names.capitalize()} move together across these states (VIF up to "
            f"{t.loc[collinear, 'vif'].max():.3g}), so the data cannot separate their effects."
        )
    spanning = [
        f for f in FACTORS if np.isfinite(t.loc[f, "ci_low"]) and t.loc[f, "ci_low"] <= 0 <= t.loc[f, "ci_high"]
    ]
    if spanning:
        out.append(
            f"The intervals for {', '.join(DESCRIBE[f] for f in spanning)} include zero: the data cannot "
            "tell whether those factors help or hurt."
        )
    return out


def answer(fit: FactorFit) -> str:
    """One plain-language paragraph from the numbers of a fit."""
    t, best = fit.table, fit.most_important()
    head = f"{fit.label}: " if fit.label else ""
    if best is None or not np.isfinite(fit.r2):
        ranked = t["rho"].dropna()
        text = head + " ".join(fit.notes)
        if not ranked.empty:
            top = ranked.abs().idxmax()
            text += (
                f" By rank correlation alone, {DESCRIBE[top]} tracks the score most closely "
                f"(Spearman rho {ranked[top]:+.2f})."
            )
        return text.strip()[:1].upper() + text.strip()[1:]
    row = t.loc[best]
    share = fit.shares()[best]
    effect = (
        f"one standard deviation more goes with {_fmt(row['coef'])} {fit.metric} (95% CI "
        f"{_fmt(row['ci_low'])} to {_fmt(row['ci_high'])})"
    )
    if _clear(row):
        text = (
            f"{head}across {fit.n_states} {fit.unit}, {DESCRIBE[best]} mattered most: {effect} and it accounts "
            f"for {share:.0%} of the variance the factors explain ({fit.r2_text()})."
        )
        larger = [f for f in FACTORS if f != best and fit.shares().get(f, 0) > share]
        if larger:
            verb = "has" if len(larger) == 1 else "have"
            text += (
                f" ({' and '.join(DESCRIBE[f] for f in larger).capitalize()} {verb} a larger share, but an "
                "interval that includes zero.)"
            )
    else:
        why = (
            f"its interval includes zero: {effect}"
            if np.isfinite(row["coef"])
            else "its own effect cannot be estimated (see below)"
        )
        text = (
            f"{head}across {fit.n_states} {fit.unit}, no factor clearly mattered most: the largest share "
            f"({share:.0%} of the variance the factors explain, {fit.r2_text()}) goes to {DESCRIBE[best]}, but "
            f"{why}."
        )
    others = [f for f in FACTORS if f != best and np.isfinite(t.loc[f, "coef"])]
    if others:
        parts = [
            f"{DESCRIBE[f]} {_fmt(t.loc[f, 'coef'])} ({_fmt(t.loc[f, 'ci_low'])} to {_fmt(t.loc[f, 'ci_high'])})"
            for f in others
        ]
        text += " The others: " + "; ".join(parts) + "."
    text = " ".join([text, *_limits(fit), *fit.notes])
    return text[0].upper() + text[1:]


def headline(fit: FactorFit) -> list[str]:
    """Three lines, samples vs classes vs similarity, for a terminal."""
    t, best = fit.table, fit.most_important()
    lines = []
    for f in FACTORS:
        row = t.loc[f]
        if not np.isfinite(row["coef"]):
            rho = f", Spearman rho {row['rho']:+.2f}" if np.isfinite(row["rho"]) else ""
            lines.append(f"{f:>10}: not estimable{rho}")
            continue
        share = fit.shares()[f]
        mark = ""
        if f == best:
            mark = "  <- mattered most" if _clear(row) else "  <- largest share, interval includes zero"
        lines.append(
            f"{f:>10}: {_fmt(row['coef'])} {fit.metric} per SD (95% CI {_fmt(row['ci_low'])} to "
            f"{_fmt(row['ci_high'])}), {share:.0%} of the factors' R^2{mark}"
        )
    return lines
