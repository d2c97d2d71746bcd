"""Run files: atomic saves, RNG state capture, the best-weights `model.pt` and `load_model`.

`checkpoint.pt` (written by the engine) holds model, optimizer, scheduler, loader position, every RNG
state and the epoch history, so a killed run restarts exactly where it stopped; it holds only tensors and
plain containers and is read with `weights_only=True`, so a crafted file cannot run code. `model.pt` holds the best
weights with everything needed to use the model elsewhere (`models/artifact.py` defines its format).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from audiotransfer.errors import UserError
from audiotransfer.files import write_atomic
from audiotransfer.models.artifact import ModelCard, save_model_file
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
    """Python, NumPy and torch (CPU and CUDA) generator states, as tensors and plain numbers (a form
    `torch.load(weights_only=True)` reads back)."""
    version, words, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    state: dict[str, Any] = {
        "python": {"version": version, "state": torch.tensor(words, dtype=torch.int64), "gauss": gauss},
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    py, npy = state["python"], state["numpy"]
    random.setstate((py["version"], tuple(py["state"].tolist()), py["gauss"]))
    np.random.set_state(
        (npy["kind"], npy["keys"].numpy().astype(np.uint32), npy["pos"], npy["has_gauss"], npy["cached_gaussian"])
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A resume checkpoint, read with `weights_only=True`: tensors and plain containers only, so a crafted
    file (a study folder from elsewhere) is refused instead of running code."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UserError(
            f"{path}: unreadable or unsafe resume checkpoint ({type(exc).__name__}: {exc})",
            fix="delete it to restart the run from the beginning (only checkpoints this package wrote load)",
        ) from None


def save_model(path: Path, model: AudioCNN, **card: Any) -> None:
    """`model.pt` (format 2) of a model and the `ModelCard` fields given (labels, kind, frontend...)."""
    save_model_file(path, model, ModelCard(config=model.config, **card))


def load_model(run_dir: str | Path) -> AudioCNN:
    """The best model of a finished run directory (or of a `model.pt` path), in eval mode on CPU.

    The model takes log-mel batches (clips, frames, mels) and returns logits; `embed` gives its embeddings.

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> import torch
        >>> from audiotransfer.models import create_model
        >>> run = Path(tempfile.mkdtemp())  # a run folder as training leaves it, here with untrained weights
        >>> save_model(run / "model.pt", create_model("cnn6", 3, width=0.125, n_mels=32), labels=["a", "b", "c"])
        >>> model = load_model(run)
        >>> model.config["name"], model.training
        ('cnn6', False)
        >>> with torch.no_grad():
        ...     model(torch.zeros(2, 101, 32)).shape, model.embed(torch.zeros(2, 101, 32)).shape
        (torch.Size([2, 3]), torch.Size([2, 64]))
    """
    path = Path(run_dir)
    path = path / MODEL if path.is_dir() else path
    if not path.is_file():
        raise UserError(f"{path}: no model file", fix="finish the run first (rerun it to resume)")
    return model_from_checkpoint(path, source="audiotransfer").eval()
