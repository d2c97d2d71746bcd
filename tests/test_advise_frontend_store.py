"""A trained advisor candidate of another front-end reads the study's task store of its own front-end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from audiotransfer.advise.driver import Task, advise, task_for
from audiotransfer.advise.embed import Candidate
from audiotransfer.data.features import RECIPES
from audiotransfer.data.store import write_store
from audiotransfer.manifest import from_label_lists
from audiotransfer.models import create_model
from audiotransfer.training.checkpoint import save_model


def test_a_candidate_declaring_another_front_end_is_embedded_from_that_store(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    ids, labels = [f"c{i}" for i in range(24)], ["low", "high"] * 12
    clips = pd.DataFrame({"clip_id": ids, "split": "train"})
    manifest = from_label_lists("toy", clips, [[lab] for lab in labels], task_type="multiclass")
    stores = {}
    for name, signal in (("panns16k", 0.0), ("panns32k", 1.0)):  # 64 mel bands both: only the front-end differs
        feats = {
            i: rng.normal(signal * (lab == "high"), 1, (40, 64)).astype("float32")
            for i, lab in zip(ids, labels, strict=True)
        }
        stores[name] = write_store(tmp_path / name, RECIPES[name], "toy", feats)
    torch.manual_seed(0)
    model = create_model("cnn6", 5, width=0.125, n_mels=64)
    save_model(tmp_path / "m.pt", model, labels=list("vwxyz"), frontend=RECIPES["panns32k"].to_dict())
    cand = Candidate("m32", tmp_path / "m.pt")

    task = Task("toy", manifest, stores["panns16k"], 40, {RECIPES["panns32k"].hash: stores["panns32k"]})
    assert task_for(cand, task).store is stores["panns32k"]
    assert task_for(cand, Task("toy", manifest, stores["panns16k"], 40)).store is stores["panns16k"]

    def knn(t: Task, cache: str) -> float:
        return float(
            advise([cand], [t], tmp_path / cache, ["knn"], progress=False, intervals=False)
            .tables["toy"]
            .loc["m32", "knn"]
        )

    own = knn(Task("toy", manifest, stores["panns32k"], 40), "own")
    assert knn(task, "recorded") == own
    assert knn(Task("toy", manifest, stores["panns16k"], 40), "study") != own
