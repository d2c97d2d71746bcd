"""The study report: what transferred and why, as one self-contained HTML page and a Markdown summary.

`analyse(study_dir)` computes every table (scores, transfer gain, similarities, factor fits) and
`write_report(study_dir)` renders `report/index.html` (figures embedded as base64 PNG), `report/summary.md`,
`report/summary.json` (headline lines and paragraph, for the demo) and `report/figures/*.png|svg`.
Whatever is missing (no store, a state without a model, fewer than two seeds) is listed in the report,
which renders the rest.
"""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

import audiotransfer.analysis.advisor as advisor
import audiotransfer.analysis.advisor_plots as advisor_plots
import audiotransfer.analysis.gather as gather
import audiotransfer.analysis.overview as overview
import audiotransfer.analysis.plots as plots
import audiotransfer.analysis.reference as reference
from audiotransfer.analysis.factors import DESCRIBE, FACTORS, FactorFit, answer, fit_factors, headline
from audiotransfer.analysis.scores import TOO_FEW, metric_range, score_table, select_metric, transfer_gain
from audiotransfer.errors import UserError
from audiotransfer.study.results import StudyResults, load_results, pretrained_dir
from audiotransfer.study.spec import SCRATCH

METRICS = ("uar", "accuracy", "macro_f1", "auc")
SIMILARITIES = ("frechet", "mmd", "label_share")
# Default data similarity for the factors: the Frechet distance of embeddings sees dilution (a superset
# of the task's material is less similar than the material alone), while the label share saturates at 1
# for every superset and so moves with the class count.
DEFAULT_SIMILARITY = "frechet"


@dataclass
class Analysis:
    """All numbers of a report."""

    res: StudyResults
    metric: str
    protocols: list[str]
    similarity: str
    scores: pd.DataFrame
    gains: pd.DataFrame
    weights: pd.DataFrame = field(default_factory=pd.DataFrame)
    weight_blocks: pd.DataFrame = field(default_factory=pd.DataFrame)
    cka: dict[str, pd.DataFrame] = field(default_factory=dict)  # task -> long CKA table
    data_sim: pd.DataFrame = field(default_factory=pd.DataFrame)
    tagger: str | None = None
    fits: list[FactorFit] = field(default_factory=list)
    pooled: FactorFit | None = None
    pooled_fits: dict[str, FactorFit] = field(default_factory=dict)  # protocol -> pooled fit (forest plot)
    sections: list[tuple[str, list[str]]] = field(default_factory=list)  # (title, lines) a caller adds
    matched: dict[str, set[str]] = field(default_factory=dict)  # task -> states sharing its material (if known)
    categories: dict[str, list[str]] = field(default_factory=dict)  # state -> ontology categories it names
    ontology: Any = None  # audiotransfer.ontology.Ontology of the pre-training corpus, when readable
    full_state: str | None = None  # the state of every class, the ontology view's top node
    reference: pd.DataFrame = field(default_factory=pd.DataFrame)  # published numbers beside the study's
    advisor: advisor.AdvisorCheck | None = None  # "Could we have known before fine-tuning?"

    @property
    def notes(self) -> list[str]:
        return self.res.notes

    @property
    def headline(self) -> list[str]:
        if self.pooled is None:
            return [f"{f:>10}: not estimable (no finished results)" for f in FACTORS]
        return headline(self.pooled)

    @property
    def paragraph(self) -> str:
        return answer(self.pooled) if self.pooled is not None else " ".join(self.notes)

    @property
    def sentence(self) -> str:
        return one_sentence(self)


def _metric(test: pd.DataFrame, metric: str, notes: list[str]) -> str:
    have = list(dict.fromkeys(test["metric"]))
    if metric in have or not have:
        return metric
    choice = next((m for m in METRICS if m in have), have[0])
    notes.append(f"Metric '{metric}' was not recorded; the report uses '{choice}' (recorded: {', '.join(have)}).")
    return choice


