"""EfficientAT MobileNetV3 (`mn04_as` ... `mn40_as`, Schmid et al. 2023), written here from the authors'
published layout (fschmid56/EfficientAT `models/mn`, `models/preprocess.py`), so their checkpoints load strictly.

Front-end (the authors' `AugmentMelSTFT` in eval mode): 32 kHz audio, pre-emphasis (-0.97), STFT (n_fft 1024,
800-sample periodic=False Hann window, hop 320 = 10 ms, centred), power, Kaldi mel banks (128 bins, 0 to
15 kHz) with a zero column for the Nyquist bin, log(x + 1e-5), then (x + 4.5) / 5. The network: a first conv,
15 inverted-residual blocks (channel squeeze-excitation where MobileNetV3 has it), a last 1x1 conv (6 x the
last block's width) and an MLP head. The clip embedding is the authors' `features` output: the last conv's
map averaged over frequency and time; layer K is the output of `features[K - 1]`, averaged over frequency.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from audiotransfer.errors import UserError
from audiotransfer.models.public.base import PublicModel, as_batch

SAMPLE_RATE, N_FFT, WIN, HOP, N_MELS, FMAX = 32000, 1024, 800, 320, 128, 15000.0
WIDTHS = {"mn04": 0.4, "mn05": 0.5, "mn10": 1.0, "mn20": 2.0, "mn30": 3.0, "mn40": 4.0}
# MobileNetV3-Large: input, kernel, expanded, output, squeeze-excitation, hard-swish, stride
BLOCKS = [
    (16, 3, 16, 16, False, False, 1), (16, 3, 64, 24, False, False, 2), (24, 3, 72, 24, False, False, 1),
    (24, 5, 72, 40, True, False, 2), (40, 5, 120, 40, True, False, 1), (40, 5, 120, 40, True, False, 1),
    (40, 3, 240, 80, False, True, 2), (80, 3, 200, 80, False, True, 1), (80, 3, 184, 80, False, True, 1),
    (80, 3, 184, 80, False, True, 1), (80, 3, 480, 112, True, True, 1), (112, 3, 672, 112, True, True, 1),
    (112, 5, 672, 160, True, True, 2), (160, 5, 960, 160, True, True, 1), (160, 5, 960, 160, True, True, 1),
]  # fmt: skip


def divisible(v: float, divisor: int = 8) -> int:
    """Channels rounded to a multiple of 8, never more than 10% below `v` (MobileNet's rule)."""
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


def conv_norm(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, act: Any = None) -> nn.Sequential:
    """Conv (no bias) + batch norm (+ activation), keys `0.weight`, `1.*` as torchvision's ConvNormActivation."""
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout, eps=0.001, momentum=0.01),
    ]
    return nn.Sequential(*layers, act(inplace=True)) if act is not None else nn.Sequential(*layers)


class SqueezeExcitation(nn.Module):
    """Channel squeeze-excitation: mean over frequency and time, two linear layers, sigmoid gate."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        squeeze = divisible(channels // 4)
        self.fc1, self.fc2 = nn.Linear(channels, squeeze), nn.Linear(squeeze, channels)

    def forward(self, x: Tensor) -> Tensor:
        scale = self.fc2(F.relu(self.fc1(x.mean(dim=(2, 3)))))
        return torch.sigmoid(scale)[:, :, None, None] * x


class ConcurrentSE(nn.Module):
    """The authors' wrapper of one or more concurrent SE layers (only the channel one in the released models)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conc_se_layers = nn.ModuleList([SqueezeExcitation(channels)])

    def forward(self, x: Tensor) -> Tensor:
        return self.conc_se_layers[0](x)


class InvertedResidual(nn.Module):
    """Expand (1x1), depthwise (kxk), optional SE, project (1x1); a residual when the shape is kept."""

    def __init__(self, cin: int, kernel: int, expanded: int, cout: int, se: bool, hs: bool, stride: int) -> None:
        super().__init__()
        act = nn.Hardswish if hs else nn.ReLU
        layers: list[nn.Module] = [conv_norm(cin, expanded, 1, act=act)] if expanded != cin else []
        layers.append(conv_norm(expanded, expanded, kernel, stride, groups=expanded, act=act))
        layers += [ConcurrentSE(expanded)] if se else []
        layers.append(conv_norm(expanded, cout, 1))
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: Tensor) -> Tensor:
        out = self.block(x)
        return out + x if self.residual else out


