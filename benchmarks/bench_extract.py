"""Benchmark: log-mel extraction of 10 s clips at 16 kHz, clips per second per core.

Ours (the torch `LogMel`, one thread) against librosa `melspectrogram` + `power_to_db` with the same
parameters (one thread, after a warm-up call), on the same clips in the same run; target ratio >= 2.
Also: the full pipeline (`extract_features`: decode WAV, log-mel, write the store) with one job, and the
store's disk bytes per clip against raw float32 features.

    .venv/bin/python benchmarks/bench_extract.py [--clips N]
"""

from __future__ import annotations

import argparse
import os

for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(var, "1")  # per-core figures: pin every library to one thread

import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import soundfile as sf  # noqa: E402
import torch  # noqa: E402

from audiotransfer.data.features import RECIPES, LogMel  # noqa: E402
from audiotransfer.data.store import extract_features  # noqa: E402
from audiotransfer.manifest import from_label_lists  # noqa: E402


def clips(n: int, rate: int, seconds: float = 10.0) -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(round(rate * seconds)) / rate
    tones = np.sin(2 * np.pi * rng.uniform(100, 4000, (n, 1)) * t)
    return (0.3 * tones + 0.05 * rng.standard_normal((n, t.size))).astype(np.float32)


def rate(fn: object, items: np.ndarray) -> float:
    fn(items[0])  # warm-up (librosa caches its filter bank and FFT plans on the first call)
    start = time.perf_counter()
    for x in items:
        fn(x)
    return len(items) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clips", type=int, default=40)
    args = parser.parse_args()
    import librosa

    torch.set_num_threads(1)
    r = RECIPES["panns16k"]
    data = clips(args.clips, r.sample_rate)
    module = LogMel(r)

    def ours(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return module(torch.from_numpy(x)[None])[0].numpy()

    def reference(x: np.ndarray) -> np.ndarray:
        mel = librosa.feature.melspectrogram(
            y=x,
            sr=r.sample_rate,
            n_fft=r.n_fft,
            hop_length=r.hop_length,
            win_length=r.win_length,
            window="hann",
            center=True,
            pad_mode="reflect",
            power=2.0,
            n_mels=r.n_mels,
            fmin=r.fmin,
            fmax=r.fmax,
        )
        return librosa.power_to_db(mel, ref=r.ref, amin=r.amin, top_db=r.top_db).T

    diff = float(np.abs(ours(data[0]) - reference(data[0])).max())
    librosa_rate = rate(reference, data)
    our_rate = rate(ours, data)
    print(
        f"log-mel, 10 s clips at 16 kHz, one core: ours {our_rate:.1f} clips/s, librosa {librosa_rate:.1f} "
        f"clips/s, ratio {our_rate / librosa_rate:.2f}x (target >= 2x); max |diff| {diff:.2e} dB"
    )

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "audio"
        root.mkdir()
        paths = []
        for i, x in enumerate(data):
            paths.append(f"{i:04d}.wav")
            sf.write(root / paths[-1], x, r.sample_rate, subtype="PCM_16")
        table = pd.DataFrame({"clip_id": [p[:-4] for p in paths], "split": "train", "path": paths})
        manifest = from_label_lists(
            "bench",
            table,
            [["x"]] * len(paths),
            task_type="multiclass",
            meta={"root": str(root), "corpus": "bench", "clip_seconds": 10.0},
        )
        start = time.perf_counter()
        store = extract_features(manifest, Path(tmp) / "store", r, jobs=1, progress=False)
        pipeline = len(paths) / (time.perf_counter() - start)
        size = sum(p.stat().st_size for p in (Path(tmp) / "store").rglob("*") if p.is_file())
        raw = int(store.lengths(np.arange(store.num_clips)).sum()) * r.n_mels * 4
        print(f"extract_features (decode 16-bit WAV + log-mel + store), one job: {pipeline:.1f} clips/s")
        print(
            f"disk: {size / store.num_clips / 1024:.1f} KiB per clip (store, all files) vs "
            f"{raw / store.num_clips / 1024:.1f} KiB raw float32: {size / raw:.3f}x"
        )


if __name__ == "__main__":
    main()
