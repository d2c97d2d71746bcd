"""The report's figures: each drawn once as PNG + SVG, keyed by where the page puts it.

Adding a figure: draw it in `figures` (first screen, keyed) or `_detail_figures` (the grid) with `keep`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

import audiotransfer.analysis.advisor_plots as advisor_plots
import audiotransfer.analysis.gather as gather
import audiotransfer.analysis.overview as overview
import audiotransfer.analysis.plots as plots
from audiotransfer.analysis.analyse import Analysis, factor_table
from audiotransfer.analysis.scores import metric_range, select_metric


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
            keep(
                f"heat:{proto}",
                f"Transfer gain over scratch ({proto})",
                advisor_plots.mark_advisor(heat, g, a.advisor, proto),
                f"gain_{proto.replace(':', '-')}",
            )
    if any(np.isfinite(f.table["coef"]).any() for f in a.pooled_fits.values()):
        keep("forest", "Pooled factor effects per protocol (95% CI)", overview.forest(a.pooled_fits), "forest")
    if a.ontology is not None and a.categories:
        for proto in a.protocols:
            g = a.gains[a.gains["protocol"] == proto]
            if g["gain"].notna().any():
                keep(
                    f"ontology:{proto}",
                    f"Ontology view: gain of the state built from each category ({proto})",
                    overview.ontology_tree(a.ontology, a.categories, g, a.metric, a.full_state, a.matched),
                    f"ontology_{proto.replace(':', '-')}",
                )
    made += _detail_figures(a, out_dir)
    return made


def _detail_figures(a: Analysis, out_dir: Path) -> list[Drawn]:
    made: list[Drawn] = []

    def keep(title: str, fig: Any, name: str) -> None:
        wide = fig.get_figwidth() > 1.8 * fig.get_figheight()  # multi-panel figures take a whole grid row
        made.append(Drawn("wide" if wide else "grid", title, plots.save(fig, out_dir, name)["png"]))

    data = factor_table(a.scores, a.res.states, a.data_sim, a.similarity)
    if not data.empty and a.protocols:
        proto, bounds = a.protocols[0], metric_range(a.metric)
        seeds = select_metric(a.res.test, a.metric)
        seeds = seeds[seeds["protocol"] == proto].merge(
            data[data["protocol"] == proto][["state", "task", "samples", "classes"]], on=["state", "task"]
        )
        summary = data[data["protocol"] == proto].merge(a.scores, on=["state", "task", "protocol"])
        for factor in ("samples", "classes"):
            keep(
                f"{a.metric} vs pre-training {factor} ({proto})",
                plots.score_vs_factor(seeds, summary, factor, a.metric, bounds=bounds),
                f"score_vs_{factor}",
            )
        if summary["similarity"].notna().any():
            seeds = seeds.merge(data[data["protocol"] == proto][["state", "task", "similarity"]], on=["state", "task"])
            label = f"data similarity ({a.similarity}{'' if a.similarity == 'label_share' else ', negated'})"
            keep(
                f"{a.metric} vs {label} ({proto})",
                plots.score_vs_factor(seeds, summary, "similarity", a.metric, log=False, label=label, bounds=bounds),
                "score_vs_similarity",
            )
    scatter = (
        advisor_plots.score_scatter(a.advisor, a.scores, a.protocols[0], a.metric)
        if (a.advisor and not a.advisor.cells.empty and a.protocols)
        else None
    )
    if scatter is not None:
        keep(
            f"The advisor's score vs the fine-tuned {a.metric} per state ({a.protocols[0]})", scatter, "advisor_scatter"
        )
    if not a.weights.empty:
        keep(
            "Weight distance (1 - cosine, first convolution)",
            plots.heatmap(a.weights, "1 - cos(first conv weights)", "magma", "{:.2g}"),
            "weight_distance",
        )
    if not a.data_sim.empty:
        for col, title in (
            ("label_share", "Label share (tagger top-1 in subset labels)"),
            ("frechet", "Frechet distance of embeddings"),
        ):
            mat = a.data_sim.pivot(index="state", columns="task", values=col)
            if mat.notna().any().any():
                keep(
                    title,
                    plots.heatmap(
                        mat,
                        title,
                        "viridis" if col == "label_share" else "magma_r",
                        "{:.2f}" if col == "label_share" else "{:.0f}",
                    ),
                    f"data_{col}",
                )
    for task, long in a.cka.items():
        between = cka_between(long)
        if not between.empty:
            keep(
                f"CKA between pre-trained states on {task} ({between.attrs['block']})",
                plots.heatmap(between, f"linear CKA, {between.attrs['block']}, {task}"),
                f"cka_{task}",
            )
        kept = cka_kept(long)
        if not kept.empty:
            keep(
                f"CKA per layer before vs after fine-tuning on {task}",
                plots.cka_layers(kept, f"CKA(pre-trained, fine-tuned) on {task}"),
                f"cka_layers_{task}",
            )
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
