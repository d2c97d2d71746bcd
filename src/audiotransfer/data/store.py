"""The packed feature store: every clip's log-mel features in a few large files, read by index.

The pieces live in their own modules: `store_format` (the on-disk layout and its version, the shard
check), `store_reader` (`FeatureStore`), `store_writer` (`StoreWriter`, `write_store`) and `extract`
(`extract_features`). This module is the public door to them.
"""

from __future__ import annotations

from audiotransfer.data.extract import extract_features
from audiotransfer.data.store_format import STORE_VERSION, lost_rows, read_index
from audiotransfer.data.store_reader import FeatureStore
from audiotransfer.data.store_writer import StoreWriter, write_store

__all__ = ["STORE_VERSION", "FeatureStore", "StoreWriter", "extract_features", "lost_rows", "read_index", "write_store"]
