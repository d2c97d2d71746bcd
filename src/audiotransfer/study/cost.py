"""What a study will cost before it starts: clip-epochs per run turned into hours from a throughput figure.

The figure is training clips per second for 10 s crops on one accelerator: given (`study plan
--clips-per-second N`) or measured and saved per model by `benchmarks/bench_gpu.py` (a JSON file,
`AUDIOTRANSFER_THROUGHPUT` or ~/.cache/audiotransfer/throughput.json). The CNNs' cost grows linearly with
the crop, so a run of C clip-epochs on crops of s seconds takes C * (s / 10) / N seconds. Evaluation
passes and data preparation are not counted (a few % of a training run). A public pre-trained model's run
(a plan row whose `format` is set) is not estimated: its clip-epochs pass through a network of another size
and kind than the CNNs the figures measure, so its hours are NaN and its clip-epochs are counted apart.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from audiotransfer.errors import UserError
from audiotransfer.files import write_atomic

REFERENCE_SECONDS = 10.0


def throughput_file() -> Path:
    """Where bench_gpu.py saves its figures and `study plan` looks for them."""
    default = Path("~/.cache/audiotransfer/throughput.json")
    return Path(os.environ.get("AUDIOTRANSFER_THROUGHPUT", default)).expanduser()


def load_throughput(path: Path | None = None) -> dict[str, dict[str, Any]]:
    """Saved figures by model name ({} when none was saved)."""
    path = path or throughput_file()
    if not path.exists():
        return {}
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError) as exc:
        raise UserError(
            f"{path}: saved throughput figures cannot be read ({exc})",
            fix="delete the file and run benchmarks/bench_gpu.py again",
        ) from None


def save_throughput(model: str, clips_per_second: float, device: str, path: Path | None = None, **details: Any) -> Path:
    """Record a model's measured training throughput (10 s crops) for later `study plan` estimates."""
    path = path or throughput_file()
    figures = load_throughput(path)
    figures[model] = {
        "clips_per_second": float(clips_per_second),
        "device": device,
        "crop_seconds": REFERENCE_SECONDS,
        "measured": datetime.now(UTC).isoformat(timespec="seconds"),
        **details,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, lambda p: p.write_text(json.dumps(figures, indent=1) + "\n"))
    return path


def add_hours(
    table: pd.DataFrame, clips_per_second: float | None = None, saved: dict[str, dict[str, Any]] | None = None
) -> tuple[pd.DataFrame, str]:
    """`table` (plan rows with clip_epochs, crop_seconds, model) plus `hours`, and where the figure came from.

    A given `clips_per_second` applies to every CNN; otherwise each run uses its model's saved figure
    (NaN hours for a model without one, and for a public model's run: `table["format"]` set).
    """
    if clips_per_second is not None and clips_per_second <= 0:
        raise UserError(f"--clips-per-second is {clips_per_second}", fix="give a positive throughput")
    saved = saved if saved is not None else load_throughput()
    if clips_per_second is not None:
        rate = pd.Series(float(clips_per_second), index=table.index)
        source = f"{clips_per_second:,.0f} clips/s (10 s crops, given)"
    else:
        rate = table["model"].map(lambda m: saved.get(m, {}).get("clips_per_second", np.nan)).astype(float)
        known = sorted({m for m in table["model"] if m in saved})
        source = (
            ", ".join(
                f"{m} {saved[m]['clips_per_second']:,.0f} clips/s on {saved[m].get('device', '?')}" for m in known
            )
            + " (saved by bench_gpu.py)"
            if known
            else ""
        )
    out = table.copy()
    out["hours"] = out["clip_epochs"] * (out["crop_seconds"] / REFERENCE_SECONDS) / rate / 3600
    out.loc[public_rows(out), "hours"] = np.nan
    return out, source


def public_rows(table: pd.DataFrame) -> pd.Series:
    """The plan rows of public pre-trained models' runs (their `format` set), whose cost is not estimated."""
    if "format" not in table:
        return pd.Series(False, index=table.index)
    return table["format"].notna() & (table["format"].astype(str) != "")


def cost_line(table: pd.DataFrame) -> str:
    """The plan's cost in CNN clip-epochs (all, still to run), public models' runs counted apart."""
    public, todo = public_rows(table), table["status"] != "done"
    cnn = table.loc[~public, "clip_epochs"]
    line = f"cost {cnn.sum():,} CNN clip-epochs in all, {cnn[todo].sum():,} still to run"
    if public.any():
        families = ", ".join(sorted(set(table.loc[public, "format"].astype(str))))
        line += (
            f"; {int(public.sum())} runs of public models ({families}: "
            f"{table.loc[public, 'clip_epochs'].sum():,} clip-epochs) not estimated: their networks are "
            "not the CNNs the cost model measures"
        )
    return line


# ------------------------------------------------------------------------------------------- disk
FEATURE_BYTES = 2  # the feature store keeps float16 log-mels


def model_size(model: str, width: float, n_mels: int, num_classes: int) -> tuple[int, int]:
    """Bytes of a model's float32 weights and statistics (its `model.pt`), and its embedding width; the
    model is built on the meta device, so nothing is allocated."""
    import torch

    from audiotransfer.models.cnn import create_model

    with torch.device("meta"):
        net = create_model(model, num_classes, width=width, n_mels=n_mels)
    tensors = [*net.parameters(), *net.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors), net.embedding_dim


def run_bytes(
    model: str, width: float, n_mels: int, num_classes: int, linear: bool, embedded_clips: int, keep_checkpoint: bool
) -> int:
    """Disk of one finished run folder: `model.pt`; a linear probe's cached embeddings (float32, every clip
    of the task); a kept resume checkpoint (weights and Adam's two moments)."""
    weights, dim = model_size(model, width, n_mels, num_classes)
    return weights + (4 * dim * embedded_clips if linear else 0) + (3 * weights if keep_checkpoint else 0)


def store_bytes(clips: int, seconds: float | None, sample_rate: int, hop_length: int, n_mels: int) -> int:
    """Disk of a feature store holding `clips` clips of about `seconds` each (10 s when unknown)."""
    frames = round((seconds or REFERENCE_SECONDS) * sample_rate) // hop_length + 1
    return clips * frames * n_mels * FEATURE_BYTES
