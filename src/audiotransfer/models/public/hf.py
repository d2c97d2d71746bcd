"""transformers audio models from a local `save_pretrained` folder: AST, wav2vec2, HuBERT, WavLM, the Whisper
encoder and CLAP's audio tower.

The folder holds `config.json` and the weights, plus the feature extractor's `preprocessor_config.json` when
the author saved one (without it the family's default extractor is used, sized from the config). Nothing is
ever fetched from a hub. Each family reads its own features, computed by its transformers feature extractor
from the raw waveform, so an embedding here is exactly what transformers' extractor plus model gives.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from audiotransfer.errors import UserError
from audiotransfer.models.public.base import PublicModel, as_batch

PIP = "pip install 'audiotransfer[hf]'"


@dataclass(frozen=True)
class Family:
    """How one transformers model type is read: its name here, the extractor outputs its forward takes."""

    name: str
    inputs: tuple[str, ...]


FAMILIES = {
    "audio-spectrogram-transformer": Family("ast", ("input_values",)),
    "wav2vec2": Family("wav2vec2", ("input_values", "attention_mask")),
    "hubert": Family("hubert", ("input_values", "attention_mask")),
    "wavlm": Family("wavlm", ("input_values", "attention_mask")),
    "whisper": Family("whisper", ("input_features",)),
    "clap": Family("clap", ("input_features", "is_longer")),
    "clap_audio_model": Family("clap", ("input_features", "is_longer")),
}


class HFModel(PublicModel):
    """A transformers base model (the encoder only for Whisper, the audio tower for CLAP) with its extractor."""

    def __init__(
        self,
        net: Any,
        extractor: Any,
        family: Family,
        num_layers: int,
        frame_hop_s: float,
        to_frames: Callable[[Tensor, bool], Tensor],
        frontend: dict[str, Any],
    ) -> None:
        super().__init__()
        self.net, self.extractor, self.spec = net, extractor, family
        self.family = family.name
        self.sample_rate = int(extractor.sampling_rate)
        self.num_layers, self.frame_hop_s = num_layers, frame_hop_s
        self.to_frames = to_frames
        self.frontend = frontend
        self.embedding_dim = int(_width(net.config))

    def features(self, wave: Tensor) -> dict[str, Tensor]:
        """The family's extractor output for a batch of waveforms, on the model's device."""
        clips = [np.asarray(w, dtype=np.float32) for w in as_batch(wave).detach().cpu().numpy()]
        feats = self.extractor(clips, sampling_rate=self.sample_rate, return_tensors="pt")
        device = next(self.net.parameters()).device
        return {k: feats[k].to(device) for k in self.spec.inputs if k in feats}

    def hidden_states(self, wave: Tensor) -> list[Tensor]:
        """Token sequences (B, T, D); CLAP's (B, C, F, T) maps flattened to (B, F*T, C)."""
        out = self.net(**self.features(wave), output_hidden_states=True)
        states = [*out.hidden_states[:-1], out.last_hidden_state]  # the last after the final norm, if any
        return [_tokens(s) for s in states]

    def layer_states(self, wave: Tensor, layer: int | None) -> Tensor:
        """The last state from the plain forward (no other state kept), any other from `hidden_states`."""
        index = self.check_layer(layer)
        if index < self.num_layers:
            return self.hidden_states(as_batch(wave))[index]
        return _tokens(self.net(**self.features(wave)).last_hidden_state)

    def embed_frames(self, wave: Tensor, layer: int | None = None) -> tuple[Tensor, Tensor]:
        """Time frames (B, T, D) of hidden state `layer`, where the family's tokens allow (AST: patches
        averaged over frequency; CLAP: the last state averaged over frequency), and their start times in ms."""
        index = self.check_layer(layer)
        states = self.to_frames(self.layer_states(wave, layer), index == self.num_layers)
        stamps = torch.arange(states.shape[1], dtype=torch.float32) * (self.frame_hop_s * 1000.0)
        return states, stamps.expand(states.shape[0], -1)


def _tokens(state: Tensor) -> Tensor:
    """(B, T, D) as is; CLAP's (B, C, F, T) maps as (B, F*T, C) tokens."""
    return state.flatten(2).transpose(1, 2) if state.ndim == 4 else state


def _width(config: Any) -> int:
    for key in ("hidden_size", "d_model"):
        if isinstance(getattr(config, key, None), int):
            return int(getattr(config, key))
    return int(config.hidden_size)


def _require_transformers() -> Any:
    if importlib.util.find_spec("transformers") is None:
        raise UserError("transformers models need the optional package transformers", fix=PIP)
    import transformers

    return transformers


