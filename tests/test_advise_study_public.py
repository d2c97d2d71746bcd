"""A study's public pre-trained models are advisor candidates: `advise STUDY` and the report's
"Could we have known" section rank them beside the study's other states."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from audiotransfer.cli import main

tf = pytest.importorskip("transformers")


def test_public_study_states_are_ranked_by_advise_and_the_report(tmp_path: Path) -> None:

    from audiotransfer.advise.driver import study_candidates, study_tasks
    from audiotransfer.analysis import analyse
    from audiotransfer.data.features import WaveformRecipe, get_recipe
    from audiotransfer.data.synthetic import generate_world
    from audiotransfer.study import run
    from audiotransfer.study.frontends import frontend_name
    from audiotransfer.study.results import load_results
    from test_public_training import _w2v
    from test_study_public import _study

    world = generate_world(
        tmp_path / "world",
        num_pretrain=8,
        num_eval=4,
        num_scenes=14,
        num_birds=24,
        num_commands=14,
        num_speakers=7,
        jobs=1,
        progress=False,
    )
    states = {}
    for seed in (0, 1):
        states[f"w2v{seed}"] = {"checkpoint": str(_w2v(tmp_path / f"w2v{seed}", seed)), "format": "hf"}
    path = _study(tmp_path, states, world)
    outcome = run(path, jobs=1, progress=False)
    assert outcome.ok, outcome.failed
    out = tmp_path / "out"

    wave = WaveformRecipe(sample_rate=16000)
    res = load_results(out)
    stores = res.task_stores.set_index("frontend_hash")
    assert set(stores.index) == {wave.hash, get_recipe("demo").hash} and set(stores["task"]) == {"birds"}
    assert stores.loc[wave.hash, "store_path"] == str(out / "stores" / wave.hash / "birds")
    assert any(
        n.startswith("Task feature stores by front-end: ") and f"{frontend_name(wave)}: birds (" in n for n in res.notes
    )
    (task,) = study_tasks(res)
    assert set(task.stores) == {wave.hash} and task.stores[wave.hash].recipe == wave

    candidates = {c.name: c for c in study_candidates(res)}
    assert set(candidates) == {"w2v0", "w2v1"}
    assert candidates["w2v1"].source == "hf" and candidates["w2v1"].path == tmp_path / "w2v1"
    assert main(["advise", str(out), "--no-progress", "--out", str(tmp_path / "advice")]) == 0
    advice = json.loads((tmp_path / "advice" / "advice.json").read_text())
    ranked = {row["candidate"] for row in advice["tables"]["birds"]}
    assert ranked == {"w2v0", "w2v1"}

    a = analyse(out, progress=False)
    assert any(n.startswith("Public models w2v0, w2v1 are left out of the weight") for n in a.res.notes)
    check = a.advisor
    assert check is not None and not check.note, check.note if check else None
    assert set(check.scores["candidate"]) == {"w2v0", "w2v1"}
