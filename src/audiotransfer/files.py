"""Atomic file writes (a kill never leaves a half-written artifact, a full disk says so) and strict YAML."""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from audiotransfer.errors import UserError

LOW_SPACE = 16 << 20  # a failed write with less free space than this is taken to be a full disk


def write_atomic(path: Path, write: Callable[[Path], object], suffix: str = ".tmp") -> None:
    """Call `write(tmp)` on a temporary name beside `path`, then rename it into place; on any failure the
    temporary file is removed (and a full disk is a UserError saying so)."""
    tmp = path.with_name(path.name + suffix)
    try:
        with disk_full_is_user_error(path):
            write(tmp)
            os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def disk_full_is_user_error(path: Path) -> Iterator[None]:
    """Turn 'no space left on device' (ENOSPC, EDQUOT) while writing `path` into one clear UserError."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise UserError(
            f"{path}: disk full ({os.strerror(exc.errno)}) while writing",
            fix="free disk space (or move the study / store to a larger disk) and rerun: finished work is kept",
        ) from None
    except RuntimeError as exc:  # torch.save reports a failed write as a RuntimeError without the errno
        if "write" not in str(exc) or shutil.disk_usage(path.parent).free > LOW_SPACE:
            raise
        raise UserError(
            f"{path}: disk full while writing",
            fix="free disk space (or move the study / store to a larger disk) and rerun: finished work is kept",
        ) from None


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a mapping with the same key twice (instead of keeping the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (line {key_node.start_mark.line + 1})", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep)


def load_yaml(text: str) -> Any:
    """`yaml.safe_load`, but a key given twice in one mapping is a yaml.YAMLError, not silently last-wins."""
    return yaml.load(text, Loader=_UniqueKeyLoader)
