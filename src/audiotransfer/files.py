"""Atomic file writes: a kill never leaves a half-written artifact behind."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def write_atomic(path: Path, write: Callable[[Path], object], suffix: str = ".tmp") -> None:
    """Call `write(tmp)` on a temporary name beside `path`, then rename it into place."""
    tmp = path.with_name(path.name + suffix)
    write(tmp)
    os.replace(tmp, path)
