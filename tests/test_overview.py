"""The first screen's and the ontology view's figures on known inputs (the paper's states, real ontology)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from audiotransfer.analysis.overview import _tree_rows, excludes_zero, gain_heatmap, node_states, ontology_tree

SUBSETS = Path(__file__).resolve().parents[1] / "examples" / "subsets" / "paper.yaml"


@pytest.fixture(scope="module")
def paper(audioset_dir):
    from audiotransfer.ontology import Ontology

    onto = Ontology.load(audioset_dir / "ontology.json", audioset_dir / "class_labels_indices.csv")
    subsets = yaml.safe_load(SUBSETS.read_text())["subsets"]
    return onto, {s: f["categories"] for s, f in subsets.items() if "categories" in f}


def test_tree_holds_every_root_and_each_named_category_under_its_root(paper):
    onto, categories = paper
    rows = _tree_rows(onto, [onto.resolve(c) for cats in categories.values() for c in cats])
    names = [(depth, onto.name(cid)) for depth, cid in rows]
    assert {n for d, n in names if d == 0} == {onto.name(r) for r in onto.roots}
    speech = names.index((2, "Speech"))
    assert names[speech - 2 : speech] == [(0, "Human sounds"), (1, "Human voice")]  # the path from its root
    assert len(names) == len(onto.roots) + 2  # nothing else: named categories are roots, or Speech + its parent
    owner = {onto.name(c): s for c, s in node_states(categories, onto).items()}
    assert owner == {
        "Human sounds": "human",
        "Speech": "speech",
        "Animal": "animal",
        "Natural sounds": "natural",
        "Sounds of things": "things",
    }  # the single-category state, not the unions


def test_ontology_view_colours_nodes_by_their_states_gain(paper):
    onto, categories = paper
    gains = pd.DataFrame(
        [
            dict(state=s, task=t, gain=g)
            for t in ("scenes", "birds")
            for s, g in (("human", 0.01), ("animal", 0.05), ("things", -0.02), ("full", 0.03))
        ]
    )
    fig = ontology_tree(onto, categories, gains, "uar", full_state="full", matched={"birds": {"animal"}})
    texts = [t.get_text() for t in fig.axes[1].texts]
    assert "AudioSet (all classes)  +0.030 (full)" in texts and "Animal  +0.050 (animal)" in texts
    assert "Natural sounds" in texts  # a named category without a gain: grey, no number
    edges = {t.get_text(): t.get_bbox_patch().get_edgecolor() for t in fig.axes[0].texts}
    assert edges["Animal  +0.050 (animal)"] != edges["Human sounds  +0.010 (human)"]  # matched state outlined


def test_heat_map_marks_clear_cells_and_says_too_few_seeds():
    gains = pd.DataFrame(
        {
            "state": ["a", "b", "c"],
            "task": "t",
            "gain": [0.05, 0.01, 0.02],
            "ci_low": [0.01, -0.02, np.nan],
            "ci_high": [0.09, 0.04, np.nan],
        }
    )
    texts = [t.get_text() for t in gain_heatmap(gains, "uar", "finetune").axes[0].texts]
    assert texts == ["+0.050 *", "[+0.010, +0.090]", "+0.010", "[-0.020, +0.040]", "+0.020", "too few seeds"]
    assert excludes_zero(-0.03, -0.01) and not excludes_zero(-0.01, 0.01) and not excludes_zero(np.nan, 1)
