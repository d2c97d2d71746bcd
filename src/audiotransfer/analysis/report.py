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
from typing import Any

import numpy as np
import pandas as pd

from audiotransfer.analysis import advisor, gather, plots
from audiotransfer.analysis.factors import FACTORS, FactorFit, answer, fit_factors, headline
from audiotransfer.analysis.scores import score_table, select_metric, transfer_gain
from audiotransfer.errors import UserError

METRICS = ("uar", "accuracy", "macro_f1", "auc")
SIMILARITIES = ("frechet", "mmd", "label_share")
# Default data similarity for the factors: the Frechet distance of embeddings sees dilution (a superset
# of the task's material is less similar than the material alone), while the label share saturates at 1
# for every superset and so moves with the class count.
DEFAULT_SIMILARITY = "frechet"


@dataclass
class Analysis:
    """All numbers of a report."""

    res: gather.StudyResults
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
    sections: list[tuple[str, list[str]]] = field(default_factory=list)  # (title, lines) a caller adds
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
    table = table[table["state"] != gather.SCRATCH].merge(states[["state", "samples", "classes"]], on="state")
    if a.data_sim.empty:
        return table.assign(similarity=np.nan)
    sim = a.data_sim[["state", "task", a.similarity]].rename(columns={a.similarity: "similarity"})
    if a.similarity != "label_share":
        sim["similarity"] = -sim["similarity"]  # distances: larger means less similar
    return table.merge(sim, on=["state", "task"], how="left")


def analyse(study_dir: str | Path, metric: str = "uar", similarity: str = DEFAULT_SIMILARITY, max_inputs: int = 256,
            batch_size: int = 64, progress: bool = True) -> Analysis:
    """Compute every table of the report from a study directory."""
    if similarity not in SIMILARITIES:
        raise UserError(f"unknown similarity measure {similarity!r}", fix=f"use one of {', '.join(SIMILARITIES)}")
    res = gather.load_results(study_dir)
    metric = _metric(res.test, metric, res.notes)
    protocols = sorted(res.test["protocol"].unique(), key=lambda p: (p != "finetune", p))
    a = Analysis(res, metric, protocols, similarity, score_table(res.test, metric),
                 transfer_gain(res.test, metric))
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
    states = [s for s in dict.fromkeys(res.test["state"]) if s != gather.SCRATCH]
    missing = [s for s in states if gather.pretrained_dir(res, s) is None]
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
    if pooled:  # the first protocol's pooled fit is the headline; the others lead the per-protocol list
        a.pooled = pooled[0]
        a.fits[:0] = pooled[1:]


# ------------------------------------------------------------------------------------------------- figures
def figures(a: Analysis, out_dir: Path) -> list[tuple[str, Path]]:
    """Draw every figure the data allows; (title, png path) pairs."""
    made: list[tuple[str, Path]] = []

    def keep(title: str, fig: Any, name: str) -> None:
        made.append((title, plots.save(fig, out_dir, name)["png"]))

    data = factor_table(a)
    if not data.empty and a.protocols:
        proto = a.protocols[0]
        seeds = select_metric(a.res.test, a.metric)
        seeds = seeds[seeds["protocol"] == proto].merge(data[data["protocol"] == proto][
            ["state", "task", "samples", "classes"]], on=["state", "task"])
        summary = data[data["protocol"] == proto].merge(a.scores, on=["state", "task", "protocol"])
        for factor in ("samples", "classes"):
            keep(f"{a.metric} vs pre-training {factor} ({proto})",
                 plots.score_vs_factor(seeds, summary, factor, a.metric), f"score_vs_{factor}")
        if summary["similarity"].notna().any():
            seeds = seeds.merge(data[data["protocol"] == proto][["state", "task", "similarity"]], on=["state", "task"])
            label = f"data similarity ({a.similarity}{'' if a.similarity == 'label_share' else ', negated'})"
            keep(f"{a.metric} vs {label} ({proto})",
                 plots.score_vs_factor(seeds, summary, "similarity", a.metric, log=False, label=label),
                 "score_vs_similarity")
    if a.gains["gain"].notna().any():
        for proto in a.protocols:
            g = a.gains[a.gains["protocol"] == proto]
            if g["gain"].notna().any():
                keep(f"Transfer gain over scratch ({proto})", plots.transfer_gain(g, a.metric),
                     f"gain_{proto.replace(':', '-')}")
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
def _cell(mean: float, low: float, high: float, n: int) -> str:
    if not np.isfinite(mean):
        return "n/a"
    ci = f" [{low:.3f}, {high:.3f}]" if np.isfinite(low) else " [n/a]"
    return f"{mean:.3f}{ci} (n={n})"


