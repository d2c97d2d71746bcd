"""ESC-50: 2,000 five-second clips in 50 classes over five folds (`meta/esc50.csv`, `audio/*.wav`).

One fold is the test split (5 by default), another the dev split (by default the fold before it).
"""

from __future__ import annotations

from pathlib import Path

from audiotransfer.data.corpora._common import check_values, read_table, require, single_label_manifest
from audiotransfer.errors import UserError
from audiotransfer.manifest import Manifest

LAYOUT = "meta/esc50.csv (filename, fold, target, category, esc10, src_file, take) and audio/*.wav"
FOLDS = ["1", "2", "3", "4", "5"]


def load(root: Path, test_fold: int = 5, dev_fold: int | None = None) -> Manifest:
    """ESC-50 under `root`; `dev_fold` defaults to the fold before `test_fold`."""
    dev_fold = dev_fold if dev_fold is not None else (test_fold - 2) % 5 + 1
    if {test_fold, dev_fold} - {1, 2, 3, 4, 5} or test_fold == dev_fold:
        raise UserError(f"test_fold {test_fold}, dev_fold {dev_fold}", fix="use two different folds in 1..5")
    require(root / "audio", "audio folder", LAYOUT)
    path = root / "meta" / "esc50.csv"
    table = read_table(path, ["filename", "fold", "target", "category"], LAYOUT)
    check_values(table["fold"], FOLDS, path, "fold")
    pairs = table[["target", "category"]].drop_duplicates()
    if pairs["target"].duplicated().any() or pairs["category"].duplicated().any():
        raise UserError(
            f"{path}: fields 'target' and 'category' do not map one to one", fix="use the unmodified esc50.csv"
        )
    labels = list(pairs.assign(t=pairs["target"].astype(int)).sort_values("t")["category"])
    split = table["fold"].map({str(test_fold): "test", str(dev_fold): "dev"}).fillna("train")
    clips = table.assign(
        clip_id=table["filename"].str.removesuffix(".wav"), split=split, path="audio/" + table["filename"]
    )
    clips = clips[["clip_id", "split", "path", "fold", "category"]]
    return single_label_manifest(
        "esc50", clips, "category", labels, root, 5.0, source=[str(path)], test_fold=test_fold, dev_fold=dev_fold
    )
