"""User-facing errors: one clear message naming the file, the field and the fix, never a traceback."""

from __future__ import annotations

import difflib
import reprlib
from collections.abc import Iterable

_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxdict, _SHORT.maxlist, _SHORT.maxstring, _SHORT.maxother = 3, 6, 6, 60, 60


class UserError(Exception):
    """A mistake in the user's input. The CLI prints it without a traceback and exits with status 2."""

    def __init__(self, message: str, fix: str | None = None) -> None:
        self.message = message
        self.fix = fix
        super().__init__(f"{message}\n  fix: {fix}" if fix else message)


def suggest(word: str, candidates: Iterable[str], n: int = 5) -> list[str]:
    """Closest candidates to `word`, case-insensitively, best first."""
    pool = list(candidates)
    lowered = {c.lower(): c for c in pool}
    hits = difflib.get_close_matches(word.lower(), list(lowered), n=n, cutoff=0.5)
    substr = [c for c in pool if word.lower() in c.lower() and c.lower() not in hits]
    return [lowered[h] for h in hits] + substr[: max(0, n - len(hits))]


def did_you_mean(word: str, candidates: Iterable[str], quote: bool = False) -> str:
    """'; did you mean a, b?' naming the candidates closest to `word` ('' when none is close).

    The one way every "unknown NAME" message suggests names; `quote` writes them as 'a', 'b'.
    """
    hint = suggest(word, candidates)
    return f"; did you mean {', '.join(map(repr, hint) if quote else hint)}?" if hint else ""


def unknown_name(what: str, name: str, candidates: Iterable[str], quote: bool = False) -> str:
    """The message "unknown WHAT 'NAME'; did you mean ...?" (see `did_you_mean`)."""
    return f"unknown {what} {name!r}" + did_you_mean(name, candidates, quote)


def cut(value: object, width: int = 60) -> str:
    """A value as a message shows it: its repr, bounded in depth and length and cut to `width` characters,
    so a huge (or alias-expanded) value never floods, or hangs, an error message."""
    text = _SHORT.repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."
