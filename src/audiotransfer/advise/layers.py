"""The multi-layer option: an estimator over several layers of one candidate, the layer chosen by its score.

A transformer's or a deep CNN's last layer is not always its most transferable one. Every named stage of
the candidate (`model.block_names`: each conv block, globally mean-pooled, and the embedding) is taken from
one forward pass over the task's labelled clips, scored whole as the advisor's embeddings are (window
outputs averaged per clip), cached beside them; the estimator scores each layer and the candidate's score
is its best layer's.

`advise --layers all|K,L,...` (`views` + `score`): a CNN's layer K is `conv_blockK`, a public model's its
hidden state K (0 = the input to the first layer); the candidate's usual embedding (a CNN's `embedding`, a
public model's last or `@K` layer) is always one of them, so the option never scores a candidate lower. Each
estimator that reads embeddings picks its own best layer; LEEP and NCE read the head, and the pooled ones
(NCTI, the ensemble) and the bootstrap interval read every candidate at the default estimator's layer.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import audiotransfer.advise.public as public
import audiotransfer.advise.rank as rank
from audiotransfer.advise.embed import Candidate, labelled_rows, load_candidate, weights_hash
from audiotransfer.errors import UserError
from audiotransfer.files import write_atomic
from audiotransfer.models.public.hearapi import is_hear_format


@dataclass
class LayerScore:
    """One candidate's estimator score per layer, and the chosen (best) layer."""

    candidate: str
    estimator: str
    scores: pd.Series  # layer -> score (NaN where the estimator skipped it)

    @property
    def layer(self) -> str:
        return str(self.scores.idxmax())

    @property
    def score(self) -> float:
        return float(self.scores.max())


def layer_embeddings(
    candidate: Candidate, manifest: Any, store: Any, frames: int, cache_dir: Path, batch_size: int = 64
) -> dict[str, np.ndarray]:
    """Per named stage of the candidate, its (clips, channels) activations of the task's labelled clips."""
    import torch

    from audiotransfer.data.loader import BatchLoader, clip_outputs

    path = Path(cache_dir) / f"{weights_hash(candidate)[:16]}-{manifest.hash[:16]}-{frames}-layers.npz"
    if path.exists():
        with np.load(path) as data:
            return {k: data[k] for k in data.files} | {"_cached": np.array(True)}
    model = load_candidate(candidate)
    names = list(model.block_names)
    loader = BatchLoader(manifest.take(labelled_rows(manifest)), store, batch_size, frames, crop="whole", shuffle=False)
    widths: list[int] = []

    def stacked(x: Any) -> Any:
        acts = model.activations(x, names)
        widths[:] = [acts[n].shape[1] for n in names]
        return torch.cat([acts[n].float() for n in names], dim=1)

    start = time.perf_counter()
    with torch.inference_mode():
        flat = clip_outputs(loader, stacked).numpy().astype(np.float64)
    bounds = np.cumsum([0, *widths])
    out = {n: flat[:, bounds[i] : bounds[i + 1]] for i, n in enumerate(names)}
    out["_seconds"] = np.array(time.perf_counter() - start)

    def save(tmp: Path) -> None:
        with tmp.open("wb") as fh:
            np.savez(fh, **out)  # type: ignore[arg-type]  # numpy stubs type ** as its keyword flags

    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, save)
    return out | {"_cached": np.array(False)}


def best_layer(name: str, layers: dict[str, np.ndarray], y: np.ndarray, candidate: str = "") -> LayerScore:
    """`name` (a single-candidate estimator reading embeddings) on every layer; the best layer wins."""
    if name not in rank.ESTIMATORS or name in rank.HEAD:
        raise UserError(
            f"the multi-layer option needs an estimator that reads embeddings, not {name}",
            fix="use e.g. knn, logme, hscore, sfda or gbc",
        )
    scores = {}
    for layer, emb in layers.items():
        if layer.startswith("_"):
            continue
        try:
            scores[layer] = float(rank.ESTIMATORS[name](rank.Inputs(emb, np.zeros((len(y), 1)), y)))
        except (UserError, ValueError, np.linalg.LinAlgError):
            scores[layer] = np.nan
    series = pd.Series(scores, dtype=float)
    if series.isna().all():
        raise UserError(f"{name} could not score any layer of candidate '{candidate}'", fix="check its embeddings")
    return LayerScore(candidate, name, series)


def parse_spec(text: str) -> list[int] | None:
    """`--layers`: None for `all`, else the layer numbers K,L,...; UserError otherwise."""
    if text.strip() == "all":
        return None
    try:
        picked = [int(k) for k in text.split(",")]
    except ValueError:
        picked = [-1]
    if any(k < 0 for k in picked):
        raise UserError(f"--layers {text!r} is neither 'all' nor layer numbers", fix="write --layers all or 2,3,4")
    return picked


