"""Benchmark: the training loader alone, from a feature store larger than RAM, per reader-thread count.

Writes (unless `--store` names one) a store of `--gib` GiB of 10 s clips (1001 frames x 64 mels,
float16, 1 GiB shards) with `StoreWriter`, then for each `--readers` count drops the page cache (root
only: `echo 3 > /proc/sys/vm/drop_caches`, so every pass starts cold) and times `BatchLoader` batches of
random 10 s crops from random clips of the whole store for `--seconds`. Prints crops/s and MB/s per
reader count. Target: >= 3,000 crops/s, what one H100-class GPU consumes pre-training CNN10.
The written store is deleted at the end unless `--keep`.

    .venv/bin/python benchmarks/bench_loader.py --gib 28 --dir /work/bench-store --readers 1,2,4,8
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd

from audiotransfer.data.features import RECIPES
from audiotransfer.data.loader import BatchLoader
from audiotransfer.data.store import FeatureStore, StoreWriter
from audiotransfer.manifest import Manifest, from_label_lists

FRAMES = 1001


def make_store(root: Path, gib: float) -> FeatureStore:
    """A store of about `gib` GiB: 10 s clips cycled from 256 distinct random ones (contents do not matter
    for read speed; nothing is compressed)."""
    recipe = RECIPES["panns16k"]
    rng = np.random.default_rng(0)
    pool = [rng.normal(-40, 10, (FRAMES, recipe.n_mels)).astype(np.float16) for _ in range(256)]
    clips = int(gib * 2**30 // pool[0].nbytes)
    writer = StoreWriter(root, recipe, "bench")
    for i in range(clips):
        writer.add(f"clip{i:08d}", pool[i % len(pool)])
        if writer.pending >= 8192:
            writer.commit()
    return writer.close()


def drop_caches() -> bool:
    """Empty the page cache so the next reads come from disk; False when not permitted."""
    subprocess.run(["sync"], check=False)
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def crops_per_second(
    manifest: Manifest, store: FeatureStore, readers: int, batch: int, seconds: float, half: bool
) -> float:
    loader = BatchLoader(manifest, store, batch, FRAMES, crop="random", seed=readers, readers=readers, half=half)
    crops, start = 0, time.perf_counter()
    for x, _ in loader:
        crops += len(x)
        if time.perf_counter() - start > seconds:
            break
    return crops / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", help="an existing store to read (nothing is written or deleted)")
    parser.add_argument("--dir", default="bench-store", help="where to write the store (default ./bench-store)")
    parser.add_argument("--gib", type=float, default=28.0, help="size of the written store")
    parser.add_argument("--readers", default="1,2,4,8", help="reader thread counts to time")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--seconds", type=float, default=20.0, help="timed seconds per reader count")
    parser.add_argument("--keep", action="store_true", help="keep the written store")
    args = parser.parse_args()
    root = Path(args.store or args.dir)
    try:
        if args.store is None:
            free = shutil.disk_usage(root.parent.resolve()).free / 2**30
            if args.gib > free - 2:
                raise SystemExit(f"{args.gib} GiB do not fit ({free:.0f} GiB free): pass a smaller --gib")
            start = time.perf_counter()
            store = make_store(root, args.gib)
            print(
                f"wrote {store.num_clips:,} clips ({store.info['bytes'] / 2**30:.1f} GiB) in "
                f"{time.perf_counter() - start:.0f} s"
            )
        store = FeatureStore(root)
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
        print(f"store {store.info['bytes'] / 2**30:.1f} GiB, RAM {ram:.1f} GiB, {os.cpu_count()} CPUs")
        manifest = from_label_lists(
            "bench", pd.DataFrame({"clip_id": list(store.clip_ids), "split": "train"}), [["a"]] * store.num_clips
        )
        rows = []
        for half in (True, False):  # float16 batches (as the engine feeds a GPU) and float32 (CPU training)
            for readers in [int(r) for r in args.readers.split(",")]:
                cold = drop_caches()
                rate = crops_per_second(manifest, store, readers, args.batch, args.seconds, half)
                rows.append(
                    {
                        "batch_dtype": "float16" if half else "float32",
                        "readers": readers,
                        "crops_per_s": round(rate),
                        "disk_MB_per_s": round(rate * FRAMES * 128 / 1e6),
                        "page_cache": "dropped" if cold else "kept (not root)",
                    }
                )
                print(rows[-1], flush=True)
        print(pd.DataFrame(rows).to_string(index=False))
    finally:
        if args.store is None and not args.keep and root.exists():
            shutil.rmtree(root)


if __name__ == "__main__":
    main()
