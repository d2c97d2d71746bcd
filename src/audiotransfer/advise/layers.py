"""The multi-layer option: an estimator over several layers of one candidate, the layer chosen by its score.

A transformer's or a deep CNN's last layer is not always its most transferable one. Every named stage of
the candidate (`model.block_names`: each conv block, globally mean-pooled, and the embedding) is taken from
one forward pass over the task's labelled clips, scored whole as the advisor's embeddings are (window
outputs averaged per clip), cached beside them; the estimator scores each layer and the candidate's score
is its best layer's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import audiotransfer.advise.rank as rank
from audiotransfer.advise.embed import Candidate, labelled_rows, load_candidate, weights_hash
from audiotransfer.errors import UserError
from audiotransfer.files import write_atomic


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
            return {k: data[k] for k in data.files}
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
    return out


def best_layer(name: str, layers: dict[str, np.ndarray], y: np.ndarray, candidate: str = "") -> LayerScore:
    """`name` (a single-candidate estimator reading embeddings) on every layer; the best layer wins."""
    if name not in rank.ESTIMATORS or name in ("leep", "nce"):
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