def factor_table(a: Analysis) -> pd.DataFrame:
    """One row per state x task x protocol: mean score, samples, classes, similarity (higher = closer)."""
    if a.scores.empty or a.res.states.empty:
        return pd.DataFrame(columns=["state", "task", "protocol", "score", "samples", "classes", "similarity"])
    states = a.res.states.rename(columns={"num_clips": "samples", "num_classes": "classes"})
    table = a.scores.rename(columns={"mean": "score"})[["state", "task", "protocol", "score"]]
    table = table[table["state"] != SCRATCH].merge(states[["state", "samples", "classes"]], on="state")
    if a.data_sim.empty:
        return table.assign(similarity=np.nan)
    sim = a.data_sim[["state", "task", a.similarity]].rename(columns={a.similarity: "similarity"})
    if a.similarity != "label_share":
        sim["similarity"] = -sim["similarity"]  # distances: larger means less similar
    return table.merge(sim, on=["state", "task"], how="left")


def analyse(study_dir: str | Path, metric: str = "uar", similarity: str = DEFAULT_SIMILARITY, max_inputs: int = 256,
            batch_size: int = 64, progress: bool = True, matched: dict[str, set[str]] | None = None) -> Analysis:
    """Compute every table of the report from a study directory.

    `matched` (task -> states that share its material) is a known ground truth, e.g. the synthetic world's:
    the heat map outlines those cells.
    """
    if similarity not in SIMILARITIES:
        raise UserError(f"unknown similarity measure {similarity!r}", fix=f"use one of {', '.join(SIMILARITIES)}")
    res = load_results(study_dir)
    metric = _metric(res.test, metric, res.notes)
    protocols = sorted(res.test["protocol"].unique(), key=lambda p: (p != "finetune", p))
    a = Analysis(res, metric, protocols, similarity, score_table(res.test, metric),
                 transfer_gain(res.test, metric), matched=dict(matched or {}))
    a.categories, a.ontology, a.full_state = gather.state_categories(res)
    a.reference = reference.compare(a.scores, res.tasks, metric)
    short = a.scores[a.scores["n_seeds"] < 2]
    if len(short):
        res.notes.append(f"{len(short)} state x task x protocol cells have fewer than two finished seeds: "
                         "their intervals are marked unavailable, not estimated.")
    tasks = sorted(res.test["task"].unique())
    known = set(res.tasks["task"]) if not res.tasks.empty else set()
    if set(tasks) - known:
        res.notes.append(f"Tasks {', '.join(sorted(set(tasks) - known))} are missing from the store's tasks table: "
                         "no CKA or data similarity for them.")
        tasks = [t for t in tasks if t in known]
    states = [s for s in dict.fromkeys(res.test["state"]) if s != SCRATCH]
    missing = [s for s in states if pretrained_dir(res, s) is None]
    if missing:
        res.notes.append(f"No pre-trained model file for {', '.join(missing)}: left out of the weight, CKA and "
                         "data-similarity measures.")
    a.weights, a.weight_blocks = gather.weight_similarity(res, states)
    if protocols:
        for task in tasks:
            a.cka[task] = gather.representation_similarity(res, states, task, protocols[0], max_inputs, batch_size,
                                                           progress)
    a.data_sim, a.tagger = gather.data_similarity(res, tasks, max_inputs, batch_size, progress)
    if a.data_sim.empty and tasks:
        res.notes.append("Data similarity is unavailable (no pre-trained tagger model with a label set), so the "
                         "factor analysis uses samples and classes only.")
    elif not a.data_sim.empty and a.data_sim[similarity].isna().all():
        res.notes.append(f"The '{similarity}' similarity could not be computed (tagger and subset label sets "
                         "do not match).")
    _fit(a)
    a.advisor = advisor.advisor_check(res, a.scores, progress)
    return a


def _fit(a: Analysis) -> None:
    data = factor_table(a)
    unknown = sorted(data.loc[data[["samples", "classes"]].isna().any(axis=1), "state"].unique())
    if unknown:
        a.notes.append(f"No sample or class counts recorded for {', '.join(unknown)} (imported checkpoints?): "
                       "left out of the factor analysis.")
    for protocol in a.protocols:
        part = data[data["protocol"] == protocol]
        for task in sorted(part["task"].unique()):
            a.fits.append(fit_factors(part[part["task"] == task], a.metric, label=f"{task} ({protocol})"))
    pooled = [fit_factors(data[data["protocol"] == p], a.metric, label=f"all tasks pooled ({p}, task effects "
                          "removed)") for p in a.protocols]
    a.pooled_fits = dict(zip(a.protocols, pooled, strict=True))
    if pooled:  # the first protocol's pooled fit is the headline; the others lead the per-protocol list
        a.pooled = pooled[0]
        a.fits[:0] = pooled[1:]