class EfficientAT(PublicModel):
    """EfficientAT MobileNetV3 at width `width` with its log-mel front-end (see the module docstring)."""

    family = "efficientat"
    sample_rate = SAMPLE_RATE
    frame_hop_s = HOP / SAMPLE_RATE
    window: Tensor
    mel_basis: Tensor

    def __init__(self, width: float = 1.0, num_classes: int = 527) -> None:
        super().__init__()
        blocks = [InvertedResidual(divisible(a * width), k, divisible(e * width), divisible(o * width), se, hs, s)
                  for a, k, e, o, se, hs, s in BLOCKS]  # fmt: skip
        last_in = divisible(BLOCKS[-1][3] * width)
        self.features = nn.Sequential(
            conv_norm(1, divisible(BLOCKS[0][0] * width), 3, 2, act=nn.Hardswish),
            *blocks,
            conv_norm(last_in, 6 * last_in, 1, act=nn.Hardswish),
        )
        hidden = divisible(1280 * width)
        self.classifier = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Linear(6 * last_in, hidden), nn.Hardswish(inplace=True),
            nn.Dropout(0.2, inplace=True), nn.Linear(hidden, num_classes),
        )  # fmt: skip
        self.width, self.embedding_dim, self.num_layers = width, 6 * last_in, len(self.features)
        self.register_buffer("window", torch.hann_window(WIN, periodic=False), persistent=False)
        self.register_buffer("mel_basis", F.pad(kaldi_mel_banks(), (0, 1)), persistent=False)
        self.frontend = {"type": "log-mel (EfficientAT AugmentMelSTFT)", "sample_rate": SAMPLE_RATE, "n_fft": N_FFT,
                         "win_length": WIN, "hop": HOP, "n_mels": N_MELS, "fmin": 0.0, "fmax": FMAX,
                         "preemphasis": 0.97, "log_offset": 1e-5, "normalise": "(x + 4.5) / 5"}  # fmt: skip

    def mel(self, wave: Tensor) -> Tensor:
        """The authors' eval-mode front-end: (B, N) at 32 kHz -> (B, 128, frames)."""
        x = wave[:, 1:] - 0.97 * wave[:, :-1]  # conv1d with [-0.97, 1]
        spec = torch.stft(x, N_FFT, HOP, WIN, self.window, center=True, return_complex=True)
        mel = torch.matmul(self.mel_basis, spec.real**2 + spec.imag**2)
        return ((mel + 1e-5).log() + 4.5) / 5.0

    def hidden_states(self, wave: Tensor) -> list[Tensor]:
        x = self.mel(as_batch(wave))[:, None]
        states = [x.mean(dim=2).transpose(1, 2)]
        for layer in self.features:
            x = layer(x)
            states.append(x.mean(dim=2).transpose(1, 2))
        return states

    def logits(self, wave: Tensor) -> Tensor:
        """The AudioSet head's logits (B, classes)."""
        x = self.mel(as_batch(wave))[:, None]
        return self.classifier(self.features(x))


def kaldi_mel_banks(
    n_mels: int = N_MELS, n_fft: int = N_FFT, sr: int = SAMPLE_RATE, fmin: float = 0.0, fmax: float = FMAX
) -> Tensor:
    """Kaldi's triangular mel filters (mel = 1127 ln(1 + f / 700), no VTLN warp): (n_mels, n_fft // 2)."""

    def mel(f: Any) -> Any:
        return 1127.0 * (torch.log1p(f / 700.0) if isinstance(f, Tensor) else math.log1p(f / 700.0))

    low, high = mel(fmin), mel(fmax)
    delta = (high - low) / (n_mels + 1)
    index = torch.arange(n_mels, dtype=torch.float64)[:, None]
    left, centre, right = low + index * delta, low + (index + 1) * delta, low + (index + 2) * delta
    bins = mel(sr / n_fft * torch.arange(n_fft // 2, dtype=torch.float64))[None]
    up, down = (bins - left) / (centre - left), (right - bins) / (right - centre)
    return torch.clamp(torch.minimum(up, down), min=0.0).float()


def load(path: str | Path) -> EfficientAT:
    """An EfficientAT checkpoint (the authors' state dict, MLP head); its width is read from the tensors."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise UserError(f"EfficientAT checkpoint {file} not found", fix="pass the authors' mnXX_as_*.pt file")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UserError(f"{file}: not a PyTorch state dict ({exc})", fix="pass the authors' mnXX_as_*.pt") from None
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    if not isinstance(state, dict) or "classifier.5.bias" not in state or "features.16.0.weight" not in state:
        raise UserError(f"{file}: not an EfficientAT MobileNetV3 state dict with an MLP head",
                        fix="pass an mn04..mn40 checkpoint (head_type mlp); dymn and fully-convolutional heads are "
                            "not supported")  # fmt: skip
    last = state["features.16.0.weight"].shape[0]
    width = next((w for w in WIDTHS.values() if 6 * divisible(160 * w) == last), None)
    if width is None:
        raise UserError(
            f"{file}: its last conv has {last} channels, no width of {', '.join(WIDTHS)}",
            fix="pass an mn04..mn40 checkpoint",
        )
    model = EfficientAT(width, int(state["classifier.5.bias"].shape[0]))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise UserError(
            f"{file}: does not match EfficientAT width {width}: {str(exc)[:300]}",
            fix="pass an unmodified mn04..mn40 checkpoint",
        ) from None
    return model.eval()
