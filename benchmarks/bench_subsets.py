"""Benchmark: parse a 2,041,789-row AudioSet-format segment list and build the 13 paper subsets.

The list is generated (real balanced + eval rows resampled with new YTIDs) in a child process, so the
peak memory printed is that of parsing and building only. Target: parse + build under 60 s, peak RSS
under 2 GB. Baseline in the same run: pandas tokenizing the same file without any label handling.

    .venv/bin/python benchmarks/bench_subsets.py [--rows N] [--save]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("AUDIOTRANSFER_SHARED", REPO.parent / "shared")) / "data" / "audioset"
ALPHABET = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", dtype=np.uint8)
ROWS = 2_041_789


def generate(path: Path, rows: int, seed: int = 0) -> None:
    """Write `rows` segments in the official format: real label lists, fresh unique 11-char YTIDs."""
    from audiotransfer.ontology.segments import COLUMNS

    options = {"skiprows": 3, "header": None, "names": COLUMNS, "skipinitialspace": True, "dtype": str}
    real = pd.concat([pd.read_csv(SHARED / f, **options) for f in ("balanced_train_segments.csv", "eval_segments.csv")])
    rng = np.random.default_rng(seed)
    pick = real.iloc[rng.integers(0, len(real), rows)].reset_index(drop=True)
    ids = pd.Series(ALPHABET[rng.integers(0, 64, (rows, 11))].view("S11").ravel().astype(str))
    if ids.duplicated().any():
        raise SystemExit("random YTIDs collided; rerun with another seed")
    lines = ids + ", " + pick["start"] + ", " + pick["end"] + ', "' + pick["labels"] + '"'
    header = (
        "# Segments csv created by benchmarks/bench_subsets.py\n"
        f"# num_ytids={rows}, num_segs={rows}, resampled from the balanced and eval lists\n"
        "# YTID, start_seconds, end_seconds, positive_labels\n"
    )
    path.write_text(header + "\n".join(lines) + "\n")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=ROWS)
    parser.add_argument("--save", action="store_true", help="also time saving the 13 manifests")
    args = parser.parse_args()
    from audiotransfer.ontology import Ontology, build_subset, load_subset_file, read_segments

    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "unbalanced_train_segments.csv"
        t0 = time.perf_counter()
        child = multiprocessing.get_context("spawn").Process(target=generate, args=(big, args.rows))
        child.start()
        child.join()
        if child.exitcode:
            sys.exit(child.exitcode)
        print(f"generated {args.rows:,} rows ({big.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t0:.1f} s")

        t0 = time.perf_counter()
        pd.read_csv(big, skiprows=3, header=None, skipinitialspace=True, engine="c")
        baseline = time.perf_counter() - t0

        t0 = time.perf_counter()
        onto = Ontology.load(SHARED / "ontology.json", SHARED / "class_labels_indices.csv")
        segments = read_segments(big, onto.trainable)
        eval_segments = read_segments(SHARED / "eval_segments.csv", onto.trainable)
        parse = time.perf_counter() - t0

        specs = load_subset_file(REPO / "examples" / "subsets" / "paper.yaml")
        build = save = 0.0
        rows = []
        for name, spec in specs.items():
            t0 = time.perf_counter()
            manifest = build_subset(name, spec, segments, onto, eval_segments)
            build += time.perf_counter() - t0
            if args.save:
                t0 = time.perf_counter()
                manifest.save(Path(tmp) / "manifests")
                save += time.perf_counter() - t0
            rows.append((name, manifest.split_sizes().get("train", 0), manifest.num_classes))
            del manifest

    for name, clips, classes in rows:
        print(f"  {name:24s} {clips:>9,} train clips  {classes:>3} classes")
    total = parse + build
    peak = peak_rss_mb()
    print(f"baseline  pandas tokenize only : {baseline:6.2f} s")
    print(f"parse     {len(segments):,} rows + eval   : {parse:6.2f} s  ({parse / baseline:.2f}x baseline)")
    print(f"build     13 paper subsets     : {build:6.2f} s")
    if args.save:
        print(f"save      13 manifests         : {save:6.2f} s")
    print(f"total     parse + build        : {total:6.2f} s   (target < 60 s)  {'OK' if total < 60 else 'SLOW'}")
    print(f"peak RSS  parse + build        : {peak:6.0f} MB  (target < 2048 MB) {'OK' if peak < 2048 else 'HIGH'}")


if __name__ == "__main__":
    main()
