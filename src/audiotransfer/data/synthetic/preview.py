"""`audiotransfer synth preview`: log-mel pictures and WAV examples of every class and task class.

One PNG per pre-training class and per task class, each showing several independent examples side by
side (so both the class identity and its variation are visible), computed with the toolkit's own
log-mel (`LogMel(RECIPES["panns16k"])`), plus one WAV per picture to listen to.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

import audiotransfer.data.synthetic.world as world
from audiotransfer.data.synthetic.classes import CLASSES
from audiotransfer.data.synthetic.generate import write_wav
from audiotransfer.progress import progress as show_progress


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def _examples(seed: int, examples: int) -> dict[str, list[np.ndarray]]:
    """Waveforms to show: `examples` per class (alone over the noise floor) and per task class."""
    shown: dict[str, list[np.ndarray]] = {}
    for c, cls in enumerate(CLASSES):
        shown[f"classes/{slug(cls.name)}"] = [
            world.render_single(world.clip_rng(seed, "preview", c * 100 + k, 1), cls) for k in range(examples)
        ]
    for task, labels in world.TASK_LABELS.items():
        for j, label in enumerate(labels):
            clips = []
            for k in range(examples):
                index = j + len(labels) * k
                clips.append(world.render_task(task, seed, index, world.task_spec(task, seed, index, 60)))
            shown[f"tasks/{task}_{slug(label)}"] = clips
    return shown


def preview(out_dir: str | Path, seed: int = 0, examples: int = 3, progress: bool = True) -> list[Path]:
    """Write `classes/*.png|wav` and `tasks/*.png|wav` under `out_dir`; return the PNG paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from audiotransfer.data.features import RECIPES, LogMel

    recipe = RECIPES["panns16k"]
    logmel = LogMel(recipe)
    out = Path(out_dir)
    for sub in ("classes", "tasks"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    written = []
    for key, clips in show_progress(_examples(seed, examples).items(), desc="preview", enabled=progress):
        fig, axes = plt.subplots(1, len(clips), figsize=(3.2 * len(clips), 2.6), squeeze=False)
        for ax, clip in zip(axes[0], clips, strict=True):
            with torch.no_grad():
                mel = logmel(torch.from_numpy(clip.astype(np.float32))[None])[0].numpy()
            seconds = len(clip) / recipe.sample_rate
            ax.imshow(mel.T, origin="lower", aspect="auto", cmap="magma", vmin=-100, vmax=0,
                      extent=(0.0, seconds, 0, recipe.n_mels))  # fmt: skip
            ax.set_xlabel("s")
        axes[0][0].set_ylabel("mel bin")
        fig.suptitle(key.split("/", 1)[1].replace("_", " "), fontsize=10)
        fig.tight_layout()
        png = out / f"{key}.png"
        fig.savefig(png, dpi=80)
        plt.close(fig)
        write_wav(out / f"{key}.wav", clips[0])
        written.append(png)
    return written
