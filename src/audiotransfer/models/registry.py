"""Named architectures: the PANNs CNN family as layer specifications (`models.cnn` builds them).

A spec says how many conv blocks a network has, their channel counts at width 1, the kernel size and
whether a block holds one conv (CNN6: 5x5) or two (CNN10, CNN14: 3x3), as in Kong et al. 2020.
"""

from __future__ import annotations

from dataclasses import dataclass

from audiotransfer.errors import UserError, unknown_name


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
        raise UserError(
            unknown_name("model", name, ARCHITECTURES),
            fix=f"use one of: {', '.join(ARCHITECTURES)}",
        )
    return ARCHITECTURES[name]


def scaled(channels: int, width: float) -> int:
    """Channel count at a width multiplier (at least 1)."""
    return max(1, round(channels * width))
