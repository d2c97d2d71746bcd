"""Benchmark: the advisor on 10 candidate states x 3 tasks, and its cost against a study's grid.

Printed, all measured in this run:
1. embeddings: the first advice's forward passes (10 candidates x 3 tasks, store reads included) in clips/s,
   against the same models' plain inference (`model(x)`) over the same clips (the baseline);
2. all estimators on every candidate x task once the embeddings are cached (target < 60 s in all), per
   estimator, and the cached rerun's wall time;
3. with `--study DIR [DIR ...]` (finished studies) and/or `--worlds N [N ...]` (the demo on those world seeds:
   a finished `audiotransfer-demo-worldN`, or ROOT/worldN under `--root`, is reused as it is; a missing one
   is run now unless `--reuse-only`; `--quick` for the quick demo): per study the
   advisor's seconds (forward passes + all estimators, a cold cache) against the grid's (the fine-tuning
   runs' seconds recorded in its results store);
4. over all of them, per estimator and per free baseline (`largest`, `most_classes`, `random`): mean weighted
   Kendall tau against the fine-tuned and the linear-probe ranking (95% bootstrap interval over task x
   protocol cells), in how many cells its top-1 among the category states shares generators with the task
   (`demo.ground_truth`), regret and top-3 regret (fine-tuned UAR lost), seconds, advisor time / grid time,
   and the paired difference to `largest`; first over the design worlds (`--design-worlds`, default 0 1,
   plus any `--study`), then the default those choose by RULE (`choose_default`, printed), then over the
   held-out worlds (the other `--worlds`, default 2), reported only.

Candidates are CNN6 and CNN10 states (random initialisation; the cost does not depend on the weights) on
tasks of written log-mels with planted class structure (1,000, 2,000 and 3,000 clips of 1 s).

Usage: .venv/bin/python benchmarks/bench_advise.py [--worlds 0 1 2 [--quick] [--root DIR] [--reuse-only]
       [--design-worlds 0 1]] [--study DIR ...] [--width 0.125] [--skip-synthetic]
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

from audiotransfer.advise import baselines as bl
from audiotransfer.advise.driver import Task, advise, study_candidates, study_tasks
from audiotransfer.advise.embed import Candidate
from audiotransfer.advise.rank import DEFAULT
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
    feats = {
        c: (rng.normal(size=(FRAMES, recipe.n_mels)) + shapes[k] - 40).astype(np.float32)
        for c, k in zip(ids, y, strict=True)
    }
    store = write_store(root / "stores" / name, recipe, name, feats)
    targets = sparse.csr_matrix((np.ones(n, bool), (np.arange(n), y)), shape=(n, classes))
    manifest = Manifest(
        name,
        pd.DataFrame({"clip_id": ids, "split": "train"}),
        [str(k) for k in range(classes)],
        targets,
        task_type="multiclass",
        meta={"clip_seconds": 1.0},
    )
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
                    model(torch.from_numpy(task.store.read_batch(rows[lo : lo + batch], FRAMES, crop="center")))
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
    print(
        f"\n3. study {study}: advisor {seconds:.1f} s ({advice.forward_passes} forward passes, all "
        f"estimators) vs the grid's {len(runs)} fine-tuning runs {grid:.0f} s: ratio {seconds / grid:.4f} "
        f"({grid / seconds:.0f}x less)",
        flush=True,
    )
    for line in advice.lines.values():
        print(f"   {line}")


def finished_demo(folder: Path, seed: int, quick: bool) -> bool:
    """Whether `folder` holds this demo (same study spec, world `seed`) with every run done."""
    import json

    import yaml

    from audiotransfer.demo.run import demo_config
    from audiotransfer.study.results import load_results

    sidecar, spec = folder / "world" / "world.json", folder / "study.yaml"
    if not (sidecar.is_file() and spec.is_file() and (folder / "results.sqlite").is_file()):
        return False
    world = json.loads(sidecar.read_text())
    want = yaml.safe_dump({**demo_config(quick)["study"], "out": "."}, sort_keys=False)
    if world.get("params", {}).get("seed") != seed or not world.get("complete") or spec.read_text() != want:
        return False
    runs = load_results(folder).runs
    return not runs.empty and bool((runs["status"] == "done").all())


def demo_folders(worlds: list[int], root: Path | None, quick: bool, jobs: int, reuse_only: bool) -> dict[int, Path]:
    """Per world seed its finished demo, reused as it is: ROOT/worldN or ROOT/audiotransfer-demo-worldN
    (ROOT: --root, else the working directory, where `audiotransfer demo --world-seed N` writes). A seed
    with none is run now into the first of those (`run_demo` resumes an interrupted one), or refused with
    `--reuse-only`."""
    from audiotransfer.demo import run_demo

    out = {}
    for seed in worlds:
        name = f"audiotransfer-demo{'-quick' if quick else ''}-world{seed}"
        places = [root / f"world{seed}", root / name] if root is not None else [Path(name)]
        found = next((p for p in places if finished_demo(p, seed, quick)), None)
        if found is not None:
            print(f"demo world {seed}: reusing the finished {found}", flush=True)
            out[seed] = found
            continue
        if reuse_only:
            raise SystemExit(f"demo world {seed}: no finished demo in {' or '.join(map(str, places))} (--reuse-only)")
        start = time.perf_counter()
        run_demo(places[0], quick=quick, jobs=jobs, progress=False, world_seed=seed)
        print(f"demo world {seed}: {places[0]} ran in {time.perf_counter() - start:.0f} s", flush=True)
        out[seed] = places[0]
    return out


def study_cells(study: Path) -> tuple[pd.DataFrame, pd.DataFrame, float]:
    """(cells of every estimator and baseline, matched top-1 rows, the grid's fine-tuning seconds)."""
    import yaml

    from audiotransfer.analysis.advisor import advisor_check, state_sizes, with_baselines
    from audiotransfer.analysis.scores import score_table
    from audiotransfer.demo.ground_truth import category_states, check_advisor, matched_states
    from audiotransfer.study.results import load_results

    res = load_results(study)
    check = advisor_check(res, score_table(res.test, "uar"), progress=False)
    spec = yaml.safe_load((study / "study.yaml").read_text()) if (study / "study.yaml").exists() else {}
    states = (spec.get("pretraining") or {}).get("states") or {}
    long = with_baselines(check.scores, state_sizes(res))
    matched = []
    for name in long["estimator"].unique():
        matched += [
            dict(estimator=name, task=c.subject.split(" ")[0], hit=float(c.agrees))
            for c in check_advisor(long, name, states)
        ]
    content, good = category_states(states), matched_states(states)
    matched += [dict(estimator=bl.RANDOM, task=t, hit=len(m) / len(content)) for t, m in good.items() if content]
    runs = res.runs[(res.runs["kind"] == "finetune") & (res.runs["status"] == "done")]
    return (
        check.cells.assign(study=str(study)),
        pd.DataFrame(matched, columns=["estimator", "task", "hit"]).assign(study=str(study)),
        float(runs["duration_s"].sum()),
    )


def summarise(studies: list[Path]) -> tuple[pd.DataFrame, float]:
    """Per estimator and baseline over `studies`: mean tau_w vs the fine-tuned and the linear-probe ranking
    with 95% bootstrap intervals over cells, the paired difference to `largest` (vs_largest, _low, _high),
    matched top-1 hits and cells, regret, top-3 regret, seconds and advisor / grid time; and the cell count."""
    parts = [study_cells(s) for s in studies]
    cells = pd.concat([p[0] for p in parts], ignore_index=True)
    matched = pd.concat([p[1] for p in parts], ignore_index=True)
    grid = sum(p[2] for p in parts)
    flat = cells.assign(cell=cells["study"] + "/" + cells["task"] + "/" + cells["protocol"])
    rows = []
    for name, part in cells.groupby("estimator", sort=False):
        row: dict[str, object] = {"estimator": name}
        for proto in ("finetune", "linear"):
            taus = part.loc[part["protocol"] == proto, "tau_w"].to_numpy()
            row[f"tau_{proto}"], row[f"tau_{proto}_low"], row[f"tau_{proto}_high"] = bl.bootstrap_mean(taus)
        versus = bl.verdict(flat[flat["protocol"] == "finetune"], str(name))
        row["vs_largest"], row["vs_largest_low"], row["vs_largest_high"] = versus.difference, versus.low, versus.high
        row["vs_largest_cells"] = versus.cells
        # the advice is one per task: each task's hit counts once per protocol cell the task has
        hits = matched[matched["estimator"] == name].merge(part[["study", "task"]], on=["study", "task"])["hit"]
        row["top1_hits"], row["top1_cells"] = hits.sum(), len(hits)
        ft = part[part["protocol"] == "finetune"]
        row["regret"], row["top3_regret"] = ft["regret"].mean(), ft["top3_regret"].mean()
        spent = part.drop_duplicates(["study", "task"])["seconds"].sum()
        row["seconds"], row["advisor/grid"] = spent, spent / grid if grid else np.nan
        rows.append(row)
    return pd.DataFrame(rows).set_index("estimator"), grid


def show(table: pd.DataFrame) -> pd.DataFrame:
    """The summary as printed: means with their intervals in one column each."""

    def span(prefix: str) -> pd.Series:
        m, lo, hi = (table[f"{prefix}{x}"] for x in ("", "_low", "_high"))
        return pd.Series(
            [f"{a:+.2f} [{b:+.2f}, {c:+.2f}]" if np.isfinite(a) else "n/a" for a, b, c in zip(m, lo, hi, strict=True)],
            index=table.index,
        )

    out = pd.DataFrame({"tau_finetune": span("tau_finetune"), "tau_linear": span("tau_linear")})
    out["vs_largest"] = span("vs_largest")
    out["top1_matched"] = [
        f"{h:.1f} of {n}" if n else "n/a" for h, n in zip(table["top1_hits"], table["top1_cells"], strict=True)
    ]
    return out.join(table[["regret", "top3_regret", "seconds", "advisor/grid"]])


RULE = (
    "among estimators whose mean weighted tau vs fine-tuned beats `largest` (paired interval above zero), the "
    "highest mean weighted tau vs fine-tuned; one within 0.02 of it and at least 2x cheaper wins instead"
)


def choose_default(table: pd.DataFrame, margin: float = 0.02, cheaper: float = 2.0) -> tuple[str | None, str]:
    """The default by RULE from a summary (columns tau_finetune, vs_largest_low, vs_largest_cells, seconds;
    a paired interval needs `MIN_CELLS` cells; baselines are never chosen): (estimator or None, why in words)."""
    beats = table[
        ~table.index.isin(bl.BASELINES)
        & (table["vs_largest_low"] > 0)
        & (table["vs_largest_cells"] >= bl.MIN_CELLS)
        & table["tau_finetune"].notna()
    ]
    if beats.empty:
        return None, "no estimator beat `largest` (every paired interval reaches zero): keep the default and say so"
    top = str(beats["tau_finetune"].idxmax())
    best, cost = float(beats.loc[top, "tau_finetune"]), float(beats.loc[top, "seconds"])
    near = beats[(beats["tau_finetune"] >= best - margin) & (beats["seconds"] * cheaper <= cost)]
    if near.empty:
        return top, f"{top}: the highest mean tau_w vs fine-tuned ({best:+.3f}) of the {len(beats)} that beat `largest`"
    pick = str(near.sort_values(["tau_finetune", "seconds"], ascending=[False, True]).index[0])
    return pick, (
        f"{pick}: mean tau_w {near.loc[pick, 'tau_finetune']:+.3f}, within {margin} of {top}'s {best:+.3f} at "
        f"{near.loc[pick, 'seconds']:.1f} s vs {cost:.1f} s (>= {cheaper:g}x cheaper)"
    )


def validate(design: list[Path], held_out: list[Path], default: str) -> None:
    """Part 4: the table over the design studies, the default chosen by RULE from it, then the same table
    over the held-out studies, reported only."""
    for label, studies in (("design", design), ("held-out", held_out)):
        if not studies:
            continue
        table, grid = summarise(studies)
        print(
            f"\n4. {label}: {len(studies)} studies (tau_w with a 95% bootstrap interval over task x protocol cells; "
            f"vs_largest: the paired difference in fine-tuned tau_w; top1_matched: the top-1 among the category "
            f"states shares generators with the task, per task x protocol; regret in fine-tuned UAR; seconds with "
            f"the forward passes; grid {grid:.0f} s of fine-tuning):"
        )
        print(show(table).to_string(float_format=lambda v: f"{v:.3f}"))
        sizes = [b for b in ("largest", "most_classes", "parameters") if b in table.index]
        if sizes:
            best = max(sizes, key=lambda b: table.loc[b, "tau_finetune"])
            print(f"   best size baseline: {best} (mean tau_w vs fine-tuned {table.loc[best, 'tau_finetune']:+.2f})")
        if label == "design":
            chosen, why = choose_default(table)
            print(f"   rule: {RULE}\n   default by the rule: {why}")
            default = chosen or default
        else:
            row = table.loc[default] if default in table.index else None
            if row is not None:
                print(
                    f"   {default} on the held-out worlds (reported, not chosen on): mean tau_w "
                    f"{row['tau_finetune']:+.3f}, vs largest {row['vs_largest']:+.3f} "
                    f"[{row['vs_largest_low']:+.3f}, {row['vs_largest_high']:+.3f}]"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--study",
        type=Path,
        nargs="+",
        default=[],
        help="finished study folders (e.g. the demo's) for the grid ratio and the validation",
    )
    parser.add_argument(
        "--worlds",
        type=int,
        nargs="+",
        default=[],
        help="demo world seeds: reuse each finished demo (see --root), run the missing ones",
    )
    parser.add_argument(
        "--root",
        "--demo-root",
        dest="demo_root",
        type=Path,
        help="where the demos are (ROOT/worldN or ROOT/audiotransfer-demo-worldN); default ./audiotransfer-demo-worldN",
    )
    parser.add_argument("--reuse-only", action="store_true", help="never run a demo: a world without one is an error")
    parser.add_argument(
        "--design-worlds",
        type=int,
        nargs="+",
        default=[0, 1],
        help="world seeds the default is chosen on (default 0 1); the other --worlds are held out, only reported",
    )
    parser.add_argument("--quick", action="store_true", help="the quick demo (a smoke test, not the evidence)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument(
        "--default", default=DEFAULT, help="the estimator reported on the held-out worlds when the rule chooses none"
    )
    parser.add_argument("--width", type=float, default=0.125)
    parser.add_argument("--skip-synthetic", action="store_true", help="only the --study / --worlds measurements")
    parser.add_argument("--skip-ratio", action="store_true", help="no cold-cache advise per study (part 3)")
    args = parser.parse_args()
    if not args.skip_synthetic:
        synthetic(args.width)
    demos = demo_folders(args.worlds, args.demo_root, args.quick, args.jobs, args.reuse_only)
    design = list(args.study) + [f for w, f in demos.items() if w in args.design_worlds]
    held_out = [f for w, f in demos.items() if w not in args.design_worlds]
    for study in [] if args.skip_ratio else [*design, *held_out]:
        study_ratio(study)
    if design or held_out:
        validate(design, held_out, args.default)


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
        print(
            f"1. embeddings: {clips} clip-passes in {embed_s:.1f} s ({clips / embed_s:.0f} clips/s; first advice "
            f"with kNN: {cold:.1f} s wall)",
            flush=True,
        )
        small = tasks[0]  # the baseline on the smallest task, timed back to back with a fresh embedding pass
        plain = plain_inference(candidates, [small])
        again = advise(candidates, [small], root / "cache-again", estimators=["nce"], progress=False)
        mine = sum(again.embed_seconds[small.name].values())
        print(
            f"   on {small.name}: embeddings {mine:.1f} s vs plain inference {plain:.1f} s of the same "
            f"{small.store.num_clips * len(candidates)} clip-passes: ratio {mine / plain:.2f}",
            flush=True,
        )
        start = time.perf_counter()
        warm = advise(candidates, tasks, root / "cache", progress=False)
        total = time.perf_counter() - start
        assert warm.forward_passes == 0
        per = warm.long.groupby("estimator", sort=False)["seconds"].sum()
        print(
            f"2. all estimators, {len(candidates)} candidates x {len(tasks)} tasks, embeddings cached: "
            f"{total:.1f} s wall (target < 60 s): " + ", ".join(f"{k} {v:.1f} s" for k, v in per.items()),
            flush=True,
        )


if __name__ == "__main__":
    main()
