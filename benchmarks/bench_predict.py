"""`predict` on sound files vs the evaluation path on the same files: clips per second, as a ratio.

The evaluation path is what a run does to score a clip: decode and extract its log-mels into a store
(`extract_features`), then read the whole-clip windows and score them (`BatchLoader(crop="whole")` +
`clip_outputs`). `load_model(...).predict(paths)` does the same work from the files in one call. Both run
in this process, alternating, `--repeats` times each; the best time of each is compared.
Target: predict clips/s >= 0.9 x evaluation clips/s (inference adds no cost of its own).

    .venv/bin/python benchmarks/bench_predict.py [--clips 64] [--seconds 10] [--width 0.25] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
import torch

import audiotransfer
from audiotransfer.data.features import get_recipe
from audiotransfer.data.loader import BatchLoader, clip_outputs
from audiotransfer.data.store import extract_features
from audiotransfer.manifest import Manifest, from_label_lists
from audiotransfer.models import create_model
from audiotransfer.models.artifact import ModelCard, save_model_file

RECIPE = get_recipe("panns16k")


def evaluation_path(manifest: Manifest, model: torch.nn.Module, store_dir: Path, frames: int) -> np.ndarray:
    store = extract_features(manifest, store_dir, RECIPE, progress=False)
    loader = BatchLoader(manifest, store, 64, frames, crop="whole", shuffle=False)
    with torch.inference_mode():
        return clip_outputs(loader, lambda x: torch.softmax(model(x), dim=1)).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    frames = RECIPE.frames_for(args.seconds) or 1
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ids = [f"c{i}" for i in range(args.clips)]
        for clip_id in ids:
            wave = 0.1 * rng.standard_normal(round(args.seconds * RECIPE.sample_rate))
            sf.write(root / f"{clip_id}.wav", wave.astype(np.float32), RECIPE.sample_rate, subtype="PCM_16")
        manifest = from_label_lists(
            "bench",
            pd.DataFrame({"clip_id": ids, "split": "test", "path": [f"{c}.wav" for c in ids]}),
            [[str(i % 10)] for i in range(args.clips)],
            labels=[str(c) for c in range(10)],
            task_type="multiclass",
            meta={"clip_seconds": args.seconds, "root": str(root)},
        )
        model = create_model("cnn10", 10, width=args.width).eval()
        save_model_file(
            root / "model.pt",
            model,
            ModelCard(
                config=model.config,
                frontend=RECIPE.to_dict(),
                feature_dtype="float16",
                crop_frames=frames,
                labels=manifest.labels,
                label_names=manifest.label_names,
                task_type="multiclass",
            ),
        )
        paths = [str(root / f"{c}.wav") for c in ids]
        eval_s, predict_s = [], []
        for repeat in range(args.repeats):
            t0 = time.perf_counter()
            expected = evaluation_path(manifest, model, root / f"store{repeat}", frames)
            eval_s.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            got = audiotransfer.load_model(root / "model.pt").predict(paths)
            predict_s.append(time.perf_counter() - t0)
    print(
        json.dumps(
            {
                "model": f"cnn10 width {args.width}",
                "clips": args.clips,
                "seconds_per_clip": args.seconds,
                "threads": args.threads,
                "evaluation_clips_per_s": round(args.clips / min(eval_s), 2),
                "predict_clips_per_s": round(args.clips / min(predict_s), 2),
                "ratio_predict_vs_evaluation": round(min(eval_s) / min(predict_s), 3),
                "target": ">= 0.9",
                "max_abs_diff": float(np.abs(got - expected).max()),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
