"""Shared fixtures: the real AudioSet metadata when `../shared` is present, and small written fixtures."""

from __future__ import annotations

import os
from pathlib import Path

# every Ray a test starts stays on 127.0.0.1 (Ray reads this when imported, and its processes inherit it)
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

import pytest
import torch

torch.set_num_threads(int(os.environ.get("AUDIOTRANSFER_TEST_THREADS", "2")))

REPO = Path(__file__).resolve().parents[1]
SHARED_AUDIOSET = Path(os.environ.get("AUDIOTRANSFER_SHARED", REPO.parent / "shared")) / "data" / "audioset"


@pytest.fixture(scope="session")
def audioset_dir() -> Path:
    """The real AudioSet metadata folder (ontology, label index, balanced and eval lists)."""
    if not (SHARED_AUDIOSET / "ontology.json").exists():
        pytest.skip(f"real AudioSet metadata not found at {SHARED_AUDIOSET}")
    return SHARED_AUDIOSET
