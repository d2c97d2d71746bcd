"""Every YAML under examples/ loads and plans: subset files build their specs, study files their run grid
(data folders they name are stood in by empty folders, as a user's would be before extraction)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from audiotransfer.ontology import load_subset_file
from audiotransfer.study.plan import make_plan
from audiotransfer.study.prepare import DataIndex, Dataset
from audiotransfer.study.spec import SCRATCH, deep_merge, load_study

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
STUDIES = sorted((EXAMPLES / "studies").glob("*.yaml"))


def _stand_in(path: Path, tmp: Path) -> Path:
    """The study with its /data paths under `tmp` (created empty) and `../subsets` made absolute."""
    text = path.read_text().replace("../subsets/", f"{EXAMPLES / 'subsets'}/")
    raw = yaml.safe_load(text)
    if "study" in raw:  # the demo's file: the study part, paths relative to the folder it is written to
        raw = deep_merge(raw["study"], {"out": str(tmp / "out")})
        meta = raw["pretraining"]["metadata"]
        for rel in [meta["ontology"], meta["labels"], *meta["train"], *meta["eval"]]:
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / rel).touch()
        text = yaml.safe_dump(raw)
    for placeholder in sorted(set(re.findall(r"/data/[\w./=-]+", text)), key=len, reverse=True):
        target = tmp / placeholder.lstrip("/")
        if target.suffix:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.touch()
        else:
            target.mkdir(parents=True, exist_ok=True)
    out = tmp / path.name
    out.write_text(text.replace("/data/", f"{tmp}/data/"))
    return out


def _data(study, root: Path) -> DataIndex:  # type: ignore[no-untyped-def]
    def dataset(name: str, clips: int) -> Dataset:
        return Dataset(
            name,
            root / "manifests" / name,
            root / "stores" / name,
            f"hash-{name}",
            "c",
            "multiclass",
            clips + 10,
            clips,
            5,
            ["a", "b"],
            10.0,
        )

    return DataIndex(
        {s: dataset(s, 100 * (i + 1)) for i, s in enumerate(study.subset_states)},
        {t: dataset(t, 50) for t in study.spec.downstream},
    )


def test_every_example_is_tested() -> None:
    assert {p.name for p in STUDIES} >= {"demo.yaml", "paper.yaml", "fsd50k.yaml"}


@pytest.mark.parametrize("path", STUDIES, ids=lambda p: p.name)
def test_example_study_loads_and_plans(path: Path, tmp_path: Path) -> None:
    study = load_study(_stand_in(path, tmp_path))
    plan = make_plan(study, _data(study, study.out))
    spec = study.spec
    states = [*spec.pretraining.states, *([SCRATCH] if spec.include_scratch else [])]
    kinds = [run.kind for run in plan]
    assert kinds.count("pretrain") == len(study.subset_states) > 0
    assert kinds.count("finetune") == len(states) * len(spec.downstream) * len(spec.protocols) * len(spec.seeds)
    assert plan.order()[-1].startswith("finetune/") and plan.total_cost > 0


@pytest.mark.parametrize("path", sorted((EXAMPLES / "subsets").glob("*.yaml")), ids=lambda p: p.name)
def test_example_subset_file_loads(path: Path) -> None:
    specs = load_subset_file(path)
    assert specs and all(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_+-]*", name) for name in specs)