def load(path: str | Path) -> HFModel:
    """The base model of a local transformers folder with its feature extractor, in eval mode."""
    folder = Path(path).expanduser()
    if not (folder.is_dir() and (folder / "config.json").is_file()):
        raise UserError(
            f"{folder}: not a local transformers folder (a folder with config.json and the weights)",
            fix="save the model with `model.save_pretrained(FOLDER)` (and its feature extractor's "
            "`save_pretrained(FOLDER)`) and pass FOLDER; nothing is downloaded from a hub",
        )
    tf = _require_transformers()
    config = tf.AutoConfig.from_pretrained(folder, local_files_only=True)
    family = FAMILIES.get(config.model_type)
    if family is None:
        raise UserError(
            f"{folder}/config.json: model_type {config.model_type!r} is not a supported audio model",
            fix=f"supported model types: {', '.join(sorted(FAMILIES))}",
        )
    try:
        loader = tf.ClapAudioModel if config.model_type == "clap_audio_model" else tf.AutoModel
        model = loader.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise UserError(
            f"{folder}: the weights do not load ({str(exc)[:300]})",
            fix="save the folder again with `model.save_pretrained(FOLDER)`",
        ) from None
    extractor, preset = _extractor(tf, folder, config)
    return wrap(model, extractor, family, preset).eval()


def _extractor(tf: Any, folder: Path, config: Any) -> tuple[Any, str]:
    """The folder's saved feature extractor, or the family's default one sized from the config."""
    if (folder / "preprocessor_config.json").is_file():
        return tf.AutoFeatureExtractor.from_pretrained(folder, local_files_only=True), "preprocessor_config.json"
    kind = config.model_type
    if kind == "audio-spectrogram-transformer":
        made = tf.ASTFeatureExtractor(num_mel_bins=config.num_mel_bins, max_length=config.max_length)
    elif kind == "whisper":
        made = tf.WhisperFeatureExtractor(
            feature_size=config.num_mel_bins, chunk_length=config.max_source_positions * 2 * 160 // 16000
        )
    elif kind.startswith("clap"):
        made = tf.ClapFeatureExtractor()
    else:
        made = tf.Wav2Vec2FeatureExtractor()
    return made, "defaults (no preprocessor_config.json in the folder)"


def wrap(model: Any, extractor: Any, family: Family, preset: str) -> HFModel:
    """Wrap the base model: the encoder or audio tower, its layer count, frame hop and frame layout."""
    cfg = model.config
    rate = int(extractor.sampling_rate)
    frontend = {
        "type": type(extractor).__name__,
        "sample_rate": rate,
        "settings": preset,
        **{k: v for k, v in extractor.to_dict().items() if isinstance(v, int | float | str | bool)},
    }
    if family.name == "ast":
        f_out = (cfg.num_mel_bins - cfg.patch_size) // cfg.frequency_stride + 1
        return HFModel(
            model,
            extractor,
            family,
            cfg.num_hidden_layers,
            cfg.time_stride / 100,
            lambda h, last: _ast_frames(h, f_out),
            frontend,
        )
    if family.name == "whisper":
        return HFModel(
            model.get_encoder(),
            extractor,
            family,
            cfg.encoder_layers,
            2 * extractor.hop_length / rate,
            lambda h, last: h,
            frontend,
        )
    if family.name == "clap":
        tower = getattr(model, "audio_model", model)
        acfg = tower.config
        down, ratio = 2 ** (len(acfg.depths) - 1), acfg.spec_size // acfg.num_mel_bins
        freq = acfg.spec_size // acfg.patch_stride[0] // down // ratio
        steps = acfg.spec_size // acfg.patch_stride[1] // down * ratio
        return HFModel(
            tower,
            extractor,
            family,
            len(acfg.depths),
            extractor.max_length_s / steps,
            lambda h, last: _clap_frames(h, last, freq),
            frontend,
        )
    hop = math.prod(cfg.conv_stride) / rate
    return HFModel(model, extractor, family, cfg.num_hidden_layers, hop, lambda h, last: h, frontend)


def _ast_frames(h: Tensor, f_out: int) -> Tensor:
    """AST tokens (B, 2 + F*T, D) -> time frames (B, T, D): the patch tokens averaged over frequency."""
    b, n, d = h.shape
    return h[:, 2:].reshape(b, f_out, (n - 2) // f_out, d).mean(dim=1)


def _clap_frames(h: Tensor, last: bool, freq: int) -> Tensor:
    """HTSAT tokens: the last state (B, F*T, C), row-major over (F, T), averaged over frequency into time
    frames; the other states are patch grids of time folded into frequency, left as tokens."""
    return h.reshape(h.shape[0], freq, h.shape[1] // freq, h.shape[2]).mean(dim=1) if last else h