def one_sentence(a: Analysis) -> str:
    """The answer in one sentence: where pre-training clearly beat scratch, and which factor mattered most."""
    if a.pooled is None or a.gains["gain"].isna().all():
        return "No answer yet: " + (a.notes[0] if a.notes else "the study has no finished results.")
    proto = a.protocols[0]
    g = a.gains[(a.gains["protocol"] == proto)].dropna(subset=["gain"])
    best = g.sort_values("gain", ascending=False).drop_duplicates("task").sort_values("task")
    wins = [f"{r.task}: {r.state} {r.gain:+.3f}" for r in best.itertuples()]
    clear = sum(overview.excludes_zero(r.ci_low, r.ci_high) and r.gain > 0 for r in best.itertuples())
    top = a.pooled.most_important()
    if top is None or not np.isfinite(a.pooled.table.loc[top, "coef"]):
        factor = "the factor analysis has too few states to say which of samples, classes and similarity mattered"
    else:
        row = a.pooled.table.loc[top]
        ci = f"{row['coef']:+.3f} {a.metric} per SD, 95% CI {row['ci_low']:+.3f} to {row['ci_high']:+.3f}"
        factor = (f"of samples, classes and similarity, {DESCRIBE[top]} mattered most ({ci})"
                  if overview.excludes_zero(row["ci_low"], row["ci_high"]) else
                  f"no factor clearly mattered most (the largest share, {DESCRIBE[top]}, has an interval that "
                  f"includes zero: {ci})")
    return (f"Under {proto}, the best pre-training state per task ({'; '.join(wins)} {a.metric} over scratch) beat "
            f"scratch with an interval above zero on {clear} of {len(best)} tasks, and {factor}.")


# ------------------------------------------------------------------------------------------------- figures
class Drawn(NamedTuple):
    """A figure of the report: its key (where the page puts it: 'heat:PROTOCOL', 'forest', 'ontology:PROTOCOL',
    or the detail grid: 'grid', 'wide' for a whole row), title and PNG path."""

    key: str
    title: str
    path: Path


def figures(a: Analysis, out_dir: Path) -> list[Drawn]:
    """Draw every figure the data allows: the first screen's, the ontology view, then the detail grid."""
    made: list[Drawn] = []

    def keep(key: str, title: str, fig: Any, name: str) -> None:
        made.append(Drawn(key, title, plots.save(fig, out_dir, name)["png"]))

    for proto in a.protocols:
        g = a.gains[a.gains["protocol"] == proto]
        if g["gain"].notna().any():
            heat = overview.gain_heatmap(g, a.metric, proto, a.matched)
            keep(f"heat:{proto}", f"Transfer gain over scratch ({proto})",
                 advisor_plots.mark_advisor(heat, g, a.advisor, proto), f"gain_{proto.replace(':', '-')}")
    if any(np.isfinite(f.table["coef"]).any() for f in a.pooled_fits.values()):
        keep("forest", "Pooled factor effects per protocol (95% CI)", overview.forest(a.pooled_fits), "forest")
    if a.ontology is not None and a.categories:
        for proto in a.protocols:
            g = a.gains[a.gains["protocol"] == proto]
            if g["gain"].notna().any():
                keep(f"ontology:{proto}", f"Ontology view: gain of the state built from each category ({proto})",
                     overview.ontology_tree(a.ontology, a.categories, g, a.metric, a.full_state, a.matched),
                     f"ontology_{proto.replace(':', '-')}")
    made += _detail_figures(a, out_dir)
    return made


