"""`load_model(path, format)`: any model this package can read, as one `InferenceModel`.

`FORMATS` maps each format name (the names used everywhere a checkpoint is given: study states, advise
candidates, `finetune --format`) to its loader; "auto" tells this package's `model.pt` from a PANNs `.pth`
and an autrainer state dict by their keys.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from audiotransfer.data.features import RECIPES, Frontend, get_recipe
from audiotransfer.errors import UserError
from audiotransfer.models.artifact import ModelCard, is_model_file, read_model_file
from audiotransfer.models.checkpoints import _load_strict, _read, infer_config, read_state
from audiotransfer.models.cnn import create_model
from audiotransfer.models.frontends import check_frontend, panns_frontend
from audiotransfer.models.inference import InferenceModel, Loaded, PublicInference, TrainedPublicInference
from audiotransfer.models.public import FORMAT_NAMES, PUBLIC_FORMATS, load_public
from audiotransfer.models.public.head import from_config, is_public_config

Loader = Callable[[Mapping[str, Any], Path, "Frontend | None", "str | Path | None"], InferenceModel]


def _frontend(declared: Frontend | None, given: Frontend | None, where: Path) -> Frontend:
    if declared is not None and given is not None:
        check_frontend(declared, given, where)
    frontend = declared or given
    if frontend is None:
        raise UserError(
            f"{where}: the file does not say which front-end (sample rate, window, hop, mels) the model reads",
            fix=f"give it: --recipe NAME ({', '.join(RECIPES)}) on the command line, recipe=... in Python",
        )
    return frontend


def _own(raw: Mapping[str, Any], where: Path, recipe: Frontend | None, backbone: str | Path | None) -> InferenceModel:
    state, card = read_model_file(raw, where, backbone)
    if is_public_config(card.config):  # a fine-tuned or probed public model: its backbone from its own files
        public = from_config(card.config, state, where, backbone)
        return TrainedPublicInference(public, _frontend(card.front_end(), recipe, where), card, "audiotransfer")
    network = create_model(**card.config)
    _load_strict(network, state, str(where))
    return InferenceModel(network, _frontend(card.front_end(), recipe, where), card, "audiotransfer")


def _imported(source: str) -> Loader:
    def load(
        raw: Mapping[str, Any], where: Path, recipe: Frontend | None, backbone: str | Path | None
    ) -> InferenceModel:
        state, _, _ = read_state(raw, source)  # type: ignore[arg-type]  # source is one of SOURCES
        network = create_model(**infer_config(state))
        _load_strict(network, state, str(where))
        try:
            declared = panns_frontend(raw, where) if source == "panns" else None
        except UserError:
            if recipe is None:
                raise
            declared = None  # the user names the front-end of an unpublished filter bank
        card = ModelCard(
            config=network.config,
            labels=[f"class_{i}" for i in range(network.num_classes)],
            task_type="multilabel" if source == "panns" else "multiclass",
            kind="imported",
            provenance={"state": where.name, "init": str(where)},
        )
        return InferenceModel(network, _frontend(declared, recipe, where), card, source)

    return load


def declared_frontend(path: str | Path) -> Frontend | None:
    """The front-end a checkpoint declares (our model.pt) or shows (a PANNs filter bank), else None."""
    file = Path(path)
    file = file / "model.pt" if file.is_dir() else file
    raw, _ = _read(file)
    if is_model_file(raw):
        return ModelCard(config={}, frontend=raw.get("frontend")).front_end()
    try:
        return panns_frontend(raw, file)
    except UserError:  # a filter bank of no published recipe: only the mel count can be checked
        return None


FORMATS: dict[str, Loader] = {"audiotransfer": _own, "panns": _imported("panns"), "autrainer": _imported("autrainer")}


def load_model(
    path: str | Path, format: str = "auto", recipe: str | Frontend | None = None, backbone: str | Path | None = None
) -> Loaded:
    """The model at `path` (a run folder, a `model.pt`, a PANNs `.pth`, an autrainer state dict, or a public
    model in one of `models.public.PUBLIC_FORMATS`: hf, torchcrepe, efficientat, beats, or `hear:MODULE` for any
    installed HEAR-API module and its weights file) ready for
    `predict` / `embed` / `embed_frames` on audio. `recipe` (a recipe name or object) gives the front-end of a
    file that does not declare one; `backbone` the new place of a moved linear probe's backbone.

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> import numpy as np
        >>> from audiotransfer.data.features import RECIPES
        >>> from audiotransfer.models import create_model
        >>> from audiotransfer.training.checkpoint import save_model
        >>> run = Path(tempfile.mkdtemp())  # a run folder as training leaves it, here with untrained weights
        >>> net = create_model("cnn6", 2, width=0.125, n_mels=64)
        >>> save_model(run / "model.pt", net, labels=["no", "yes"], task_type="multiclass",
        ...            frontend=RECIPES["panns16k"].model_dump())
        >>> model = load_model(run)
        >>> model.labels, model.sample_rate
        (['no', 'yes'], 16000)
        >>> probs = model.predict([np.zeros(8000), np.zeros(48000)])  # two clips of 0.5 s and 3 s
        >>> probs.shape, bool(np.allclose(probs.sum(axis=1), 1.0))
        ((2, 2), True)
    """
    if format in PUBLIC_FORMATS:  # a public family reads its own files (a transformers folder, CREPE's weights)
        return PublicInference(load_public(path, format), str(path))
    if format != "auto" and format not in FORMATS:
        raise UserError(
            f"unknown model format {format!r}", fix=f"use auto or one of: {', '.join([*FORMATS, *FORMAT_NAMES])}"
        )
    file = Path(path)
    file = file / "model.pt" if file.is_dir() else file
    raw, _ = _read(file)
    if format == "auto":
        format = "audiotransfer" if is_model_file(raw) else read_state(raw)[1]
    given = get_recipe(recipe) if isinstance(recipe, str) else recipe
    return FORMATS[format](raw, file, given, backbone)
