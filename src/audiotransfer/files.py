"""Atomic file writes (a kill never leaves a half-written artifact, a full disk says so) and strict YAML."""

from __future__ import annotations

import errno
import logging
import os
import shutil
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from audiotransfer.errors import UserError, cut
from audiotransfer.validation import check_version

log = logging.getLogger(__name__)

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
        if exc.errno == errno.EFBIG:
            raise UserError(
                f"{path}: the file-size limit was reached while writing ({os.strerror(exc.errno)}; "
                f"limit {_fsize_limit()})",
                fix="raise the limit (`ulimit -f unlimited`) and rerun: finished work is kept",
            ) from None
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise UserError(
            f"{path}: disk full ({os.strerror(exc.errno)}) while writing",
            fix="free disk space (or move the study / store to a larger disk) and rerun: finished work is kept",
        ) from None
    except RuntimeError as exc:  # torch.save reports a failed write as a RuntimeError without the errno
        if "write" in str(exc) and _fsize_limit() not in ("unlimited", "unknown"):
            raise UserError(
                f"{path}: write failed under a file-size limit of {_fsize_limit()}",
                fix="raise the limit (`ulimit -f unlimited`) and rerun: finished work is kept",
            ) from None
        if "write" not in str(exc) or shutil.disk_usage(path.parent).free > LOW_SPACE:
            raise
        raise UserError(
            f"{path}: disk full while writing",
            fix="free disk space (or move the study / store to a larger disk) and rerun: finished work is kept",
        ) from None


def unreadable_reason(path: str | Path) -> str | None:
    """Why `path` cannot be read as a regular file ('not found', 'permission denied', 'a FIFO ...'), or None.
    Checked before opening: a FIFO or device named as an input would block a read forever."""
    import stat

    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        return "not found" if exc.errno == errno.ENOENT else os.strerror(exc.errno or errno.EIO).lower()
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe), not a regular file; reading it could wait forever"
    if not stat.S_ISREG(mode):
        return "not a regular file (a folder, device or socket)"
    if not os.access(path, os.R_OK):
        return "permission denied"
    return None


def check_regular_file(path: Path, what: str) -> None:
    """UserError naming `path` and the reason unless it is a regular file this process may read."""
    reason = unreadable_reason(path)
    if reason:
        raise UserError(
            f"{path}: cannot read the {what}: {reason}",
            fix="give a regular, readable file (check the path and its permissions)",
        )


def read_sidecar(path: Path, what: str, version: int) -> dict[str, Any]:
    """A JSON sidecar as a dict; not JSON, not a mapping, or a `format_version` newer than `version` (what
    this code reads; rewriting it would lose what a newer release stored) is a UserError naming the file."""
    import json

    check_regular_file(path, what)
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise UserError(
            f"{path}: the {what} is not JSON ({cut(str(exc), 80)})",
            fix="give the file written by audiotransfer, or rebuild it",
        ) from None
    if not isinstance(info, dict):
        raise UserError(
            f"{path}: the {what} is {type(info).__name__}, not a JSON object",
            fix="give the file written by audiotransfer, or rebuild it",
        )
    check_version(f"{path}: field 'format_version'", info.get("format_version"), version, what)
    return info


def make_output_folder(folder: Path, markers: Sequence[str], what: str, force: bool | None = None) -> Path:
    """`folder`, created if missing, where a command may write: new, empty, or carrying one of its own
    `markers` (e.g. store.json). Any other non-empty folder is refused (its files could be overwritten) unless
    `force` (None: the command has no --force); a file in the way, or a parent the user cannot write, is a
    UserError, not a traceback."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{folder}: the {what} path is a file, not a folder", fix="give a folder path")
    if folder.is_dir() and not force and not any((folder / m).exists() for m in markers):
        entries = sorted(p.name for p in folder.iterdir())
        if entries:
            raise UserError(
                f"{folder}: an existing folder that is not a {what} (no {' or '.join(markers)}) and holds "
                f"{len(entries)} entries ({', '.join(entries[:3])}{', ...' if len(entries) > 3 else ''}); "
                f"writing there could overwrite them",
                fix=f"give a new or empty folder for the {what}"
                + (" (or add --force to write into this one)" if force is not None else ""),
            )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (PermissionError, FileExistsError, NotADirectoryError) as exc:
        raise UserError(
            f"{folder}: cannot create the {what} folder ({exc.strerror or exc})",
            fix="choose a folder you can write to (check its parent's permissions)",
        ) from None
    if not os.access(folder, os.W_OK):
        raise UserError(
            f"{folder}: the {what} folder is not writable (permission denied)",
            fix="make it writable (chmod u+w) or choose another folder",
        )
    return folder


def check_output_file(
    path: Path, inputs: Iterable[Path], what: str, force: bool = False, ours: Callable[[Path], bool] | None = None
) -> None:
    """Refuse to write output `path` over an input of the same command (never, even with `force`), over a
    folder, or over an existing file that `ours` does not recognise as this command's earlier output
    (unless `force`)."""
    path = Path(path)
    target = path.resolve()
    for source in inputs:
        if Path(source).resolve() == target:
            raise UserError(
                f"{path}: the {what} output would overwrite an input of this command ({source})",
                fix="write the output to another file",
            )
    if path.is_dir():
        raise UserError(f"{path}: the {what} output path is a folder", fix="give a file path")
    if path.exists() and not force and not (ours is not None and ours(path)):
        raise UserError(
            f"{path}: exists and does not look like an earlier {what} output; not overwritten",
            fix="give a new file name, or add --force to overwrite it",
        )
    if not os.access(path.parent if str(path.parent) else Path("."), os.W_OK):
        raise UserError(
            f"{path}: cannot write the {what} output (permission denied in {path.parent})",
            fix="choose a folder you can write to",
        )


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask, else the machine's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def cap_jobs(jobs: int, what: str = "--jobs") -> int:
    """`jobs` worker processes, capped at the usable cores with a warning: more only compete for them."""
    cores = usable_cores()
    if jobs > cores:
        log.warning(f"warning: {what} {jobs} is above the {cores} usable cores; using {cores}")
        return cores
    return jobs


def _fsize_limit() -> str:
    """This process's file-size limit (RLIMIT_FSIZE) in words."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    except (ImportError, OSError, ValueError):
        return "unknown"
    return "unlimited" if soft == resource.RLIM_INFINITY else f"{soft:,} bytes"


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


MAX_YAML_NODES = 100_000  # nodes after alias expansion: far above any study, far below a billion laughs


def load_yaml(text: str) -> Any:
    """`yaml.safe_load`, but a key given twice in one mapping is a yaml.YAMLError, not silently last-wins,
    and aliases that expand to more than MAX_YAML_NODES nodes (an 'alias bomb') are refused before building."""
    loader = _UniqueKeyLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _check_expansion(root: yaml.Node) -> None:
    """yaml.YAMLError when the document, with every alias expanded, has more than MAX_YAML_NODES nodes."""
    sizes: dict[int, int] = {}

    def size(node: yaml.Node) -> int:
        if id(node) in sizes:
            return sizes[id(node)]
        sizes[id(node)] = MAX_YAML_NODES + 1  # a node inside itself (recursive alias) expands without end
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = node.value
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        total = 1
        for child in children:
            total = min(total + size(child), MAX_YAML_NODES + 1)
        sizes[id(node)] = total
        return total

    if size(root) > MAX_YAML_NODES:
        raise yaml.YAMLError(
            f"aliases expand to more than {MAX_YAML_NODES:,} values (an alias bomb?); "
            "write the values out or use fewer nested aliases"
        )
