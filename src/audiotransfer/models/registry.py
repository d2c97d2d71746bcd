"""Named architectures: the PANNs CNN family as layer specifications, and `create_model`.

A spec says how many conv blocks a network has, their channel counts at width 1, the kernel size and
whether a block holds one conv (CNN6: 5x5) or two (CNN10, CNN14: 3x3), as in Kong et al. 2020.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from audiotransfer.errors import UserError, did_you_mean, suggest

if TYPE_CHECKING:
    from audiotransfer.models.cnn import AudioCNN


@dataclass(frozen=True)
class ArchSpec:
    """Layer layout of one PANNs CNN at width 1."""

    channels: tuple[int, ...]
    kernel: int
    convs_per_block: int

    @property
    def num_blocks(self) -> int:
        return len(self.channels)

    @property
    def min_size(self) -> int:
        """Fewest mel bins (and frames) the 2x2 poolings leave at least one of (up to five pool)."""
        return 2 ** min(self.num_blocks, 5)


ARCHITECTURES: dict[str, ArchSpec] = {
    "cnn6": ArchSpec(channels=(64, 128, 256, 512), kernel=5, convs_per_block=1),
    "cnn10": ArchSpec(channels=(64, 128, 256, 512), kernel=3, convs_per_block=2),
    "cnn14": ArchSpec(channels=(64, 128, 256, 512, 1024, 2048), kernel=3, convs_per_block=2),
}


def get_spec(name: str) -> ArchSpec:
    """The spec of architecture `name` (UserError with close names when unknown)."""
    if name not in ARCHITECTURES:
        hint = suggest(name, ARCHITECTURES)
        raise UserError(
            f"unknown model {name!r}" + did_you_mean(hint),
            fix=f"use one of: {', '.join(ARCHITECTURES)}",
        )
    return ARCHITECTURES[name]


def scaled(channels: int, width: float) -> int:
    """Channel count at a width multiplier (at least 1)."""
    return max(1, round(channels * width))


def create_model(name: str, num_classes: int, width: float = 1.0, n_mels: int = 64) -> AudioCNN:
    """A randomly initialised `AudioCNN` (PANNs initialisation) of architecture `name`."""
    from audiotransfer.models.cnn import AudioCNN

    if width <= 0:
        raise UserError(f"model width must be positive, got {width}", fix="use e.g. 1.0, 0.5 or 0.125")
    if n_mels < get_spec(name).min_size:
        raise UserError(
            f"{name} pools the mel axis {get_spec(name).min_size}-fold; {n_mels} mel bins are too few",
            fix=f"use features with at least {get_spec(name).min_size} mel bins",
        )
    if num_classes < 1:
        raise UserError(f"a model needs at least one output class, got {num_classes}")
    return AudioCNN(name=name, num_classes=num_classes, width=width, n_mels=n_mels)