def tables(a: Analysis) -> list[tuple[str, pd.DataFrame]]:
    """The report's tables, titled, ready to render."""
    out: list[tuple[str, pd.DataFrame]] = []
    for proto in a.protocols:
        s = a.scores[a.scores["protocol"] == proto]
        cells = s.assign(cell=[_cell(r.mean, r.ci_low, r.ci_high, r.n_seeds) for r in s.itertuples()])
        out.append((f"Test {a.metric}: mean [95% CI] over seeds ({proto})",
                    cells.pivot(index="state", columns="task", values="cell")))
        g = a.gains[a.gains["protocol"] == proto]
        if not g.empty:
            g = g.assign(cell=[(f"{r.gain:+.3f} [{r.ci_low:+.3f}, {r.ci_high:+.3f}] {r.method}"
                                if np.isfinite(r.ci_low) else (f"{r.gain:+.3f} [n/a]" if np.isfinite(r.gain)
                                                               else "n/a")) for r in g.itertuples()])
            out.append((f"Transfer gain over scratch ({proto})", g.pivot(index="state", columns="task",
                                                                          values="cell")))
    for fit in ([a.pooled] if a.pooled else []) + a.fits:
        t = fit.table.copy()
        t["lmg_share"] = fit.shares()
        out.append((f"Factors: {fit.label} (n={fit.n_states} {fit.unit}, {fit.r2_text()})", t))
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
        if not np.isfinite(v):
            return "n/a"
        return f"{v:.3g}" if abs(v) >= 1000 or (0 < abs(v) < 0.001) else f"{v:.3f}"
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
            "intervals are paired by seed when seeds match, Welch otherwise.")


STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;font-size:13px;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 7px}
th{background:#f3f3f3}pre{background:#f7f7f7;padding:.8em;white-space:pre-wrap}.note{color:#8a4b00}
img{max-width:100%}figure{margin:1em 0}"""


def render_html(a: Analysis, figs: list[tuple[str, Path]], when: str) -> str:
    esc = html.escape
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{esc(a.res.name)}: transfer "
             f"report</title><style>{STYLE}</style></head><body>",
             f"<h1>{esc(a.res.name)}: what transferred and why</h1>",
             f"<p>Generated {esc(when)} from <code>{esc(str(a.res.study_dir))}</code>; metric: test "
             f"{esc(a.metric)}; similarity: {esc(a.similarity)}.</p>", f"<p>{esc(method_note(a))}</p>",
             "<h2>Samples vs classes vs similarity</h2>", f"<pre>{esc(chr(10).join(a.headline))}</pre>",
             f"<p>{esc(a.paragraph)}</p>"]
    if len(a.fits) > 0:
        parts.append("<h3>Per task</h3><ul>" + "".join(f"<li>{esc(answer(f))}</li>" for f in a.fits) + "</ul>")
    for title, items in a.sections:
        parts.append(f"<h2>{esc(title)}</h2><ul>" + "".join(f"<li>{esc(i)}</li>" for i in items) + "</ul>")
    parts.append(advisor.render(a.advisor, "html") if a.advisor else "")
    if a.notes:
        items = "".join(f"<li class='note'>{esc(n)}</li>" for n in a.notes)
        parts.append(f"<h2>Caveats and missing pieces</h2><ul>{items}</ul>")
    parts.append("<h2>Figures</h2>" if figs else "<h2>Figures</h2><p>No figures: no finished results.</p>")
    for title, png in figs:
        data = base64.b64encode(png.read_bytes()).decode()
        parts.append(f"<figure><img alt='{esc(title)}' src='data:image/png;base64,{data}'>"
                     f"<figcaption>{esc(title)}</figcaption></figure>")
    parts.append("<h2>Tables</h2>")
    for title, df in tables(a):
        parts.append(f"<h3>{esc(title)}</h3>" + df.to_html(na_rep="n/a", float_format=_fmt, border=0))
    parts.append("</body></html>")
    return "\n".join(parts)


def render_markdown(a: Analysis, figs: list[tuple[str, Path]], when: str, root: Path) -> str:
    lines = [f"# {a.res.name}: what transferred and why", "",
             f"Generated {when}; metric: test {a.metric}; similarity: {a.similarity}.", "", method_note(a), "",
             "## Samples vs classes vs similarity", "", "```", *a.headline, "```", "", a.paragraph, ""]
    lines += [f"- {answer(f)}" for f in a.fits] + ([""] if a.fits else [])
    for title, items in a.sections:
        lines += [f"## {title}", "", *[f"- {i}" for i in items], ""]
    lines += [advisor.render(a.advisor, "markdown")] if a.advisor else []
    if a.notes:
        lines += ["## Caveats and missing pieces", "", *[f"- {n}" for n in a.notes], ""]
    for title, df in tables(a):
        lines += [f"## {title}", "", markdown_table(df), ""]
    if figs:
        lines += ["## Figures", ""] + [f"![{t}]({p.relative_to(root).as_posix()})" for t, p in figs] + [""]
    return "\n".join(lines)


def write_report(study_dir: str | Path, metric: str = "uar", similarity: str = DEFAULT_SIMILARITY,
                 max_inputs: int = 256, batch_size: int = 64, progress: bool = True) -> dict[str, Any]:
    """Write `report/index.html`, `report/summary.md` and `report/summary.json` for a study directory.

    Returns {"html": Path, "markdown": Path, "json": Path, "headline": [three lines], "answer": paragraph}.
    """
    return write_analysis(analyse(study_dir, metric, similarity, max_inputs, batch_size, progress))


def write_analysis(a: Analysis) -> dict[str, Any]:
    """Write the report files of an analysis (see `write_report`), with any sections a caller added."""
    root = a.res.study_dir / "report"
    root.mkdir(parents=True, exist_ok=True)
    figs = figures(a, root / "figures")
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    paths = {"html": root / "index.html", "markdown": root / "summary.md", "json": root / "summary.json"}
    paths["html"].write_text(render_html(a, figs, when), encoding="utf-8")
    paths["markdown"].write_text(render_markdown(a, figs, when, root), encoding="utf-8")
    summary = {"study": a.res.name, "metric": a.metric, "similarity": a.similarity, "headline": a.headline,
               "answer": a.paragraph, "notes": a.notes, "generated": when,
               "importance": ({f: _float(a.pooled.table.loc[f, "lmg"]) for f in a.pooled.table.index}
                              if a.pooled else {}),
               "most_important": a.pooled.most_important() if a.pooled else None,
               "factors": _records(a.pooled.table.reset_index(names="factor")) if a.pooled else [],
               "scores": _records(a.scores), "data_similarity": _records(a.data_sim),
               "sections": {title: items for title, items in a.sections},
               "advisor": advisor.to_json(a.advisor) if a.advisor else None}
    paths["json"].write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return {**paths, "headline": a.headline, "answer": a.paragraph}


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """A table as JSON records (NaN as null)."""
    return json.loads(df.to_json(orient="records"))


def _float(v: Any) -> float | None:
    return float(v) if v is not None and np.isfinite(v) else None
