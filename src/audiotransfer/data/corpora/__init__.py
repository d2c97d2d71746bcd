"""Corpora: each turns a data set in its official layout into a `Manifest` with splits and labels.

One small module per corpus, each exposing `load(root, **options) -> Manifest`. The registry maps the
CLI names to those functions; modules are imported only when used.
"""

from __future__ import annotations

import importlib
import inspect
import typing
from pathlib import Path
from typing import Any

import numpy as np

from audiotransfer.errors import UserError, unknown_name
from audiotransfer.manifest import Manifest

CORPORA: dict[str, str] = {
    "audioset": "audiotransfer.data.corpora.audioset:load",
    "dcase2020_task1a": "audiotransfer.data.corpora.dcase2020_task1a:load",
    "dcase2018_task3": "audiotransfer.data.corpora.dcase2018_task3:load",
    "speech_commands": "audiotransfer.data.corpora.speech_commands:load",
    "esc50": "audiotransfer.data.corpora.esc50:load",
    "fsd50k": "audiotransfer.data.corpora.fsd50k:load",
    "folder": "audiotransfer.data.corpora.folder:load",
    "csv": "audiotransfer.data.corpora.csv_list:load",
    "synthetic": "audiotransfer.data.corpora.synthetic:load_pretraining",
    "synthetic_scenes": "audiotransfer.data.corpora.synthetic:load_scenes",
    "synthetic_birds": "audiotransfer.data.corpora.synthetic:load_birds",
    "synthetic_commands": "audiotransfer.data.corpora.synthetic:load_commands",
}

# corpora that carry their own ontology-labelled segment lists (pre-training without AudioSet CSVs)
SEGMENT_LISTS: dict[str, str] = {"fsd50k": "audiotransfer.data.corpora.fsd50k:segment_lists"}


def load_corpus(name: str, root: str | Path, **options: Any) -> Manifest:
    """The manifest of corpus `name` found under `root` (splits, labels, paths relative to root)."""
    if name not in CORPORA:
        raise UserError(
            unknown_name("corpus", name, CORPORA),
            fix=f"use one of: {', '.join(CORPORA)}",
        )
    root = Path(root).expanduser()
    if not root.exists():
        raise UserError(f"{root}: corpus root for {name!r} does not exist", fix="pass the folder that holds it")
    module_name, func_name = CORPORA[name].split(":")
    func = getattr(importlib.import_module(module_name), func_name)
    params = inspect.signature(func).parameters
    unknown = [k for k in options if k not in params]
    if unknown and not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        raise UserError(
            f"corpus {name!r} has no option(s) {unknown}",
            fix=f"its options are: {', '.join(list(params)[1:]) or 'none'}",
        )
    return func(root.resolve(), **_typed_options(name, func, options))


def _typed_options(name: str, func: Any, options: dict[str, Any]) -> dict[str, Any]:
    """Options checked (and converted) against the loader's type hints: `dev_fraction=abc` is a UserError
    naming the option, not a TypeError deep inside the loader."""
    from pydantic import TypeAdapter, ValidationError

    hints = typing.get_type_hints(func)
    typed = {}
    for key, value in options.items():
        if key not in hints:
            typed[key] = value
            continue
        adapter = TypeAdapter(hints[key])
        try:
            try:
                typed[key] = adapter.validate_python(value)
            except ValidationError:
                if not isinstance(value, int | float):
                    raise
                typed[key] = adapter.validate_python(str(value))  # YAML read `-o variant=12` as a number
        except ValidationError as exc:
            raise UserError(
                f"corpus {name!r}: option {key}={value!r}: {exc.errors()[0]['msg']}",
                fix=f"give {key} a value of type {_type_name(hints[key])}",
            ) from None
    return typed


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "").replace("collections.abc.", "")


def describe_corpus(name: str, root: str | Path, max_files: int = 2000, **options: Any) -> dict[str, Any]:
    """Clips, classes, split sizes, and durations and sample rates read from the headers of up to
    `max_files` clips (a seeded random sample when there are more; `audio_checked` says how many)."""
    from audiotransfer.data.audio import AudioError, audio_info
    from audiotransfer.data.corpora.groups import groups_per_split

    manifest = load_corpus(name, root, **options)
    clips = manifest.clips
    picked = np.arange(len(clips))
    if len(clips) > max_files:
        picked = np.sort(np.random.default_rng(0).choice(len(clips), max_files, replace=False))
    seconds: list[float] = []
    rates: dict[int, int] = {}
    unreadable = 0
    base = Path(manifest.meta["root"])
    for i in picked:
        try:
            frames, rate = audio_info(base / clips["path"].iat[i])
        except AudioError:
            unreadable += 1
            continue
        window = clips["duration"].iat[i] if "duration" in clips else np.nan
        seconds.append(frames / rate if np.isnan(window) else float(window))
        rates[rate] = rates.get(rate, 0) + 1
    durations = np.asarray(seconds)
    per_class = manifest.clips_per_class()
    return {
        "corpus": name,
        "root": manifest.meta["root"],
        "task_type": manifest.task_type,
        "clips": manifest.num_clips,
        "classes": manifest.num_classes,
        "labels": list(manifest.label_names),
        "clips_per_class": {"min": int(per_class.min()), "max": int(per_class.max())} if len(per_class) else {},
        "splits": manifest.split_sizes(),
        **({"groups": groups} if (groups := groups_per_split(clips)) else {}),
        "audio_checked": len(picked),
        "audio_unreadable": unreadable,
        "seconds": {
            "min": round(float(durations.min()), 3),
            "median": round(float(np.median(durations)), 3),
            "max": round(float(durations.max()), 3),
            "total_hours_estimated": round(float(durations.mean() * manifest.num_clips / 3600), 3),
        }
        if len(durations)
        else {},
        "sample_rates": {int(k): v for k, v in sorted(rates.items())},
        "clip_seconds": manifest.meta.get("clip_seconds"),
    }
