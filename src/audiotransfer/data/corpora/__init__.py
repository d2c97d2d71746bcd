"""Corpora: each turns a data set in its official layout into a `Manifest` with splits and labels.

One small module per corpus, each exposing `load(root, **options) -> Manifest`. The registry maps the
CLI names to those functions; modules are imported only when used.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from audiotransfer.errors import UserError, suggest
from audiotransfer.manifest import Manifest

CORPORA: dict[str, str] = {
    "audioset": "audiotransfer.data.corpora.audioset:load",
    "dcase2020_task1a": "audiotransfer.data.corpora.dcase2020_task1a:load",
    "dcase2018_task3": "audiotransfer.data.corpora.dcase2018_task3:load",
    "speech_commands": "audiotransfer.data.corpora.speech_commands:load",
    "esc50": "audiotransfer.data.corpora.esc50:load",
    "folder": "audiotransfer.data.corpora.folder:load",
    "csv": "audiotransfer.data.corpora.csv_list:load",
    "synthetic": "audiotransfer.data.corpora.synthetic:load_pretraining",
    "synthetic_scenes": "audiotransfer.data.corpora.synthetic:load_scenes",
    "synthetic_birds": "audiotransfer.data.corpora.synthetic:load_birds",
    "synthetic_commands": "audiotransfer.data.corpora.synthetic:load_commands",
}


def load_corpus(name: str, root: str | Path, **options: Any) -> Manifest:
    """The manifest of corpus `name` found under `root` (splits, labels, paths relative to root)."""
    if name not in CORPORA:
        hint = suggest(name, CORPORA)
        raise UserError(
            f"unknown corpus {name!r}" + (f"; did you mean {', '.join(hint)}?" if hint else ""),
            fix=f"use one of: {', '.join(CORPORA)}",
        )
    root = Path(root).expanduser()
    if not root.exists():
        raise UserError(f"{root}: corpus root for {name!r} does not exist", fix="pass the folder that holds it")
    module_name, func = CORPORA[name].split(":")
    return getattr(importlib.import_module(module_name), func)(root.resolve(), **options)
