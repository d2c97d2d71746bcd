"""A griffe extension for the documentation site: a pydantic model's docstring as Python sees it at run time.

`audiotransfer.fields.document_fields` appends each field's type, default and description to a model's
docstring when the class is created; griffe reads source statically, so this extension swaps in the
run-time docstring of every pydantic model it meets (everything else stays static).
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import griffe


class RuntimeFieldDocs(griffe.Extension):
    """Replace a pydantic model's static docstring by its run-time one (with the `Attributes:` section)."""

    def on_class_instance(self, *, cls: griffe.Class, **kwargs: Any) -> None:
        try:
            obj = getattr(importlib.import_module(cls.module.path), cls.name)
        except (ImportError, AttributeError):
            return
        doc = getattr(obj, "__doc__", None) or ""
        if hasattr(obj, "model_fields") and "Attributes:" in doc:
            old = cls.docstring  # keeps the parser (Google style) that the loader gave the static one
            cls.docstring = griffe.Docstring(
                inspect.cleandoc(doc),
                lineno=old.lineno if old else None,
                parent=cls,
                parser=old.parser if old else None,
                parser_options=old.parser_options if old else None,
            )
