"""The front-end each study state reads: the study's `features`, or a checkpoint state's own.

A checkpoint state's front-end is the one its file declares (our `model.pt`) or shows (a PANNs filter
bank); a file that declares none takes the state's `recipe` field, else the study's `features`; a public
pre-trained model (a format of `models.public.PUBLIC_FORMATS`) reads raw samples at its own rate. A state
whose front-end is not the study's gets the task features extracted with its own recipe, into one store
per distinct front-end that every such state shares (`StudyDir.store(task, frontend=HASH)`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from audiotransfer.errors import UserError
from audiotransfer.study.spec import Study

if TYPE_CHECKING:
    from audiotransfer.data.features import Frontend


def state_frontends(study: Study) -> dict[str, Frontend]:
    """Checkpoint state -> its front-end, for the states whose front-end is not the study's `features`."""
    from audiotransfer.models.frontends import check_frontend
    from audiotransfer.models.load import declared_frontend

    own: dict[str, Frontend] = {}
    for name, state in study.checkpoint_states.items():
        if state.public:  # a public family reads raw samples at its own rate
            own[name] = public_frontend(study, name)
            continue
        given = study.checkpoint_recipes.get(name)
        try:
            declared = declared_frontend(state.checkpoint)
        except UserError:  # unreadable: the run that loads it reports that
            declared = None
        if declared is not None and given is not None:
            check_frontend(
                declared,
                given,
                f"{study.path}: field 'pretraining.states.{name}.recipe' ({state.checkpoint})",
                fix="drop the state's `recipe`: the file declares its front-end",
            )
        frontend = declared or given or study.features
        if frontend.hash != study.features.hash:
            own[name] = frontend
    return own


def public_frontend(study: Study, name: str) -> Frontend:
    """The "waveform at N Hz" store a public state reads: N its model's sample rate (the model is loaded)."""
    from audiotransfer.data.features import WaveformRecipe
    from audiotransfer.models.public import load_public

    state = study.checkpoint_states[name]
    try:
        model = load_public(state.checkpoint, state.format)
    except UserError as exc:
        raise UserError(f"{study.path}: field 'pretraining.states.{name}': {exc.message}", fix=exc.fix) from None
    return WaveformRecipe(sample_rate=model.sample_rate)


def frontend_name(frontend: Frontend) -> str:
    """A front-end's recipe name (panns16k, demo, ...) when it is a named one, else its description."""
    from audiotransfer.data.features import RECIPES

    return next((name for name, r in RECIPES.items() if r.hash == frontend.hash), frontend.describe())