def usual(candidate: Candidate) -> str:
    """The label of the candidate's usual embedding among its layers."""
    if not public.is_public(candidate):
        return "embedding"
    return "last" if candidate.layer is None else str(candidate.layer)


@dataclass
class View:
    """One candidate's clip embeddings per layer label, what they cost, and the forward passes run."""

    layers: dict[str, np.ndarray]
    usual: str  # the label of its usual embedding
    seconds: float
    passes: int


def views(
    candidate: Candidate,
    manifest: Any,
    store: Any,
    frames: int,
    cache_dir: Path,
    spec: list[int] | None,
    progress: bool = True,
) -> View:
    """The candidate's embeddings at the `spec` layers (None: all) and its usual one, from the caches or one
    pass; UserError for a layer it has not."""
    if not public.is_public(candidate):
        stages = layer_embeddings(candidate, manifest, store, frames, cache_dir)
        names = [k for k in stages if not k.startswith("_")]
        wanted = names if spec is None else [f"conv_block{k}" for k in spec] + ["embedding"]
        missing = [w for w in wanted if w not in stages]
        if missing:
            raise UserError(
                f"candidate '{candidate.name}' has no {', '.join(missing)}", fix=f"its stages: {', '.join(names)}"
            )
        passes = 0 if bool(stages["_cached"]) else 1
        return View({w: stages[w] for w in dict.fromkeys(wanted)}, "embedding", float(stages["_seconds"]), passes)
    picked = _public_layers(candidate, spec)
    rows = manifest.take(labelled_rows(manifest))
    out, seconds, cached = {}, 0.0, []
    for layer in picked:  # the first call embeds every picked layer in one pass; the others read its cache
        got = public.embed_public(dataclasses.replace(candidate, layer=layer), rows, cache_dir, picked, progress)
        out["last" if layer is None else str(layer)] = got.embeddings
        seconds += got.seconds
        cached.append(got.cached)
    return View(out, usual(candidate), seconds, int(not all(cached)))


def _public_layers(candidate: Candidate, spec: list[int] | None) -> list[int | None]:
    """A public candidate's layers: its usual one first, then `spec` (None: every hidden state)."""
    if candidate.layer is not None or is_hear_format(candidate.source):
        return [candidate.layer]  # a chosen @K layer stays; the HEAR API has no layers
    if spec is None:
        from audiotransfer.models.public import load_public

        spec = list(range(load_public(candidate.path, candidate.source).num_layers))
    return list(dict.fromkeys([None, *spec]))


def score(
    views: dict[str, View], inputs: dict[str, rank.Inputs], names: list[str], default: str
) -> tuple[pd.DataFrame, dict[str, rank.Inputs], dict[str, str]]:
    """The advisor's long table over several layers (plus a `layer` column: the layer each score came
    from), the inputs at the layer the default estimator chose (its usual one when the default reads no
    layers), which the pooled estimators and the interval read, and that layer per candidate."""
    multi = [
        n
        for n in rank.ESTIMATORS
        if n not in rank.HEAD and (n in names or ("ensemble" in names and n in rank.ENSEMBLE))
    ]
    rows, at, chosen = [], dict(inputs), {}
    for cand, view in views.items():
        picks = {}
        for name in multi:
            start = time.perf_counter()
            try:
                got = best_layer(name, view.layers, inputs[cand].y, cand)
                value, note, picks[name] = got.score, "", got.layer
            except UserError as exc:
                value, note = np.nan, exc.message
            rows.append(
                dict(
                    candidate=cand,
                    estimator=name,
                    score=value,
                    seconds=time.perf_counter() - start,
                    note=note,
                    layer=picks.get(name, ""),
                )
            )
        chosen[cand] = picks.get(default, view.usual)
        at[cand] = rank.Inputs(view.layers[chosen[cand]], inputs[cand].logits, inputs[cand].y)
    rest = [n for n in names if n in rank.HEAD or n == "ncti"]
    parts = [pd.DataFrame(rows), rank.score(at, rest).assign(layer="") if rest else pd.DataFrame()]
    long = pd.concat([p for p in parts if not p.empty], ignore_index=True)
    if "ensemble" in names:
        long = pd.concat([long, rank.ensemble(long).assign(layer="")], ignore_index=True)
    keep = long["estimator"].isin(names)
    return long[keep].reset_index(drop=True), at, chosen


def all_winners(long: pd.DataFrame) -> dict[str, dict[str, str]]:
    """Per candidate, per estimator that chose a layer, the layer it chose."""
    rows = long[long["layer"].fillna("") != ""]
    return {str(c): dict(zip(p["estimator"], p["layer"], strict=True)) for c, p in rows.groupby("candidate")}
