"""Which ontology categories does a task resemble? A tagger's label mass, aggregated up the ontology.

A tagger trained on the whole label set scores each of the task's clips; each clip gives one unit of mass
to its top-1 label (or, `soft`, spreads it over its normalised sigmoid scores), the mass is averaged over
clips, and every class passes its mass on to each of its ancestors (a class with two parents gives its
mass to both lines). The categories at one depth holding the most mass are what the task most resembles;
`subset_spec` writes them as a subset spec that `audiotransfer subsets build` reads unchanged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from audiotransfer.errors import UserError


def tagger_labels(path: Path, num_outputs: int, onto: Any) -> list[str]:
    """The tagger's output labels as AudioSet ids: from its `model.pt` metadata, or the ontology's trainable
    label order for a PANNs / autrainer file with that many outputs; UserError naming the file otherwise."""
    import torch

    file = path / "model.pt" if path.is_dir() else path
    try:
        obj = torch.load(file, map_location="cpu", weights_only=True)
    except Exception:
        obj = {}
    labels = list(obj.get("labels") or []) if isinstance(obj, dict) else []
    if not labels and num_outputs == len(onto.trainable):
        labels = list(onto.trainable)
    if len(labels) != num_outputs:
        raise UserError(
            f"tagger {file}: its {num_outputs} outputs carry no label list and do not match the "
            f"ontology's {len(onto.trainable)} trainable classes",
            fix="use a state pre-trained on the whole label set (its model.pt lists its labels)",
        )
    known = {c for c in labels if c in onto}
    if len(known) < len(labels):
        bad = [lab for lab in labels if lab not in known][:5]
        raise UserError(
            f"tagger {file}: {len(labels) - len(known)} of its {len(labels)} labels are not AudioSet "
            f"ids of the ontology (e.g. {', '.join(map(repr, bad))})",
            fix="use a tagger trained on AudioSet labels, with the matching --metadata ontology",
        )
    return labels


def label_mass(logits: np.ndarray, labels: list[str], soft: bool = False) -> pd.Series:
    """Per label, the share of clips whose top-1 label it is (sums to 1). With `soft`, the mean of each clip's
    sigmoid scores normalised to sum to one instead: smoother, but every label's base rate adds mass, so
    categories with many labels gain mass whatever the task (on the demo this puts Human sounds first
    everywhere); top-1 needs no calibration, as the report's label share."""
    x = np.asarray(logits, dtype=np.float64)
    if soft:
        p = 1.0 / (1.0 + np.exp(-x))
        p /= p.sum(axis=1, keepdims=True)
    else:
        p = np.zeros_like(x)
        p[np.arange(len(x)), x.argmax(axis=1)] = 1.0
    return pd.Series(p.mean(axis=0), index=labels)


def category_mass(mass: pd.Series, onto: Any) -> pd.Series:
    """Mass of every class: its own label mass plus that of all its descendants with labels."""
    total: dict[str, float] = {}
    for label, value in mass.items():
        for cid in {label, *onto.ancestors(label)}:
            total[cid] = total.get(cid, 0.0) + float(value)
    return pd.Series(total).sort_values(ascending=False)


def top_categories(cmass: pd.Series, onto: Any, level: int = 0, cover: float = 0.5, most: int = 3) -> pd.DataFrame:
    """The classes at depth `level` by mass, with share and cumulative share; `chosen` marks the fewest
    (at most `most`) whose cumulative share reaches `cover`."""
    at = cmass[[onto.depth(c) == level for c in cmass.index]].sort_values(ascending=False)
    if at.empty:
        raise UserError(f"no ontology class at depth {level} received mass", fix="use a smaller --level")
    share = at / at.sum()
    cumulative = share.cumsum()
    reached = int(np.searchsorted(cumulative.to_numpy(), cover - 1e-12)) + 1
    chosen = np.arange(len(at)) < min(reached, most)
    return pd.DataFrame(
        {
            "category": [onto.name(c) for c in at.index],
            "mass": at.to_numpy(),
            "share": share.to_numpy(),
            "cumulative": cumulative.to_numpy(),
            "chosen": chosen,
        },
        index=at.index.rename("id"),
    )


def subset_spec(task: str, table: pd.DataFrame, budget: int | None, seed: int = 0) -> dict[str, Any]:
    """A subset spec file (dict) pre-training on the chosen categories at a clip budget."""
    names = list(table.loc[table["chosen"], "category"])
    spec: dict[str, Any] = {
        "description": f"the categories '{task}' most resembles ({', '.join(names)}; "
        f"{table.loc[table['chosen'], 'share'].sum():.0%} of its tagger mass at this level)",
        "categories": names,
        "seed": seed,
    }
    if budget is not None:
        spec["num_samples"] = int(budget)
    return {"subsets": {f"like_{task}": spec}}


def write_spec(spec: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path
