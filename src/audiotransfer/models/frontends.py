"""Which front-end a checkpoint reads, and the error when it is not the one a store holds.

Our `model.pt` (format 2) names its front-end. A PANNs `.pth` carries its STFT and mel filter bank: the
filter bank's shape gives n_fft and the mel count, the published file name gives the rate (`Cnn14_16k_...`,
`Cnn14_8k_...`; no rate in the name is the 32 kHz release), and the filter bank must then equal the one that
recipe computes, so a file that fits no published recipe is refused instead of guessed. Other checkpoints
declare nothing: the caller passes a recipe.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from audiotransfer.data.features import FeatureRecipe, Frontend, mel_filterbank
from audiotransfer.errors import UserError

# the published PANNs settings per sample rate (Kong et al. 2020, audioset_tagging_cnn): (n_fft, hop, fmax)
PANNS_PUBLISHED = {32000: (1024, 320, 14000.0), 16000: (512, 160, 8000.0), 8000: (256, 80, 4000.0)}
PANNS_RATE = re.compile(r"_(8|16|32)k(?:_|\.|$)")
MELW = "logmel_extractor.melW"
STFT = "spectrogram_extractor.stft.conv_real.weight"


def panns_frontend(raw: Mapping[str, Any], where: str | Path) -> FeatureRecipe | None:
    """The log-mel recipe of a PANNs checkpoint (its raw state dict), or None when it holds no mel filter bank."""
    state = raw.get("model", raw)
    melw = state.get(MELW) if isinstance(state, Mapping) else None
    if not isinstance(melw, torch.Tensor):
        return None
    n_fft, n_mels = 2 * (melw.shape[0] - 1), int(melw.shape[1])
    match = PANNS_RATE.search(Path(str(where)).name)
    rate = int(match.group(1)) * 1000 if match else 32000
    stft = state.get(STFT)
    win = int(stft.shape[-1]) if isinstance(stft, torch.Tensor) else n_fft
    published = PANNS_PUBLISHED[rate]
    recipe = FeatureRecipe(
        sample_rate=rate,
        n_fft=n_fft,
        win_length=win,
        hop_length=published[1],
        n_mels=n_mels,
        fmin=50.0,
        fmax=published[2],
    )
    expected = mel_filterbank(rate, n_fft, n_mels, 50.0, published[2])
    if n_fft != published[0] or not np.allclose(melw.float().numpy(), expected, atol=1e-5):
        raise UserError(
            f"{where}: its mel filter bank ({n_fft // 2 + 1} x {n_mels}) is not that of the published PANNs "
            f"{rate} Hz recipe ({recipe.describe()}), so its front-end is unknown",
            fix="give the front-end it was trained with (--recipe NAME, or recipe=FeatureRecipe(...) in Python)",
        )
    return recipe


def check_frontend(model: Frontend, store: Frontend, where: str | Path, fix: str | None = None) -> None:
    """A UserError naming both front-ends when a model would read features of another front-end."""
    if model.hash == store.hash:
        return
    raise UserError(
        f"{where}: the model was trained on {model.describe()}, but the feature store holds {store.describe()}",
        fix=fix
        or "extract the task's features with the model's front-end into a store of its own "
        "(`audiotransfer features extract --recipe ...`) and train on that store",
    )
