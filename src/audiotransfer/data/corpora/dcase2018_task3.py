"""DCASE2018 Task 3 (bird audio detection): binary `hasbird` over three corpora.

Default protocol of the study: train = freefield1010 + BirdVox-DCASE-20k, test = warblrb10k, dev = 10% of
train stratified by corpus and label, seeded. Which corpora feed train and test is configurable.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from audiotransfer.data.corpora._common import (
    check_values,
    read_table,
    require,
    single_label_manifest,
    stratified_pick,
)
from audiotransfer.errors import UserError, unknown_name
from audiotransfer.manifest import Manifest

METADATA = {
    "ff1010bird": "ff1010bird_metadata_2018.csv",
    "warblrb10k": "warblrb10k_public_metadata_2018.csv",
    "BirdVox-DCASE-20k": "BirdVoxDCASE20k_csvpublic.csv",
}
LAYOUT = (
    "one folder per corpus: ROOT/{corpus}/{metadata csv: itemid,datasetid,hasbird} and "
    "ROOT/{corpus}/wav/{itemid}.wav, for corpus in " + ", ".join(f"{k} ({v})" for k, v in METADATA.items())
)


def _read_corpus(root: Path, corpus: str) -> pd.DataFrame:
    folder = root / corpus
    csv_path = folder / METADATA[corpus]
    if not csv_path.exists() and (root / METADATA[corpus]).exists():
        csv_path = root / METADATA[corpus]
    table = read_table(csv_path, ["itemid", "hasbird"], LAYOUT)
    check_values(table["hasbird"], ["0", "1"], csv_path, "hasbird")
    require(folder / "wav", f"audio folder of {corpus}", LAYOUT)
    return pd.DataFrame(
        {
            "clip_id": corpus + "/" + table["itemid"],
            "path": corpus + "/wav/" + table["itemid"] + ".wav",
            "corpus": corpus,
            "hasbird": table["hasbird"],
        }
    )


def _names(names: Sequence[str] | str, option: str) -> list[str]:
    lookup = {k.lower(): k for k in METADATA}
    out = []
    for name in [names] if isinstance(names, str) else names:
        if name.lower() not in lookup:
            raise UserError(
                f"option {option!r}: " + unknown_name("corpus", name, METADATA),
                fix=f"use some of: {', '.join(METADATA)}",
            )
        out.append(lookup[name.lower()])
    return out


def load(
    root: Path,
    train: Sequence[str] | str = ("ff1010bird", "BirdVox-DCASE-20k"),
    test: Sequence[str] | str = ("warblrb10k",),
    dev_fraction: float = 0.1,
    seed: int = 0,
) -> Manifest:
    """Bird activity detection manifest (binary, labels "0"/"1") from the corpora under `root`."""
    train, test = _names(train, "train"), _names(test, "test")
    if set(train) & set(test):
        raise UserError(
            f"corpora {sorted(set(train) & set(test))} are in both train and test",
            fix="give each corpus to one side only",
        )
    parts = []
    for split, names in (("train", train), ("test", test)):
        for name in names:
            part = _read_corpus(root, name)
            part.insert(1, "split", split)
            parts.append(part)
    clips = pd.concat(parts, ignore_index=True)
    is_train = (clips["split"] == "train").to_numpy()
    dev = stratified_pick((clips["corpus"] + "|" + clips["hasbird"])[is_train], dev_fraction, seed)
    clips.loc[clips.index[is_train][dev], "split"] = "dev"
    return single_label_manifest(
        "dcase2018_task3",
        clips,
        "hasbird",
        ["0", "1"],
        root,
        10.0,
        label_names=["no bird", "bird"],
        task_type="binary",
        train_corpora=train,
        test_corpora=test,
        dev_fraction=dev_fraction,
        seed=seed,
    )
