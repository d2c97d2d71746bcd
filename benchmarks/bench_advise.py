"""Benchmark: the advisor on 10 candidate states x 3 tasks, and its cost against a study's grid.

Printed, all measured in this run:
1. embeddings: the first advice's forward passes (10 candidates x 3 tasks, store reads included) in clips/s,
   against the same models' plain inference (`model(x)`) over the same clips (the baseline);
2. all six estimators on every candidate x task once the embeddings are cached (target < 60 s in all), per
   estimator, and the cached rerun's wall time;
3. with `--study DIR [DIR ...]` (finished studies, e.g. the demo's folder on several world seeds): per study
   the advisor's seconds (forward passes + estimators, a cold cache) against the grid's (the fine-tuning
   runs' seconds recorded in its results store); then over all of them, per estimator, the mean weighted
   Kendall tau against the fine-tuned ranking and, for demo studies, in how many task x study cells its
   top-1 among the category states shares generators with the task (`demo.ground_truth`, from the world's `SHARES`).

Candidates are CNN6 and CNN10 states (random initialisation; the cost does not depend on the weights) on
tasks of written log-mels with planted class structure (1,000, 2,000 and 3,000 clips of 1 s).

Usage: .venv/bin/python benchmarks/bench_advise.py [--study audiotransfer-demo ...] [--width 0.125] [--skip-synthetic]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy import sparse

from audiotransfer.advise.driver import Task, advise, study_candidates, study_tasks
from audiotransfer.advise.embed import Candidate
from audiotransfer.data.features import RECIPES
from audiotransfer.data.store import write_store
from audiotransfer.manifest import Manifest
from audiotransfer.models import create_model
from audiotransfer.training.checkpoint import save_model

FRAMES = 101
TASKS = {"t1000": (1000, 5), "t2000": (2000, 10), "t3000": (3000, 2)}  # clips, classes


def make_task(root: Path, name: str, n: int, classes: int, rng: np.random.Generator) -> Task:
    """A single-label task of random log-mels with a class-specific spectral shape, and its store."""
    recipe = RECIPES["panns16k"]
    y = np.arange(n) % classes
    shapes = rng.normal(scale=3.0, size=(classes, recipe.n_mels))
    ids = [f"{name}_{i}" for i in range(n)]
    feats = {c: (rng.normal(size=(FRAMES, recipe.n_mels)) + shapes[k] - 40).astype(np.float32)
             for c, k in zip(ids, y, strict=True)}
    store = write_store(root / "stores" / name, recipe, name, feats)
    targets = sparse.csr_matrix((np.ones(n, bool), (np.arange(n), y)), shape=(n, classes))
    manifest = Manifest(name, pd.DataFrame({"clip_id": ids, "split": "train"}), [str(k) for k in range(classes)],
                        targets, task_type="multiclass", meta={"clip_seconds": 1.0})
    return Task(name, manifest, store, FRAMES)


def make_candidates(root: Path, width: float) -> list[Candidate]:
    out = []
    for i in range(10):
        torch.manual_seed(i)
        arch = "cnn6" if i < 5 else "cnn10"
        model = create_model(arch, 50, width=width, n_mels=64)
        (root / f"c{i}").mkdir(parents=True)
        save_model(root / f"c{i}" / "model.pt", model, labels=[f"/m/{k}" for k in range(50)])
        out.append(Candidate(f"{arch}_{i}", root / f"c{i}", "audiotransfer"))
    return out


def plain_inference(candidates: list[Candidate], tasks: list[Task], batch: int = 64) -> float:
    """Seconds of `model(x)` over every task's clips for every candidate (crops read as the advisor does)."""
    from audiotransfer.advise.embed import load_candidate

    start = time.perf_counter()
    for cand in candidates:
        model = load_candidate(cand)
        for task in tasks:
            rows = np.arange(task.store.num_clips)
            with torch.inference_mode():
                for lo in range(0, len(rows), batch):
                    model(torch.from_numpy(task.store.read_batch(rows[lo:lo + batch], FRAMES, crop="center")))
    return time.perf_counter() - start