def _detail_figures(a: Analysis, out_dir: Path) -> list[Drawn]:
    made: list[Drawn] = []

    def keep(title: str, fig: Any, name: str) -> None:
        wide = fig.get_figwidth() > 1.8 * fig.get_figheight()  # multi-panel figures take a whole grid row
        made.append(Drawn("wide" if wide else "grid", title, plots.save(fig, out_dir, name)["png"]))

    data = factor_table(a)
    if not data.empty and a.protocols:
        proto, bounds = a.protocols[0], metric_range(a.metric)
        seeds = select_metric(a.res.test, a.metric)
        seeds = seeds[seeds["protocol"] == proto].merge(data[data["protocol"] == proto][
            ["state", "task", "samples", "classes"]], on=["state", "task"])
        summary = data[data["protocol"] == proto].merge(a.scores, on=["state", "task", "protocol"])
        for factor in ("samples", "classes"):
            keep(f"{a.metric} vs pre-training {factor} ({proto})",
                 plots.score_vs_factor(seeds, summary, factor, a.metric, bounds=bounds), f"score_vs_{factor}")
        if summary["similarity"].notna().any():
            seeds = seeds.merge(data[data["protocol"] == proto][["state", "task", "similarity"]], on=["state", "task"])
            label = f"data similarity ({a.similarity}{'' if a.similarity == 'label_share' else ', negated'})"
            keep(f"{a.metric} vs {label} ({proto})",
                 plots.score_vs_factor(seeds, summary, "similarity", a.metric, log=False, label=label, bounds=bounds),
                 "score_vs_similarity")
    scatter = advisor_plots.score_scatter(a.advisor, a.scores, a.protocols[0], a.metric) if (
        a.advisor and not a.advisor.cells.empty and a.protocols) else None
    if scatter is not None:
        keep(f"The advisor's score vs the fine-tuned {a.metric} per state ({a.protocols[0]})", scatter,
             "advisor_scatter")
    if not a.weights.empty:
        keep("Weight distance (1 - cosine, first convolution)",
             plots.heatmap(a.weights, "1 - cos(first conv weights)", "magma", "{:.2g}"), "weight_distance")
    if not a.data_sim.empty:
        for col, title in (("label_share", "Label share (tagger top-1 in subset labels)"),
                           ("frechet", "Frechet distance of embeddings")):
            mat = a.data_sim.pivot(index="state", columns="task", values=col)
            if mat.notna().any().any():
                keep(title, plots.heatmap(mat, title, "viridis" if col == "label_share" else "magma_r",
                                          "{:.2f}" if col == "label_share" else "{:.0f}"), f"data_{col}")
    for task, long in a.cka.items():
        between = cka_between(long)
        if not between.empty:
            keep(f"CKA between pre-trained states on {task} ({between.attrs['block']})",
                 plots.heatmap(between, f"linear CKA, {between.attrs['block']}, {task}"), f"cka_{task}")
        kept = cka_kept(long)
        if not kept.empty:
            keep(f"CKA per layer before vs after fine-tuning on {task}",
                 plots.cka_layers(kept, f"CKA(pre-trained, fine-tuned) on {task}"), f"cka_layers_{task}")
    return made


def cka_between(long: pd.DataFrame) -> pd.DataFrame:
    """State x state CKA at the last block (the embedding) among pre-trained models."""
    pre = long[~long["a"].str.endswith(gather.FT) & ~long["b"].str.endswith(gather.FT)]
    if pre.empty:
        return pd.DataFrame()
    block = list(dict.fromkeys(pre["block"]))[-1]
    part = pre[pre["block"] == block]
    names = sorted(set(part["a"]) | set(part["b"]))
    mat = pd.DataFrame(np.eye(len(names)), index=names, columns=names)
    for row in part.itertuples():
        mat.loc[row.a, row.b] = mat.loc[row.b, row.a] = row.cka
    mat.attrs["block"] = block
    return mat


def cka_kept(long: pd.DataFrame) -> pd.DataFrame:
    """State x block: CKA between each pre-trained state and its own fine-tuned model."""
    pairs = long[long["b"] == long["a"] + gather.FT]
    pairs = pd.concat([pairs, long[long["a"] == long["b"] + gather.FT].rename(columns={"a": "b", "b": "a"})])
    if pairs.empty:
        return pd.DataFrame()
    order = list(dict.fromkeys(long["block"]))
    return pairs.pivot(index="a", columns="block", values="cka").reindex(columns=order)


