"""Progress and logging for every long pass: bars on a terminal, a few plain lines in a log file.

`progress(...)` takes tqdm's arguments and returns a tqdm object. When stderr is a terminal (or a notebook)
it is tqdm's bar. When it is not (a redirected log, a cluster job, `nohup`), it is a bar that draws nothing
and instead logs a plain line to the `audiotransfer.progress` logger at most every `MIN_GAP` seconds, when
another tenth of the work is done (or `HEARTBEAT` seconds passed), and a last line when it closes: counts,
rate and time left, no escape codes.

Everything the package says goes through `logging` under the `audiotransfer` logger (one logger per module,
`logging.getLogger(__name__)`), which the package sets to INFO. A library user silences it, bars included, with
`logging.getLogger("audiotransfer").setLevel(logging.WARNING)`, or sends it anywhere with the usual `logging`
configuration. The command line calls `log_to(log_file)` around each command (`--log-file`, `--no-progress`).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from tqdm import tqdm

LOGGER = logging.getLogger("audiotransfer")
LINES = logging.getLogger("audiotransfer.progress")
# seconds between two plain progress lines of one pass, at least ($AUDIOTRANSFER_PROGRESS_SECONDS sets it)
MIN_GAP = float(os.environ.get("AUDIOTRANSFER_PROGRESS_SECONDS", "30"))
HEARTBEAT = 600.0  # a line after this long even when the next tenth of the work is not done
STEP = 0.1  # a line for each tenth of the work
FILE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_state = {"enabled": True}


def set_enabled(enabled: bool) -> None:
    """Turn every progress display of this process on or off (the CLI's `--no-progress`)."""
    _state["enabled"] = enabled


def progress(iterable: Iterable[Any] | None = None, *, enabled: bool = True, **kwargs: Any) -> tqdm:
    """A tqdm progress display over `iterable` (or updated by hand); `kwargs` are tqdm's (desc, total, unit,
    initial, leave, ...). A bar on a terminal, plain log lines otherwise, nothing when `enabled` is False, after
    `set_enabled(False)`, or when the `audiotransfer` logger is set above INFO.

    Examples:
        >>> sum(progress(range(5), desc="count", enabled=False))
        10
    """
    show = enabled and _state["enabled"] and LINES.isEnabledFor(logging.INFO)
    if not show:
        return tqdm(iterable, disable=True, **kwargs)
    if "ipykernel" in sys.modules:  # a notebook: tqdm's widget
        from tqdm.auto import tqdm as auto

        return auto(iterable, **kwargs)
    kwargs.pop("file", None)  # always stderr
    if _is_terminal(sys.stderr):
        kwargs.setdefault("dynamic_ncols", True)
        return tqdm(iterable, file=sys.stderr, **kwargs)
    return LogLines(iterable, **kwargs)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class _Nowhere:
    """Where a `LogLines` bar's own drawing goes: nowhere (its lines go to the logger)."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


class LogLines(tqdm):
    """A tqdm that logs a plain line now and then instead of drawing a bar (see the module docstring)."""

    def __init__(self, iterable: Iterable[Any] | None = None, **kwargs: Any) -> None:
        self._last_t = 0.0
        self._last_frac = 0.0
        self._closing = False
        kwargs.setdefault("mininterval", 0.5)
        super().__init__(iterable, file=_Nowhere(), **kwargs)
        self._last_t = self.start_t

    def display(self, msg: str | None = None, pos: int | None = None) -> bool:
        if self._closing:
            return True
        now = self._time()
        since = now - self._last_t
        frac = self.n / self.total if self.total else None
        due = frac is None or frac - self._last_frac >= STEP or since >= HEARTBEAT
        if since >= MIN_GAP and due and self.n > 0 and not (self.total and self.n >= self.total):  # close() says it
            self._last_t, self._last_frac = now, frac or 0.0
            LINES.info(self.line())
        return True

    def line(self, final: bool = False) -> str:
        """The plain line: counts, percentage, elapsed time and time left (or the total time, when final)."""
        d = self.format_dict
        elapsed = d["elapsed"]
        unit = d["unit"] if d["unit"] in ("B", "it") or d["unit"].endswith("s") else d["unit"] + "s"
        desc = f"{d['prefix']}: " if d["prefix"] else ""
        count = self._count(self.n) + (f"/{self._count(self.total)}" if self.total else "")
        postfix = f" ({d['postfix']})" if d.get("postfix") else ""
        if final:
            stopped = " (stopped)" if self.total and self.n < self.total else ""
            return f"{desc}{count} {unit} in {self.format_interval(elapsed)}{stopped}{postfix}"
        rate = (self.n - self.initial) / elapsed if elapsed > 0 else 0.0  # resumed work is not this pass's
        left = ""
        if self.total and rate > 0:
            left = f", about {self.format_interval((self.total - self.n) / rate)} left"
        share = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
        return f"{desc}{count} {unit}{share}, {self.format_interval(elapsed)} elapsed{left}{postfix}"

    def _count(self, n: float) -> str:
        if self.unit_scale:
            return str(self.format_sizeof(n))
        return f"{n:,.0f}"

    def close(self) -> None:
        if not self.disable and not self._closing:
            self._closing = True
            if self.leave is not False and self.n > 0:
                LINES.info(self.line(final=True))
        super().close()


class _Console(logging.Handler):
    """Writes to whatever `sys.stderr` is when a record comes (through `tqdm.write`, so bars stay whole)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # a handler never raises
            self.handleError(record)


@contextmanager
def log_to(log_file: str | Path | None = None, show_progress: bool = True) -> Iterator[None]:
    """While the block runs, the `audiotransfer` loggers write to stderr (plain messages) and, with
    `log_file`, to that file too (with time, level and logger); progress is shown unless `show_progress` is
    False. What was set before is restored afterwards."""
    handlers: list[logging.Handler] = [_Console()]
    if log_file is not None:
        Path(log_file).expanduser().parent.mkdir(parents=True, exist_ok=True)
        file_handler = logging.FileHandler(Path(log_file).expanduser(), encoding="utf-8")
        file_handler.setFormatter(logging.Formatter(FILE_FORMAT))
        handlers.append(file_handler)
    before, propagate, enabled = LOGGER.level, LOGGER.propagate, _state["enabled"]
    LOGGER.setLevel(logging.INFO)
    for handler in handlers:
        LOGGER.addHandler(handler)
    LOGGER.propagate = False
    set_enabled(show_progress and enabled)
    try:
        yield
    finally:
        for handler in handlers:
            LOGGER.removeHandler(handler)
            handler.close()
        LOGGER.setLevel(before)
        LOGGER.propagate = propagate
        set_enabled(enabled)
