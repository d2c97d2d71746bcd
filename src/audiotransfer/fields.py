"""Field documentation for pydantic models: each field's type, default and description in the class docstring.

`help(TrainRecipe)` and the API reference then list every field where a user looks; the descriptions are
written once, in each model's `Field(description=...)`.
"""

from __future__ import annotations

import types
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

Model = TypeVar("Model", bound=BaseModel)


def document_fields(cls: type[Model]) -> type[Model]:
    """Class decorator: append an `Attributes:` section (one line per field) to the model's docstring.

    Examples:
        >>> from pydantic import BaseModel, Field
        >>> @document_fields
        ... class Crop(BaseModel):
        ...     '''A crop.'''
        ...     frames: int = Field(100, description="crop length")
        >>> print(Crop.__doc__)
        A crop.
        <BLANKLINE>
        Attributes:
            frames (int): crop length. Default: 100.
        <BLANKLINE>
    """
    lines = []
    for name, info in cls.model_fields.items():
        text = (info.description or "").rstrip(".")
        default = "Required" if info.is_required() else f"Default: {_default(info.default, info.default_factory)}"
        lines.append(f"    {name} ({_type_name(info.annotation)}): {text}. {default}.")
    doc = (cls.__doc__ or "").rstrip()
    indent = _indent(doc)
    section = "\n".join(indent + line for line in ["Attributes:", *lines])
    cls.__doc__ = f"{doc}\n\n{section}\n"
    return cls


def _indent(doc: str) -> str:
    """The indentation of a docstring's second and later lines (as written in source)."""
    rest = [line for line in doc.splitlines()[1:] if line.strip()]
    return min((line[: len(line) - len(line.lstrip())] for line in rest), default="", key=len)


def _default(value: Any, factory: Any) -> str:
    if value is PydanticUndefined and factory is not None:
        value = factory()
    if isinstance(value, BaseModel):
        return f"{type(value).__name__}()"
    return repr(value)


def _type_name(annotation: Any) -> str:
    """A short readable type: `list[int]`, `str | None`, `Literal['a', 'b']` (Annotated constraints dropped)."""
    origin, args = get_origin(annotation), get_args(annotation)
    if annotation is type(None):
        return "None"
    if origin is Annotated:
        return _type_name(args[0])
    if origin is Literal:
        return f"Literal[{', '.join(map(repr, args))}]"
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in args)
    if origin is not None:
        return f"{getattr(origin, '__name__', str(origin))}[{', '.join(_type_name(a) for a in args)}]"
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")
