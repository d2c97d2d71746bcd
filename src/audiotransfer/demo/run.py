"""`audiotransfer demo`: a complete small study on the synthetic world, through the ordinary study path.

It generates the world (cached), writes `OUT/study.yaml` from `examples/studies/demo.yaml` (its `quick`
block merged in for `--quick`), runs that study exactly as `audiotransfer study run` would (resumable:
rerunning the demo continues where it stopped), writes the analysis report, and checks the report's answer
against the world's ground truth (`demo.ground_truth`: a section of the report, printed too). Once the
study's features are extracted the world's audio is removed (`remove_audio`; rendered again from the seed on
request), which keeps the demo folder small.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from audiotransfer.demo.ground_truth import Check, check_advisor, check_ground_truth, matched_states
from audiotransfer.errors import UserError
from audiotransfer.files import load_yaml
from audiotransfer.study.layout import StudyDir
from audiotransfer.study.runner import Outcome, run
from audiotransfer.study.spec import deep_merge

DEMO_SPEC = Path(__file__).with_name("demo.yaml")  # package data; examples/studies/demo.yaml links here


@dataclass
class DemoResult:
    """Where the demo wrote its study and report, what ran, the three answer lines and phase timings."""

    study_dir: Path
    outcome: Outcome
    report: dict[str, Any]
    headline: list[str]
    seconds: dict[str, float] = field(default_factory=dict)
    ground_truth: list[Check] = field(default_factory=list)
    advisor: list[str] = field(default_factory=list)  # per task: the advisor's pick vs the grid's best


def demo_config(quick: bool = False, spec: str | Path | None = None) -> dict[str, Any]:
    """The demo's `world` and `study` sections, with the `quick` block merged in when asked."""
    path = Path(spec) if spec else DEMO_SPEC
    if not path.is_file():
        raise UserError(
            f"{path}: demo study file not found",
            fix="reinstall audiotransfer (the package ships demo.yaml) or pass --spec",
        )
    raw = load_yaml(path.read_text()) or {}
    missing = {"world", "study"} - set(raw)
    if missing:
        raise UserError(f"{path}: fields {sorted(missing)} missing", fix="see examples/studies/demo.yaml")
    merged = deep_merge(raw, raw.get("quick") or {}) if quick else raw
    return {"world": merged["world"], "study": merged["study"]}


def run_demo(
    out: str | Path | None = None,
    quick: bool = False,
    jobs: int = 2,
    progress: bool = True,
    spec: str | Path | None = None,
    world_seed: int | None = None,
    keep_audio: bool = False,
) -> DemoResult:
    """Generate the world, run the demo study in `out` and write its report (see the module docstring).

    `world_seed` replaces the spec's world seed (another world, same design); the default folder names it.
    Once the study's features are extracted the world's audio is removed (most of the folder's size;
    `generate_world` renders it again from the seed) unless `keep_audio`.
    """
    from audiotransfer.data.synthetic import generate_world
    from audiotransfer.data.synthetic.generate import remove_audio

    config = demo_config(quick, spec)
    if world_seed is not None:
        config["world"] = {**config["world"], "seed": world_seed}
    default = ("audiotransfer-demo-quick" if quick else "audiotransfer-demo") + (
        f"-world{world_seed}" if world_seed is not None else ""
    )
    study_dir = Path(out or default).resolve()
    study_dir.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    folder = StudyDir(study_dir)
    spec_text = yaml.safe_dump({**config["study"], "out": "."}, sort_keys=False)
    # the same study as before has its features extracted: audio removed after that is not needed again
    same_study = folder.spec.is_file() and folder.spec.read_text() == spec_text
    generate_world(folder.world, **config["world"], jobs=jobs, progress=progress, audio=keep_audio or not same_study)
    seconds["world"] = time.perf_counter() - start
    folder.spec.write_text(spec_text)
    start = time.perf_counter()
    outcome = run(folder.spec, jobs=jobs, progress=progress)
    if not keep_audio:  # the features are extracted: the world's audio can be rendered again from its seed
        remove_audio(folder.world)
    seconds["study"] = time.perf_counter() - start
    start = time.perf_counter()
    report, checks, advisor = _report(study_dir, config["study"]["pretraining"]["states"], progress)
    seconds["report"] = time.perf_counter() - start
    return DemoResult(study_dir, outcome, report, list(report.get("headline") or []), seconds, checks, advisor)


def _report(study_dir: Path, states: dict[str, Any], progress: bool) -> tuple[dict[str, Any], list[Check], list[str]]:
    """The analysis report of the study, with a section checking it against the world's ground truth, and
    the advisor's one line per task."""
    from audiotransfer.analysis import analyse, write_analysis
    from audiotransfer.analysis.advisor import pick_line

    a = analyse(study_dir, progress=progress, matched=matched_states(states))
    checks = check_ground_truth(a.scores, a.data_sim, a.similarity, a.pooled.table if a.pooled else None, states)
    if a.advisor is not None and not a.advisor.scores.empty:
        checks += check_advisor(a.advisor.scores, a.advisor.default, states)
    if checks:
        agree = sum(c.agrees for c in checks)
        a.sections.append(
            (f"Against the world's ground truth ({agree} of {len(checks)} checks agree)", [c.line() for c in checks])
        )
    lines = [pick_line(r) for r in a.advisor.picks.itertuples()] if a.advisor is not None else []
    lines += [a.advisor.verdict.line()] if a.advisor is not None and a.advisor.verdict is not None else []
    return write_analysis(a), checks, lines
