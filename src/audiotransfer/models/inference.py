"""Inference on audio: `load_model(path)` gives a model that turns sound files or waveforms into
probabilities over its labels, clip embeddings or frame embeddings.

A clip is scored exactly as the run's evaluation scored a clip from its store: decoded and resampled to the
front-end's rate (soxr, channels averaged), turned into features by the same front-end module, rounded to the
store's dtype, covered with the evaluation windows (`clip_windows`; a model without a crop length takes the
clip whole, padded up to its minimum input only) and averaged over windows as the run averaged them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from audiotransfer.data.audio import AudioError, load_audio, resample
from audiotransfer.data.features import Frontend, WaveformRecipe, frontend_module
from audiotransfer.data.loader import clip_windows
from audiotransfer.errors import UserError
from audiotransfer.models.artifact import ModelCard
from audiotransfer.models.cnn import AudioCNN
from audiotransfer.models.public.base import PublicModel
from audiotransfer.models.public.head import PublicClassifier
from audiotransfer.models.registry import get_spec

log = logging.getLogger(__name__)

Audio = str | Path | np.ndarray | torch.Tensor
BATCH_WINDOWS = 64  # windows per forward pass (the evaluation batch size)
MAX_CHANNELS = 16  # a 2-D array with more rows and columns than this is a batch, not one multichannel clip


@dataclass
class Clip:
    """One input clip: its name (path or position) and mono samples at the model's rate."""

    name: str
    wave: np.ndarray


def _mono(array: np.ndarray) -> np.ndarray:
    """Average channels: a 2-D array's shorter axis is taken as its channels."""
    if array.ndim == 1:
        return array
    if array.ndim != 2 or min(array.shape) > MAX_CHANNELS:
        raise UserError(
            f"a waveform of shape {array.shape} is neither mono nor a few channels",
            fix="pass 1-D samples, (samples, channels) or (channels, samples); several clips as a list",
        )
    return array.mean(axis=int(np.argmin(array.shape)))


def as_clips(audio: Audio | Sequence[Audio], sample_rate: int | None, rate: int) -> Iterator[Clip]:
    """Clips at `rate` from a path, a waveform (numpy or torch, at `sample_rate`, default `rate`) or a list."""
    items = audio if isinstance(audio, list | tuple) else [audio]
    for position, item in enumerate(items):
        if isinstance(item, str | Path):
            try:
                yield Clip(str(item), load_audio(item, rate))
            except AudioError as exc:
                raise UserError(f"{item}: {exc}", fix="check or convert the file") from None
            continue
        array = item.detach().cpu().numpy() if isinstance(item, torch.Tensor) else np.asarray(item)
        wave = _mono(array.astype(np.float32, copy=False))
        if wave.size == 0 or not np.isfinite(wave).all():
            raise UserError(f"waveform {position}: empty or not finite", fix="pass finite samples")
        yield Clip(f"<waveform {position}>", resample(wave, sample_rate or rate, rate))