# ------------------------------------------------------------------------------------------------ tables
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
            rows.append({"fit": fit.label, "factor": factor, "coef per SD": _signed(r["coef"]),
                         "95% CI": _interval(r["ci_low"], r["ci_high"], "", "+") if np.isfinite(r["coef"]) else "n/a",
                         "share of R^2": f"{shares[factor]:.0%}" if np.isfinite(shares[factor]) else "n/a",
                         "Spearman rho": _signed(r["rho"], 2), "n": fit.n_states, "R^2": fit.r2})
    return pd.DataFrame(rows).set_index(["fit", "factor"]) if rows else pd.DataFrame()


def tables(a: Analysis) -> list[tuple[str, pd.DataFrame]]:
    """The report's tables, titled, ready to render: the factor fits and published numbers, then the detail."""
    out: list[tuple[str, pd.DataFrame]] = []
    regressions = regression_table(a)
    if not regressions.empty:
        out.append(("Factors per fit (standardised coefficients, 95% CI, LMG share of the factors' R^2)", regressions))
    if not a.reference.empty:
        out.append((f"Your test {a.metric} beside the published one (Milling et al., CNN10, fine-tuning)",
                    a.reference.set_index(["state", "task"])))
    return out + detail_tables(a)


def detail_tables(a: Analysis) -> list[tuple[str, pd.DataFrame]]:
    """Scores, gains, similarities, CKA and weight distances: the page's collapsed tables."""
    out: list[tuple[str, pd.DataFrame]] = []
    for proto in a.protocols:
        s = a.scores[a.scores["protocol"] == proto]
        cells = s.assign(cell=[score_cell(r) for r in s.itertuples()])
        out.append((f"Test {a.metric}: mean [95% CI] over seeds ({proto})",
                    cells.pivot(index="state", columns="task", values="cell")))
        g = a.gains[a.gains["protocol"] == proto]
        if not g.empty:
            g = g.assign(cell=[gain_cell(r) for r in g.itertuples()])
            out.append((f"Transfer gain over scratch ({proto})", g.pivot(index="state", columns="task",
                                                                          values="cell")))
    if not a.data_sim.empty:
        out.append((f"Data similarity (tagger: {a.tagger})", a.data_sim.set_index(["state", "task"])))
    for task, long in a.cka.items():
        kept = cka_kept(long)
        if not kept.empty:
            out.append((f"CKA of each state with its fine-tuned model, per layer ({task})", kept))
    if not a.weights.empty:
        out.append(("Weight distance, first convolution (1 - cosine)", a.weights))
    return out


def _fmt(v: Any) -> str:
    if isinstance(v, float | np.floating):
        x = float(v)
        if not np.isfinite(x):
            return "n/a"
        return f"{x:.3g}" if abs(x) >= 1000 or (0 < abs(x) < 0.001) else f"{x:.3f}"
    return "n/a" if v is None or v is pd.NA else str(v)


