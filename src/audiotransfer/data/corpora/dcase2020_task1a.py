"""DCASE2020 Task 1A (TAU Urban Acoustic Scenes 2020 Mobile, development): official fold1 split.

Train = fold1_train minus a dev part (10% by default) stratified by scene, city and device; test =
fold1_evaluate. City and device come from `meta.csv` (identifier = city-location, source_label = device).
"""

from __future__ import annotations

from pathlib import Path

from audiotransfer.data.corpora._common import (
    check_values,
    read_table,
    require,
    single_label_manifest,
    stratified_pick,
)
from audiotransfer.errors import UserError
from audiotransfer.manifest import Manifest

SCENES = [
    "airport",
    "bus",
    "metro",
    "metro_station",
    "park",
    "public_square",
    "shopping_mall",
    "street_pedestrian",
    "street_traffic",
    "tram",
]
LAYOUT = (
    "meta.csv (tab-separated filename, scene_label, identifier, source_label), audio/*.wav, "
    "evaluation_setup/fold1_train.csv and fold1_evaluate.csv (tab-separated filename, scene_label)"
)


def load(root: Path, dev_fraction: float = 0.1, seed: int = 0) -> Manifest:
    """The TAU 2020 Mobile development set under `root` as a 10-scene multiclass manifest."""
    require(root / "audio", "audio folder", LAYOUT)
    meta_path = root / "meta.csv"
    meta = read_table(meta_path, ["filename", "scene_label", "identifier", "source_label"], LAYOUT, sep="\t")
    check_values(meta["scene_label"], SCENES, meta_path, "scene_label")
    folds = {}
    for split, name in (("train", "fold1_train.csv"), ("test", "fold1_evaluate.csv")):
        path = root / "evaluation_setup" / name
        folds[split] = read_table(path, ["filename", "scene_label"], LAYOUT, sep="\t")
        unknown = set(folds[split]["filename"]) - set(meta["filename"])
        if unknown:
            raise UserError(
                f"{path}: field 'filename' lists {len(unknown)} files not in {meta_path} (e.g. {sorted(unknown)[0]})",
                fix="use the meta.csv of the same release",
            )
    meta = meta.set_index("filename")
    clips = meta.loc[list(folds["train"]["filename"]) + list(folds["test"]["filename"])].reset_index()
    clips["split"] = ["train"] * len(folds["train"]) + ["test"] * len(folds["test"])
    clips = clips.rename(columns={"filename": "path", "source_label": "device"})
    clips["clip_id"] = clips["path"].str.rsplit("/", n=1).str[-1].str.removesuffix(".wav")
    clips["city"] = clips["identifier"].str.split("-").str[0]
    train = (clips["split"] == "train").to_numpy()
    strata = (clips["scene_label"] + "|" + clips["city"] + "|" + clips["device"])[train]
    dev = stratified_pick(strata, dev_fraction, seed)
    clips.loc[clips.index[train][dev], "split"] = "dev"
    clips = clips[["clip_id", "split", "path", "scene_label", "city", "device", "identifier"]]
    return single_label_manifest(
        "dcase2020_task1a",
        clips,
        "scene_label",
        SCENES,
        root,
        10.0,
        source=[str(meta_path)],
        dev_fraction=dev_fraction,
        seed=seed,
    )
