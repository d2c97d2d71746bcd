"""Run files: atomic saves, RNG state capture, the best-weights `model.pt` and `load_model`.

`checkpoint.pt` (written by the engine) holds model, optimizer, scheduler, loader position, every RNG
state and the epoch history, so a killed run restarts exactly where it stopped. `model.pt` holds the best
weights with the model config and the label set, everything needed to rebuild the model elsewhere.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from audiotransfer.errors import UserError
from audiotransfer.files import write_atomic
from audiotransfer.models.checkpoints import model_from_checkpoint
from audiotransfer.models.cnn import AudioCNN

CHECKPOINT = "checkpoint.pt"
MODEL = "model.pt"
METRICS = "metrics.json"


def atomic_save(obj: Any, path: Path) -> None:
    """torch.save to a temporary file, then rename: a kill never leaves a half-written file."""
    write_atomic(path, lambda tmp: torch.save(obj, tmp))


def atomic_write_text(text: str, path: Path) -> None:
    write_atomic(path, lambda tmp: tmp.write_text(text))


def rng_state() -> dict[str, Any]:
    """Python, NumPy and torch (CPU and CUDA) generator states."""
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A resume checkpoint (trusted: written by this package, holds RNG tuples and NumPy arrays)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise UserError(
            f"{path}: unreadable resume checkpoint ({type(exc).__name__})",
            fix="delete it to restart the run from the beginning",
        ) from None


def save_model(path: Path, model: AudioCNN, **meta: Any) -> None:
    """`model.pt`: weights, the config that rebuilds the model, and run metadata (labels, kind...)."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    atomic_save({"model": state, "config": model.config, **meta}, path)


def load_model(run_dir: str | Path) -> AudioCNN:
    """The best model of a finished run directory (or of a `model.pt` path), in eval mode on CPU."""
    path = Path(run_dir)
    path = path / MODEL if path.is_dir() else path
    if not path.is_file():
        raise UserError(f"{path}: no model file", fix="finish the run first (rerun it to resume)")
    return model_from_checkpoint(path, source="audiotransfer").eval()
