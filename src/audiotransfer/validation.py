"""Input rules written once: the name rule for everything that becomes a folder or file name (states,
tasks, subsets), and a pydantic validation error turned into one `UserError` naming file, field and fix."""

from __future__ import annotations

import re
import types
from pathlib import Path
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from audiotransfer.errors import UserError, cut, did_you_mean

# letters, digits, '_', '+', '-', not first; no dots: Manifest.load reads "a.3" as suffix ".3"
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_+-]*")
NAME_RULE = "use letters, digits and _ + - only, starting with a letter or digit (no dots)"


def is_name(name: str) -> bool:
    """Whether `name` is usable as a folder or file name of a study, a store or a subset."""
    return NAME_PATTERN.fullmatch(name) is not None


def validation_error(
    path: Path | str, exc: ValidationError, model: type[BaseModel], prefix: str = "", subject: str = ""
) -> UserError:
    """The first pydantic error as a UserError: "PATH: SUBJECT field 'PREFIX.LOC': what is wrong", with close
    field names for an unknown field. Tags of discriminated unions are left out of the field's path."""
    err = exc.errors()[0]
    loc, model_at = _follow(model, [str(p) for p in err["loc"]])
    where = ".".join([prefix, *loc] if prefix else loc) or "(top level)"
    head = f"{path}: {subject + ' ' if subject else ''}field '{where}': {err['msg']}"
    if err["type"] == "extra_forbidden":
        allowed = _fields(model_at)
        return UserError(head + did_you_mean(loc[-1], allowed), fix=f"known fields here: {', '.join(allowed)}")
    if err["type"] == "missing":
        return UserError(head, fix="add it (see examples/studies/demo.yaml)")
    hint = " (YAML 1.1 reads yes/no/on/off as booleans)" if isinstance(err.get("input"), bool) else ""
    return UserError(head, fix=f"got {cut(err.get('input'))}; correct the value" + hint)


def _follow(model: Any, loc: list[str]) -> tuple[list[str], Any]:
    """The error's path without union tags, and the model that holds its last field (for suggestions)."""
    kept: list[str] = []
    for part in loc[:-1]:
        tagged = _tags(model)
        if part in tagged:  # a discriminated union's tag: the member model, not a field
            model = tagged[part]
            continue
        kept.append(part)
        if isinstance(model, type) and issubclass(model, BaseModel) and part in model.model_fields:
            model = model.model_fields[part].annotation
        elif get_origin(model) in (dict, list):  # a key or an index: the values' type
            model = get_args(model)[-1]
        model = _unwrap(model)
    return [*kept, *loc[-1:]], _unwrap(model)


def _fields(model: Any) -> list[str]:
    return list(model.model_fields) if isinstance(model, type) and issubclass(model, BaseModel) else []


def _tags(annotation: Any) -> dict[str, Any]:
    """Tag -> member model of an `Annotated[Union[Annotated[M, Tag(t)], ...], Discriminator(...)]`."""
    from pydantic import Tag

    args = get_args(annotation)
    union = args[0] if args and get_origin(args[0]) in (Union, types.UnionType) else annotation
    out = {}
    for member in get_args(union) if get_origin(union) in (Union, types.UnionType) else []:
        inner = get_args(member)
        tag = next((m.tag for m in inner[1:] if isinstance(m, Tag)), None) if inner else None
        if tag is not None:
            out[tag] = inner[0]
    return out


def _unwrap(annotation: Any) -> Any:
    """The model inside Optional[...] (a discriminated union stays as it is)."""
    if get_origin(annotation) in (Union, types.UnionType):
        models = [a for a in get_args(annotation) if isinstance(a, type) and issubclass(a, BaseModel)]
        return models[0] if models else annotation
    return annotation


def check_version(where: Path | str, found: Any, current: int, what: str) -> int:
    """The format version a file says it has (absent: 1, the first); a newer one than this code reads, or
    one that is not a number, is a UserError naming the file. Returns it, for a reader that migrates."""
    version = 1 if found is None else found
    if not isinstance(version, int) or isinstance(version, bool) or version < 1 or version > current:
        raise UserError(
            f"{where}: {what} format version {found!r}; this audiotransfer reads versions 1 to {current}",
            fix="upgrade audiotransfer (the file was written by a newer one), or write the file again",
        )
    return version
