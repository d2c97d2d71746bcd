"""Linear centred kernel alignment (CKA) between layer representations.

`linear_cka` is the reference definition (Kornblith et al. 2019) on two full activation matrices.
`MinibatchCKA` is the scalable estimator (Nguyen et al. 2021): the unbiased HSIC estimator (Song et al.
2012) is averaged over minibatches of inputs (weighted by their size), so memory grows with the minibatch,
not with the number of inputs, and every pair of representations is scored from one pass over the inputs.
Each minibatch's Gram matrices are U-centred once per representation; the HSIC of every pair is then one
inner product, so adding a state costs one forward pass and one Gram matrix, not one pass per pair.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear CKA of two representations (n, p) and (n, q) of the same n inputs, in [0, 1]."""
    x = _centre(np.asarray(x, dtype=np.float64))
    y = _centre(np.asarray(y, dtype=np.float64))
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"representations have {x.shape[0]} and {y.shape[0]} rows; need the same inputs")
    cross = np.linalg.norm(y.T @ x) ** 2
    denom = np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)
    return float(cross / denom) if denom > 0 else float("nan")


def _centre(x: np.ndarray) -> np.ndarray:
    if x.ndim != 2:
        raise ValueError(f"a representation must be 2-D (inputs, features); got shape {x.shape}")
    return x - x.mean(axis=0, keepdims=True)


def u_centred_gram(x: np.ndarray) -> np.ndarray:
    """The U-centred linear Gram matrix of x (m, p), m >= 4: its inner products are unbiased HSICs.

    With K = x x^T and a zero diagonal, U_ij = K_ij - r_i/(m-2) - r_j/(m-2) + s/((m-1)(m-2)) off the
    diagonal (r: row sums, s: total), 0 on it; <U_K, U_L> / (m(m-3)) is the unbiased HSIC of Song et al.
    """
    x = np.asarray(x, dtype=np.float64)
    m = x.shape[0]
    if m < 4:
        raise ValueError(f"the unbiased HSIC needs at least 4 inputs per minibatch; got {m}")
    gram = x @ x.T
    np.fill_diagonal(gram, 0.0)
    rows = gram.sum(axis=1)
    total = rows.sum()
    gram -= rows[:, None] / (m - 2)
    gram -= rows[None, :] / (m - 2)
    gram += total / ((m - 1) * (m - 2))
    np.fill_diagonal(gram, 0.0)
    return gram


class MinibatchCKA:
    """Accumulates unbiased HSIC between every pair of representations over minibatches of inputs.

    Call `update({key: {block: (m, C) array}})` once per minibatch with every model's activations on the
    same m inputs; `matrix(block)` then returns the CKA between all keys at that block, and `value(a, b,
    block_a, block_b)` one entry. Keys are models (e.g. pre-trained states and fine-tuned runs).
    """

    def __init__(self) -> None:
        self._hsic: dict[str, np.ndarray] = {}
        self._keys: dict[str, list[str]] = {}
        self.num_inputs = 0
        self.num_batches = 0

    def update(self, activations: Mapping[str, Mapping[str, Any]]) -> None:
        """Add one minibatch: `activations[key][block]` is (m, C) for the same m inputs for every key."""
        by_block: dict[str, dict[str, np.ndarray]] = {}
        m = None
        for key, blocks in activations.items():
            for block, act in blocks.items():
                arr = _as_numpy(act).reshape(len(act), -1)
                if m is None:
                    m = arr.shape[0]
                elif arr.shape[0] != m:
                    raise ValueError(f"{key}/{block} has {arr.shape[0]} inputs; the minibatch has {m}")
                by_block.setdefault(block, {})[str(key)] = arr
        if m is None:
            return
        for block, reps in by_block.items():
            keys = self._keys.setdefault(block, sorted(reps))
            if sorted(reps) != keys:
                raise ValueError(f"block {block}: minibatch keys {sorted(reps)} differ from earlier {keys}")
            stacked = np.stack([u_centred_gram(reps[k]).ravel() for k in keys])
            hsic = stacked @ stacked.T / (m * (m - 3))
            self._hsic[block] = self._hsic.get(block, 0.0) + m * hsic  # weighted by minibatch size
        self.num_inputs += m
        self.num_batches += 1

    @property
    def blocks(self) -> list[str]:
        return list(self._hsic)

    def matrix(self, block: str) -> pd.DataFrame:
        """CKA between all keys at `block` (symmetric, 1 on the diagonal), as a labelled DataFrame."""
        if block not in self._hsic:
            raise KeyError(f"no activations for block {block!r}; have {self.blocks}")
        hsic = self._hsic[block] / self.num_inputs
        diag = np.sqrt(np.clip(np.diag(hsic), 0.0, None))
        with np.errstate(divide="ignore", invalid="ignore"):
            cka = hsic / np.outer(diag, diag)
        keys = self._keys[block]
        return pd.DataFrame(cka, index=keys, columns=keys)

    def long(self) -> pd.DataFrame:
        """Every (block, a, b) CKA value with a < b, as a long table."""
        rows = []
        for block in self.blocks:
            mat = self.matrix(block)
            keys = list(mat.index)
            for i, a in enumerate(keys):
                for b in keys[i + 1 :]:
                    rows.append({"block": block, "a": a, "b": b, "cka": float(mat.loc[a, b])})
        return pd.DataFrame(rows, columns=["block", "a", "b", "cka"])


def _as_numpy(act: Any) -> np.ndarray:
    if hasattr(act, "detach"):
        act = act.detach().cpu().numpy()
    return np.asarray(act, dtype=np.float64)


def model_cka(
    models: Mapping[str, Any],
    batches: Iterable[Any],
    blocks: list[str] | None = None,
    progress: bool = True,
    total: int | None = None,
) -> MinibatchCKA:
    """CKA between every pair of `models` (name -> AudioCNN) at each block, on the input minibatches.

    Each model's activations are computed once per minibatch (`AudioCNN.activations`), never per pair.
    Minibatches (B, T, M) of at least 4 inputs; a trailing one smaller than 4 is skipped.
    """
    import torch

    from audiotransfer.progress import progress as show_progress

    acc = MinibatchCKA()
    for model in models.values():
        model.eval()
    for batch in show_progress(batches, desc="CKA", unit="batch", total=total, enabled=progress):
        x = torch.as_tensor(np.asarray(batch, dtype=np.float32))
        if len(x) < 4:
            continue
        with torch.inference_mode():
            acts = {name: model.activations(x, names=blocks) for name, model in models.items()}
        acc.update(acts)
    return acc