def markdown_table(df: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table of a DataFrame, index included."""
    flat = df.reset_index()
    head = "| " + " | ".join(str(c) for c in flat.columns) + " |"
    rule = "|" + "---|" * len(flat.columns)
    body = ["| " + " | ".join(_fmt(v).replace("|", "\\|") for v in row) + " |" for row in flat.itertuples(False)]
    return "\n".join([head, rule, *body])


# ------------------------------------------------------------------------------------------------ render
def method_note(a: Analysis) -> str:
    """How the numbers were made, in two sentences."""
    tagger = f"'{a.tagger}'" if a.tagger else "the state with the most classes"
    return (f"Data similarity: label share = share of a task's test clips whose top-1 label under the tagger "
            f"{tagger} is one of the state's classes; Frechet distance and RBF-MMD compare the tagger's "
            "embeddings of the state's training clips and the task's test clips (with few clips per set the "
            "Frechet distance is biased upward: compare it across states only). Factors: OLS on standardised "
            "log samples, log classes and similarity over states (seed means), 95% CIs; pooled over tasks, with "
            "task effects and intervals clustered by state (a state's rows share its pre-trained model; t with "
            "states - 1 degrees of freedom, which with few states can still be somewhat narrow); importance = "
            "LMG share of R^2; a factor mattered most only if its interval excludes zero; transfer-gain "
            "intervals are paired by seed when seeds match, Welch otherwise. Score and gain intervals respect the "
            "metric's range: a t-interval that crosses a bound is clipped to it (the tables' note says so), and one "
            "wider than the whole range is reported as 'too few seeds to tell'.")


STYLE = """*{box-sizing:border-box}body{font-family:system-ui,sans-serif;max-width:1240px;margin:0 auto;
padding:6px 14px;color:#222;font-size:14px;line-height:1.35}
h1{font-size:19px;margin:4px 0 2px}h2{font-size:17px;margin:22px 0 6px;border-bottom:1px solid #ddd}
h3{font-size:14px;margin:12px 0 4px}.meta{color:#666;font-size:12px;margin:0}
nav.toc{font-size:12px;margin:3px 0 5px}nav.toc a{margin-right:10px;color:#2457a6;text-decoration:none}
.answer{font-size:15px;font-weight:600;margin:4px 0 6px;padding:5px 8px;background:#f1f6ff;
border-left:4px solid #2457a6}
.first{display:grid;grid-template-columns:minmax(0,3fr) minmax(0,2fr);gap:10px;align-items:start}
.first img{max-height:590px;max-width:100%;height:auto;width:auto;display:block}
.tabs input{position:absolute;opacity:0}.tabs label{display:inline-block;padding:2px 10px;margin-right:4px;
border:1px solid #bbb;border-radius:3px;font-size:12px;cursor:pointer}.tabs .panel{display:none;margin-top:4px}
.headline{font-size:11px;background:#f7f7f7;padding:5px;white-space:pre-wrap;margin:4px 0}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(380px,1fr));gap:12px}
.grid figure,figure{margin:0}.grid .wide{grid-column:1/-1}img{max-width:100%;height:auto}
figcaption{font-size:12px;color:#555}
table{border-collapse:collapse;font-size:12px;margin:.4em 0 1em;display:block;overflow-x:auto;max-width:100%}
td,th{border:1px solid #ccc;padding:2px 6px}th{background:#f3f3f3}.note{color:#8a4b00}
details{margin:4px 0}summary{cursor:pointer;font-weight:600}.scroll{overflow-x:auto}
@media print{nav.toc,.tabs label{display:none}.tabs .panel{display:block!important;break-inside:avoid}
body{max-width:none;font-size:11px}figure,img,table{break-inside:avoid}
.first{grid-template-columns:1fr 1fr}h2{break-after:avoid}}"""
# printing opens the collapsed tables (the one line of script on the page; it loads nothing)
PRINT_OPENS = ("<script>addEventListener('beforeprint',()=>document.querySelectorAll('details')"
               ".forEach(d=>d.open=true))</script>")
SECTIONS = (("answer", "Answer"), ("ontology", "Ontology view"), ("findings", "Findings"),
            ("advisor", "Could we have known?"), ("reference", "Published results"), ("figures", "Figures"),
            ("tables", "Tables"), ("caveats", "Caveats"), ("method", "Method notes"))


def _img(path: Path, alt: str) -> str:
    """An inline PNG (the page works offline and by itself)."""
    return f"<img alt='{html.escape(alt)}' src='data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()}'>"


def _protocol_tabs(figs: list[Drawn], prefix: str, name: str) -> str:
    """One image per protocol behind radio-button tabs: pure CSS, no script; print shows them all."""
    chosen = [f for f in figs if f.key.startswith(prefix)]
    if not chosen:
        return ""
    css, inputs, panels = [], [], []
    for i, f in enumerate(chosen):
        ident = f"{name}{i}"
        proto = f.key.split(":", 1)[1]
        css.append(f"#{ident}:checked~#{ident}p{{display:block}}#{ident}:checked+label{{background:#2457a6;color:#fff}}")
        inputs.append(f"<input type='radio' name='{name}' id='{ident}'{' checked' if i == 0 else ''}>"
                      f"<label for='{ident}'>{html.escape(proto)}</label>")
        panels.append(f"<div class='panel' id='{ident}p'>{_img(f.path, f.title)}</div>")
    return f"<style>{''.join(css)}</style><div class='tabs'>{''.join(inputs)}{''.join(panels)}</div>"


def _table_html(df: pd.DataFrame) -> str:
    return df.to_html(na_rep="n/a", float_format=_fmt, border=0)


def render_html(a: Analysis, figs: list[Drawn], when: str) -> str:
    """The page: the answer and its evidence on the first screen, then the ontology view and the detail."""
    esc = html.escape
    absent = {"reference"} if a.reference.empty else set()
    absent |= set() if a.advisor else {"advisor"}
    toc = "".join(f"<a href='#{k}'>{t}</a>" for k, t in SECTIONS if k not in absent)
    forest = next((f for f in figs if f.key == "forest"), None)
    heat = _protocol_tabs(figs, "heat:", "heat") or "<p>No transfer gains yet (no finished scratch runs).</p>"
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><meta name='viewport' "
             f"content='width=device-width'><title>{esc(a.res.name)}: transfer report</title><style>{STYLE}"
             f"</style></head><body><h1>{esc(a.res.name)}: what transferred and why</h1>",
             f"<p class='meta'>Generated {esc(when)} from <code>{esc(str(a.res.study_dir))}</code>; metric: test "
             f"{esc(a.metric)}; similarity: {esc(a.similarity)}.</p><nav class='toc'>{toc}</nav>",
             f"<section id='answer'><p class='answer'>{esc(a.sentence)}</p><div class='first'><div>{heat}</div>"
             f"<div>{_img(forest.path, forest.title) if forest else ''}<pre class='headline'>"
             f"{esc(chr(10).join(a.headline))}</pre></div></div></section>"]
    onto = _protocol_tabs(figs, "ontology:", "onto")
    parts.append("<h2 id='ontology'>Ontology view</h2>" + (onto or "<p>No ontology view: the study's states name no "
                                                          "categories, or its ontology could not be read.</p>"))
    parts.append(_findings_html(a))
    parts.append(advisor.render(a.advisor, "html") if a.advisor else "")
    grid = [f for f in figs if f.key in ("grid", "wide")]
    parts.append("<h2 id='figures'>Figures</h2><div class='grid'>" + "".join(
        f"<figure class='{f.key}'>{_img(f.path, f.title)}<figcaption>{esc(f.title)}</figcaption></figure>"
        for f in grid)
        + "</div>" if grid else "<h2 id='figures'>Figures</h2><p>No figures: no finished results.</p>")
    parts.append("<h2 id='tables'>Tables</h2>" + "".join(
        f"<details><summary>{esc(t)}</summary><div class='scroll'>{_table_html(df)}</div></details>"
        for t, df in detail_tables(a)))
    notes = "".join(f"<li class='note'>{esc(n)}</li>" for n in a.notes) or "<li>None.</li>"
    parts.append(f"<h2 id='caveats'>Caveats and missing pieces</h2><ul>{notes}</ul>")
    parts.append(f"<h2 id='method'>Method notes</h2><p>{esc(method_note(a))}</p>{PRINT_OPENS}</body></html>")
    return "\n".join(parts)


def _findings_html(a: Analysis) -> str:
    """The paragraph, the compact factor table, per-fit words, caller sections and the published numbers."""
    esc = html.escape
    out = [f"<h2 id='findings'>Findings</h2><p>{esc(a.paragraph)}</p>"]
    regressions = regression_table(a)
    if not regressions.empty:
        out.append(f"<h3>Factors per fit</h3><div class='scroll'>{_table_html(regressions)}</div>")
    if a.fits:
        out.append("<details><summary>Each fit in words</summary><ul>"
                   + "".join(f"<li>{esc(answer(f))}</li>" for f in a.fits) + "</ul></details>")
    for title, items in a.sections:
        out.append(f"<h2>{esc(title)}</h2><ul>" + "".join(f"<li>{esc(i)}</li>" for i in items) + "</ul>")
    if not a.reference.empty:
        d = a.reference["difference"]
        out.append(f"<h2 id='reference'>Published results</h2><p>Your fine-tuned test {esc(a.metric)} beside the "
                   f"study authors' published numbers (CNN10, mean of three seeds) on {len(d)} matching cells: "
                   f"mean difference {d.mean():+.3f}, largest {d.abs().max():.3f}.</p><div class='scroll'>"
                   f"{_table_html(a.reference.set_index(['state', 'task']))}</div>")
    return "".join(out)


def render_markdown(a: Analysis, figs: list[Drawn], when: str, root: Path) -> str:
    """The Markdown summary, in the page's order."""
    lines = [f"# {a.res.name}: what transferred and why", "",
             f"Generated {when}; metric: test {a.metric}; similarity: {a.similarity}.", "", f"**{a.sentence}**", ""]
    lines += [f"![{f.title}]({f.path.relative_to(root).as_posix()})" for f in figs
              if f.key not in ("grid", "wide")] + [""]
    lines += ["## Samples vs classes vs similarity", "", "```", *a.headline, "```", "", a.paragraph, ""]
    lines += [f"- {answer(f)}" for f in a.fits] + ([""] if a.fits else [])
    for title, items in a.sections:
        lines += [f"## {title}", "", *[f"- {i}" for i in items], ""]
    lines += [advisor.render(a.advisor, "markdown")] if a.advisor else []
    for title, df in tables(a):
        lines += [f"## {title}", "", markdown_table(df), ""]
    grid = [f for f in figs if f.key in ("grid", "wide")]
    if grid:
        lines += ["## Figures", ""] + [f"![{f.title}]({f.path.relative_to(root).as_posix()})" for f in grid] + [""]
    if a.notes:
        lines += ["## Caveats and missing pieces", "", *[f"- {n}" for n in a.notes], ""]
    lines += ["## Method notes", "", method_note(a), ""]
    return "\n".join(lines)


def write_report(study_dir: str | Path, metric: str = "uar", similarity: str = DEFAULT_SIMILARITY,
                 max_inputs: int = 256, batch_size: int = 64, progress: bool = True,
                 matched: dict[str, set[str]] | None = None) -> dict[str, Any]:
    """Write `report/index.html`, `report/summary.md` and `report/summary.json` for a study directory.

    Returns {"html": Path, "markdown": Path, "json": Path, "headline": [three lines], "answer": paragraph,
    "sentence": the one-sentence answer}. `matched`: see `analyse`.
    """
    return write_analysis(analyse(study_dir, metric, similarity, max_inputs, batch_size, progress, matched))


def write_analysis(a: Analysis) -> dict[str, Any]:
    """Write the report files of an analysis (see `write_report`), with any sections a caller added."""
    root = a.res.dir.report
    root.mkdir(parents=True, exist_ok=True)
    figs = figures(a, root / "figures")
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    paths = {"html": root / "index.html", "markdown": root / "summary.md", "json": root / "summary.json"}
    paths["html"].write_text(render_html(a, figs, when), encoding="utf-8")
    paths["markdown"].write_text(render_markdown(a, figs, when, root), encoding="utf-8")
    summary = {"study": a.res.name, "metric": a.metric, "similarity": a.similarity, "headline": a.headline,
               "sentence": a.sentence, "answer": a.paragraph, "notes": a.notes, "generated": when,
               "importance": ({f: _float(a.pooled.table.loc[f, "lmg"]) for f in a.pooled.table.index}
                              if a.pooled else {}),
               "most_important": a.pooled.most_important() if a.pooled else None,
               "factors": _records(a.pooled.table.reset_index(names="factor")) if a.pooled else [],
               "regressions": _records(regression_table(a).reset_index()), "gains": _records(a.gains),
               "matched": {t: sorted(s) for t, s in a.matched.items()}, "reference": _records(a.reference),
               "scores": _records(a.scores), "data_similarity": _records(a.data_sim),
               "sections": {title: items for title, items in a.sections},
               "advisor": advisor.to_json(a.advisor) if a.advisor else None}
    paths["json"].write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return {**paths, "headline": a.headline, "answer": a.paragraph, "sentence": a.sentence}


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """A table as JSON records (NaN as null)."""
    return json.loads(df.to_json(orient="records"))


def _float(v: Any) -> float | None:
    return float(v) if v is not None and np.isfinite(v) else None
