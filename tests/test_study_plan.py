"""Planning: the paper's study as a run graph (ids, dependencies, costs), collisions, and stale results."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from audiotransfer.errors import UserError
from audiotransfer.study.plan import check_resumable, make_plan
from audiotransfer.study.prepare import DataIndex, Dataset
from audiotransfer.study.spec import load_study

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def paper(tmp_path: Path) -> Path:
    """examples/studies/paper.yaml with its /data placeholders pointed at empty folders that exist."""
    text = (REPO / "examples" / "studies" / "paper.yaml").read_text()
    text = text.replace("../subsets/paper.yaml", str(REPO / "examples" / "subsets" / "paper.yaml"))
    for placeholder in sorted(set(re.findall(r"/data/[\w./=-]+", text)), key=len, reverse=True):
        target = tmp_path / placeholder.lstrip("/")
        if target.suffix:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.touch()
        else:
            target.mkdir(parents=True, exist_ok=True)
    text = text.replace("/data/", f"{tmp_path}/data/")
    path = tmp_path / "paper.yaml"
    path.write_text(text)
    return path


def _dataset(name: str, clips: int, root: Path, store: str) -> Dataset:
    return Dataset(
        name,
        root / "manifests" / name,
        root / "stores" / store,
        f"hash-{name}",
        "c",
        "multiclass",
        clips + 10,
        clips,
        5,
        ["a", "b"],
        10.0,
    )


def _index(study, root: Path) -> DataIndex:  # type: ignore[no-untyped-def]
    states = {s: _dataset(s, 1000 * (i + 1), root, "pretrain") for i, s in enumerate(study.subset_states)}
    tasks = {t: _dataset(t, 100, root, t) for t in study.spec.downstream}
    return DataIndex(states, tasks)


def test_paper_study_plans_13_pretrainings_and_126_finetunings(paper: Path) -> None:
    study = load_study(paper)
    assert len(study.subset_states) == 13 and study.subset_states["fraction_1pct"].fraction == 0.01
    plan = make_plan(study, _index(study, study.out))
    kinds = [r.kind for r in plan]
    assert kinds.count("pretrain") == 13 and kinds.count("finetune") == 14 * 3 * 3
    run = plan.runs["finetune/speech/commands/finetune/seed3"]
    assert run.parent == "pretrain/speech" and plan.dependencies(run.run_id) == ["pretrain/speech"]
    assert run.init == str(study.out / "runs" / "pretrain" / "speech" / "model.pt")
    assert run.out_dir == study.out / "runs" / "finetune" / "speech" / "commands" / "finetune" / "seed3"
    assert run.recipe.frames == 101 and run.recipe.seed == 3 and run.recipe.model == "cnn10"
    assert run.recipe.select_metric == "accuracy"
    scratch = plan.runs["finetune/scratch/birds/finetune/seed1"]
    assert scratch.parent is None and scratch.init is None and plan.dependencies(scratch.run_id) == []
    pre = plan.runs["pretrain/full"]
    assert pre.cost == 1000 * 30 and pre.recipe.batch_size == 128  # clip-epochs with the study's recipe
    assert len(plan.dependents("pretrain/full")) == 3 * 3
    order = plan.order()
    assert order.index("pretrain/animal") < order.index("finetune/animal/scenes/finetune/seed1")
    assert plan.total_cost == sum(r.cost for r in plan)


def test_step_budget_gives_every_state_the_same_compute(paper: Path) -> None:
    study = load_study(paper, overrides={"recipes": {"pretrain": {"steps": 40}}})
    plan = make_plan(study, _index(study, study.out))
    full = plan.runs["pretrain/full"]  # 1000 clips in batches of 128: 8 batches per epoch
    assert full.epochs == 5 and full.cost == 1000 * 5


def test_checkpoint_states_and_protocol_folders(paper: Path, tmp_path: Path) -> None:
    ckpt = tmp_path / "cnn10.pth"
    ckpt.touch()
    study = load_study(
        paper,
        overrides={
            "pretraining": {"states": {"panns": {"checkpoint": str(ckpt), "format": "panns"}}},
            "protocols": ["linear", "freeze:2"],
            "seeds": [1],
        },
    )
    plan = make_plan(study, _index(study, study.out))
    run = plan.runs["finetune/panns/scenes/freeze-2/seed1"]
    assert run.protocol == "freeze:2" and run.recipe.protocol == "freeze:2"
    assert run.init == str(ckpt) and run.parent is None and "pretrain/panns" not in plan.runs
    assert run.config["init"] == str(ckpt)
    assert run.cost == 100 * run.recipe.epochs
    assert plan.runs["finetune/panns/scenes/linear/seed1"].cost == 100  # embeddings once, then only the head


def test_changed_finished_run_is_refused(paper: Path) -> None:
    study = load_study(paper)
    plan = make_plan(study, _index(study, study.out))
    run = plan.runs["finetune/human/birds/finetune/seed2"]
    check_resumable(plan, {run.run_id: json.dumps(run.config)})
    stale = {**run.config, "data_hash": "another-task-manifest"}
    with pytest.raises(UserError, match="used another configuration"):
        check_resumable(plan, {run.run_id: json.dumps(stale)})


def test_a_checkpoint_state_of_another_front_end_reads_stores_of_its_own(paper: Path, tmp_path: Path) -> None:
    import torch

    from audiotransfer.data.features import get_recipe, mel_filterbank
    from audiotransfer.study.frontends import state_frontends
    from audiotransfer.study.layout import StudyDir
    from audiotransfer.study.prepare import own_stores

    r = get_recipe("panns32k")  # a PANNs 32 kHz file: its mel filter bank says so
    melw = torch.from_numpy(mel_filterbank(r.sample_rate, r.n_fft, r.n_mels, r.fmin, r.fmax))
    torch.save({"model": {"logmel_extractor.melW": melw}}, tmp_path / "Cnn14_mAP=0.431.pth")
    state = {"checkpoint": str(tmp_path / "Cnn14_mAP=0.431.pth"), "format": "panns"}
    study = load_study(paper, overrides={"pretraining": {"states": {"panns": state}}})
    own = state_frontends(study)
    assert own == {"panns": r}  # the 16 kHz subset states keep the study's features
    data = _index(study, study.out)
    data.frontends, data.frontend_tasks = own, own_stores(StudyDir(study.out), data.tasks, own)
    plan = make_plan(study, data)
    panns, human = plan.runs["finetune/panns/scenes/finetune/seed1"], plan.runs["finetune/human/scenes/finetune/seed1"]
    assert panns.store == study.out / "stores" / r.hash / "scenes" and panns.config["frontend"] == r.hash
    assert human.store == study.out / "stores" / "scenes" and "frontend" not in human.config
    assert panns.data_hash == human.data_hash  # the same task manifest, features of another front-end

    # a `recipe` field that contradicts the file's own front-end names both
    contradicting = {"pretraining": {"states": {"panns": {**state, "recipe": "panns16k"}}}}
    with pytest.raises(UserError, match=r"32000 Hz.*16000 Hz") as err:
        state_frontends(load_study(paper, overrides=contradicting))
    assert "pretraining.states.panns.recipe" in err.value.message and "drop" in (err.value.fix or "")
    # a file that declares no front-end takes the state's `recipe`
    torch.save({"conv.weight": torch.zeros(2)}, tmp_path / "plain.pt")
    given = {"pretraining": {"states": {"mine": {"checkpoint": str(tmp_path / "plain.pt"), "recipe": {"n_mels": 48}}}}}
    assert state_frontends(load_study(paper, overrides=given))["mine"].n_mels == 48