class InferenceModel:
    """A network with its front-end and labels: `predict`, `embed`, `embed_frames` on audio."""

    def __init__(self, network: AudioCNN, frontend: Frontend, card: ModelCard, source: str) -> None:
        self.network = network.eval()
        self.frontend_recipe = frontend
        self.card, self.source = card, source
        self.features = frontend_module(frontend).eval()
        self.min_frames = get_spec(network.name).min_size

    # ------------------------------------------------------------------ description
    @property
    def sample_rate(self) -> int:
        return self.frontend_recipe.sample_rate

    @property
    def frontend(self) -> dict[str, Any]:
        """The front-end as a JSON-able dict (`Frontend.to_dict()`)."""
        return self.frontend_recipe.to_dict()

    @property
    def labels(self) -> list[str]:
        return list(self.card.label_names or self.card.labels)

    @property
    def embedding_dim(self) -> int:
        return self.network.embedding_dim

    @property
    def frame_dim(self) -> int:
        """Width of the rows of `embed_frames`."""
        return int(self.network.fc1.in_features)

    @property
    def frame_hop_s(self) -> float:
        """Seconds between the rows of `embed_frames`."""
        hop = 1 if isinstance(self.frontend_recipe, WaveformRecipe) else self.frontend_recipe.hop_length
        return hop * 2 ** min(self.network.num_blocks, 5) / self.sample_rate

    def __repr__(self) -> str:
        return (
            f"InferenceModel({self.network.name}, {len(self.labels)} labels, "
            f"{self.frontend_recipe.describe()}, {self.source})"
        )

    # --------------------------------------------------------------------- features
    def clip_features(self, wave: np.ndarray) -> np.ndarray:
        """Features (frames, channels) of one clip, in the precision the run's store held them."""
        need = getattr(self.frontend_recipe, "n_fft", 1) // 2 + 1  # a centred STFT needs half a window
        if len(wave) < need:
            wave = np.pad(wave, (0, need - len(wave)))
        with torch.inference_mode():
            feats = self.features(torch.from_numpy(np.ascontiguousarray(wave))[None])[0]
        if self.card.feature_dtype:
            feats = feats.to(getattr(torch, self.card.feature_dtype))
        return feats.float().numpy()

    def windows(self, feats: np.ndarray) -> np.ndarray:
        """The evaluation windows (n, frames, channels) of one clip, short ones padded with the floor value."""
        floor = self.frontend_recipe.floor_db
        frames = self.card.crop_frames or max(len(feats), self.min_frames)
        _, starts = clip_windows(np.array([len(feats)]), frames)
        out = np.full((len(starts), frames, feats.shape[1]), floor, dtype=np.float32)
        for i, start in enumerate(np.minimum(starts, max(len(feats) - frames, 0))):
            piece = feats[start : start + frames]
            out[i, : len(piece)] = piece
        return out

    def _per_clip(self, clips: Iterator[Clip], fn: Callable[[torch.Tensor], torch.Tensor]) -> np.ndarray:
        """`fn` over every clip's windows, averaged per clip; windows of several clips share a forward pass
        when they have one length (a crop length), else each clip runs alone."""
        rows: list[np.ndarray] = []
        pending: list[np.ndarray] = []

        def flush() -> None:
            if not pending:
                return
            owner = torch.from_numpy(np.repeat(np.arange(len(pending)), [len(w) for w in pending]))
            with torch.inference_mode():
                out = fn(torch.from_numpy(np.concatenate(pending)))
            sums = torch.zeros(len(pending), *out.shape[1:], dtype=out.dtype).index_add_(0, owner, out)
            rows.append((sums / torch.bincount(owner).to(out.dtype).view(-1, 1)).numpy())
            pending.clear()

        for clip in clips:
            win = self.windows(self.clip_features(clip.wave))
            if pending and (self.card.crop_frames is None or sum(map(len, pending)) + len(win) > BATCH_WINDOWS):
                flush()
            pending.append(win)
        flush()
        return np.concatenate(rows) if rows else np.zeros((0, 0), np.float32)

    # ------------------------------------------------------------------------ outputs
    def _activate(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(logits) if self.card.multilabel else torch.softmax(logits, dim=1)

    def _require_head(self) -> None:
        if not self.labels:
            raise UserError(
                f"{self.card.provenance.get('state') or 'this model'} has no trained head",
                fix="use embed() / embed_frames(), or fine-tune it on a task first",
            )

    def predict(self, audio: Audio | Sequence[Audio], sample_rate: int | None = None) -> np.ndarray:
        """Probabilities (n_clips, n_labels): sigmoid for a multi-label model, softmax otherwise."""
        self._require_head()
        clips = as_clips(audio, sample_rate, self.sample_rate)
        if self.card.pooling == "embedding":  # a linear probe scored its head on the mean embedding
            embedding = self._per_clip(clips, self.network.embed)
            with torch.inference_mode():
                return self._activate(self.network.fc_audioset(torch.from_numpy(embedding))).numpy()
        return self._per_clip(clips, lambda x: self._activate(self.network(x)))

    def embed(
        self, audio: Audio | Sequence[Audio], sample_rate: int | None = None, layer: str | None = None
    ) -> np.ndarray:
        """Clip embeddings (n_clips, dim): the head's input, or a named stage's (`network.block_names`)."""
        clips = as_clips(audio, sample_rate, self.sample_rate)
        if layer is None:
            return self._per_clip(clips, self.network.embed)
        if layer not in self.network.block_names:
            raise UserError(
                f"layer {layer!r} is not one of {', '.join(self.network.block_names)}",
                fix="pick a layer from that list",
            )
        return self._per_clip(clips, lambda x: self.network.activations(x, [layer])[layer])

    def embed_frames(
        self, audio: Audio | Sequence[Audio], sample_rate: int | None = None
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per clip: (timestamps in ms (T,), frame embeddings (T, channels)) of the whole clip."""
        out = []
        hop_ms = 1000 * self.frame_hop_s
        for clip in as_clips(audio, sample_rate, self.sample_rate):
            feats = self.clip_features(clip.wave)
            if len(feats) < self.min_frames:
                feats = np.concatenate(
                    [
                        feats,
                        np.full(
                            (self.min_frames - len(feats), feats.shape[1]), self.frontend_recipe.floor_db, np.float32
                        ),
                    ]
                )
            with torch.inference_mode():
                frames = self.network.frame_embeddings(torch.from_numpy(feats)[None])[0].numpy()
            out.append(((np.arange(len(frames)) + 0.5) * hop_ms, frames))
        return out


def hidden_layer(layer: int | str | None) -> int | None:
    """A public model's hidden-state index from an int or its digits (`--layer 3`); None: the last."""
    if layer is None or isinstance(layer, int):
        return layer
    if not layer.isdigit():
        raise UserError(f"layer {layer!r} is not a hidden-state number", fix="give 0 .. the model's layer count")
    return int(layer)


AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")


class PublicInference:
    """A public pre-trained model (`models.public`) behind the calls of `InferenceModel`: `embed` and
    `embed_frames` on audio files or waveforms; it has no trained head, so `predict` says so."""

    def __init__(self, network: PublicModel, source: str) -> None:
        self.network, self.source = network.eval(), source

    @property
    def sample_rate(self) -> int:
        return self.network.sample_rate

    @property
    def frontend(self) -> dict[str, Any]:
        return dict(self.network.frontend)

    @property
    def labels(self) -> list[str]:
        return []

    @property
    def embedding_dim(self) -> int:
        return self.network.embedding_dim

    @property
    def frame_dim(self) -> int:
        return self.network.frame_dim

    @property
    def frame_hop_s(self) -> float:
        return self.network.frame_hop_s

    def __repr__(self) -> str:
        return f"PublicInference({self.network.family}, {self.sample_rate} Hz, {self.source})"

    def predict(self, audio: Audio | Sequence[Audio], sample_rate: int | None = None) -> np.ndarray:
        raise UserError(
            f"{self.source}: a public {self.network.family} model has no trained head",
            fix="use embed() / embed_frames(), or train a head on a task first",
        )

    def embed(
        self, audio: Audio | Sequence[Audio], sample_rate: int | None = None, layer: int | str | None = None
    ) -> np.ndarray:
        """Clip embeddings (n_clips, dim): hidden state `layer` (None: the last) averaged over time."""
        index = hidden_layer(layer)
        with torch.inference_mode():
            return np.stack(
                [
                    self.network.embed(torch.from_numpy(clip.wave)[None], index)[0].numpy()
                    for clip in as_clips(audio, sample_rate, self.sample_rate)
                ]
            )

    def embed_frames(
        self, audio: Audio | Sequence[Audio], sample_rate: int | None = None, layer: int | str | None = None
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per clip: (timestamps in ms (T,), frame embeddings (T, dim)) of hidden state `layer`."""
        out, index = [], hidden_layer(layer)
        with torch.inference_mode():
            for clip in as_clips(audio, sample_rate, self.sample_rate):
                frames, stamps = self.network.embed_frames(torch.from_numpy(clip.wave)[None], index)
                out.append((stamps[0].numpy(), frames[0].numpy()))
        return out


class TrainedPublicInference(InferenceModel):
    """A public model trained on a task (`PublicClassifier` in model.pt): `predict` as its run scored a clip
    (the evaluation windows of raw samples, averaged), `embed` / `embed_frames` from its backbone's hidden
    states (`layer` a hidden-state index, None: the last)."""

    def __init__(self, network: PublicClassifier, frontend: Frontend, card: ModelCard, source: str) -> None:
        self.network = network.eval()  # type: ignore[assignment]  # the calls predict makes are the same
        self.public = network
        self.frontend_recipe, self.card, self.source = frontend, card, source
        self.features = frontend_module(frontend).eval()
        self.min_frames = 1

    @property
    def embedding_dim(self) -> int:
        return self.public.backbone.embedding_dim

    @property
    def frame_dim(self) -> int:
        return self.public.backbone.embedding_dim

    @property
    def frame_hop_s(self) -> float:
        return self.public.backbone.frame_hop_s

    def __repr__(self) -> str:
        return f"TrainedPublicInference({self.public.backbone.family}, {len(self.labels)} labels, {self.source})"

    def embed(  # a public layer is a hidden-state index (or its digits)
        self, audio: Audio | Sequence[Audio], sample_rate: int | None = None, layer: int | str | None = None
    ) -> np.ndarray:
        """Clip embeddings (n_clips, dim) of hidden state `layer`, over the evaluation windows."""
        backbone, index = self.public.backbone, hidden_layer(layer)
        return self._per_clip(as_clips(audio, sample_rate, self.sample_rate), lambda x: backbone.embed(x, index))

    def embed_frames(
        self, audio: Audio | Sequence[Audio], sample_rate: int | None = None, layer: int | str | None = None
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per clip: (timestamps in ms (T,), frame embeddings (T, dim)) of hidden state `layer`."""
        return PublicInference(self.public.backbone, self.source).embed_frames(audio, sample_rate, layer)


Loaded = InferenceModel | PublicInference  # what `load_model` returns


def audio_files(inputs: Sequence[str | Path]) -> list[Path]:
    """The files named, and the audio files under the folders named (sorted, recursively)."""
    found: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            found += sorted(p for p in item.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
        elif item.exists():
            found.append(item)
        else:
            raise UserError(f"{item}: no such file or folder", fix="check the path")
    if not found:
        raise UserError(
            f"no audio files in {', '.join(map(str, inputs))}",
            fix=f"name audio files or folders holding {', '.join(AUDIO_SUFFIXES)} files",
        )
    return found


def decoded(
    paths: Sequence[Path], rate: int, skip_errors: bool = True, chunk: int = 64
) -> Iterator[tuple[list[Path], list[np.ndarray]]]:
    """Chunks of (paths, mono samples at `rate`); an unreadable file is named on stderr and skipped, or a
    UserError when `skip_errors` is False."""

    for start in range(0, len(paths), chunk):
        names, waves = [], []
        for path in paths[start : start + chunk]:
            try:
                waves.append(load_audio(path, rate))
                names.append(path)
            except AudioError as exc:
                if not skip_errors:
                    raise UserError(f"{path}: {exc}", fix="repair or remove the file, or skip it") from None
                log.warning(f"skipped {path}: {exc}")
        if names:
            yield names, waves