def study_ratio(study: Path) -> None:
    from audiotransfer.study.results import load_results

    res = load_results(study)
    runs = res.runs[(res.runs["kind"] == "finetune") & (res.runs["status"] == "done")]
    grid = float(runs["duration_s"].sum())
    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        advice = advise(study_candidates(res), study_tasks(res), Path(cache), progress=False)
        seconds = time.perf_counter() - start
    print(f"\n3. study {study}: advisor {seconds:.1f} s ({advice.forward_passes} forward passes, all six "
          f"estimators) vs the grid's {len(runs)} fine-tuning runs {grid:.0f} s: ratio {seconds / grid:.4f} "
          f"({grid / seconds:.0f}x less)", flush=True)
    for line in advice.lines.values():
        print(f"   {line}")


def validate(studies: list[Path]) -> None:
    """Per estimator over all studies: mean tau_w, top-1 = best cells, matched top-1 among category states."""
    import yaml

    from audiotransfer.advise.rank import ESTIMATORS
    from audiotransfer.analysis.advisor import advisor_check
    from audiotransfer.analysis.scores import score_table
    from audiotransfer.demo.ground_truth import check_advisor
    from audiotransfer.study.results import load_results

    cells, matched = [], {e: [0, 0] for e in ESTIMATORS}
    for study in studies:
        res = load_results(study)
        check = advisor_check(res, score_table(res.test, "uar"), progress=False)
        cells.append(check.cells.assign(study=str(study)))
        spec = yaml.safe_load((study / "study.yaml").read_text()) if (study / "study.yaml").exists() else {}
        states = (spec.get("pretraining") or {}).get("states") or {}
        for name in ESTIMATORS:
            found = check_advisor(check.scores, name, states)
            matched[name][0] += sum(c.agrees for c in found)
            matched[name][1] += len(found)
    table = pd.concat(cells).groupby("estimator", sort=False).agg(
        tau_w=("tau_w", "mean"), rho=("rho", "mean"), top1_best=("top1_is_best", "sum"),
        within_ci=("within_best_ci", "sum"), cells=("task", "size"))
    table["top1_matched"] = [f"{matched[e][0]} of {matched[e][1]}" for e in table.index]
    print(f"\n4. over {len(studies)} studies (task x protocol cells; matched = top-1 category state shares "
          "generators with the task, per task x study):")
    print(table.to_string(float_format=lambda v: f"{v:+.2f}"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--study", type=Path, nargs="+", default=[],
                        help="finished study folders (e.g. the demo's) for the grid ratio and the validation")
    parser.add_argument("--width", type=float, default=0.125)
    parser.add_argument("--skip-synthetic", action="store_true", help="only the --study measurements")
    args = parser.parse_args()
    if not args.skip_synthetic:
        synthetic(args.width)
    for study in args.study:
        study_ratio(study)
    if args.study:
        validate(args.study)


def synthetic(width: float) -> None:
    """Parts 1 and 2: 10 candidates x 3 written tasks."""
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        tasks = [make_task(root, name, n, c, rng) for name, (n, c) in TASKS.items()]
        candidates = make_candidates(root / "models", width)
        clips = sum(t.store.num_clips for t in tasks) * len(candidates)
        start = time.perf_counter()
        first = advise(candidates, tasks, root / "cache", estimators=["knn"], progress=False)
        cold = time.perf_counter() - start
        embed_s = sum(sum(d.values()) for d in first.embed_seconds.values())
        print(f"1. embeddings: {clips} clip-passes in {embed_s:.1f} s ({clips / embed_s:.0f} clips/s; first advice "
              f"with kNN: {cold:.1f} s wall)", flush=True)
        small = tasks[0]  # the baseline on the smallest task, timed back to back with a fresh embedding pass
        plain = plain_inference(candidates, [small])
        again = advise(candidates, [small], root / "cache-again", estimators=["nce"], progress=False)
        mine = sum(again.embed_seconds[small.name].values())
        print(f"   on {small.name}: embeddings {mine:.1f} s vs plain inference {plain:.1f} s of the same "
              f"{small.store.num_clips * len(candidates)} clip-passes: ratio {mine / plain:.2f}", flush=True)
        start = time.perf_counter()
        warm = advise(candidates, tasks, root / "cache", progress=False)
        total = time.perf_counter() - start
        assert warm.forward_passes == 0
        per = warm.long.groupby("estimator", sort=False)["seconds"].sum()
        print(f"2. all estimators, {len(candidates)} candidates x {len(tasks)} tasks, embeddings cached: "
              f"{total:.1f} s wall (target < 60 s): " + ", ".join(f"{k} {v:.1f} s" for k, v in per.items()), flush=True)


if __name__ == "__main__":
    main()
