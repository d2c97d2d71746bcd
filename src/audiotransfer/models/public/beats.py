"""Microsoft BEATs (Chen et al. 2023), written here from the authors' published layout (microsoft/unilm
`beats/`), so their checkpoints (`{'cfg': ..., 'model': state_dict}`, BEATs_iter3, iter3+, fine-tuned ones
with their `predictor` head too) load strictly.

Front-end (the authors' `preprocess`): 16 kHz audio scaled to 16-bit range, Kaldi fbank (25-ms Povey
window, 10-ms hop, snipped edges, DC removal, pre-emphasis 0.97, 512-point FFT, 128 mel bins from 20 Hz to
8 kHz, log), then (x - 15.41663) / (2 * 6.55582). The network: 16x16 patches of the (time, mel) image,
layer norm, a projection to the encoder width, a grouped, weight-normalised conv positional embedding, and
post-norm transformer layers (deep-norm residual scaling, a bucketed relative position bias shared by all
layers, gated by each query). Hidden states are patch tokens in time-major order; the clip embedding is
their mean at the last layer; frames are one time row of patches (160 ms), averaged over frequency.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import audiotransfer.models.public.efficientat as efficientat
from audiotransfer.errors import UserError
from audiotransfer.models.public.base import PublicModel, as_batch

SAMPLE_RATE, FRAME, HOP, N_FFT, N_MELS, FMIN = 16000, 400, 160, 512, 128, 20.0
FBANK_MEAN, FBANK_STD = 15.41663, 6.55582
# the authors' BEATsConfig defaults (the keys this layout reads)
DEFAULTS: dict[str, Any] = {
    "input_patch_size": 16, "embed_dim": 512, "conv_bias": False, "encoder_layers": 12,
    "encoder_embed_dim": 768, "encoder_ffn_embed_dim": 3072, "encoder_attention_heads": 12,
    "activation_fn": "gelu", "layer_norm_first": False, "deep_norm": False, "conv_pos": 128,
    "conv_pos_groups": 16, "relative_position_embedding": False, "num_buckets": 320, "max_distance": 1280,
    "gru_rel_pos": False, "finetuned_model": False, "predictor_class": 527,
}  # fmt: skip
# the released base-size models (BEATs_iter3 and later): deep norm and a gated relative position bias
BASE = DEFAULTS | {"deep_norm": True, "relative_position_embedding": True, "gru_rel_pos": True, "max_distance": 800}
ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "gelu": F.gelu,
    "gelu_accurate": partial(F.gelu, approximate="tanh"),
    "relu": F.relu,
}


class PosConv(nn.Module):
    """A grouped conv with weight norm over the kernel axis (keys `weight_g`, `weight_v`, `bias`)."""

    def __init__(self, dim: int, kernel: int, groups: int) -> None:
        super().__init__()
        self.weight_v = nn.Parameter(torch.randn(dim, dim // groups, kernel) * 0.02)
        self.weight_g = nn.Parameter(self.weight_v.detach().norm(dim=(0, 1), keepdim=True))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.kernel, self.groups = kernel, groups

    def forward(self, x: Tensor) -> Tensor:
        weight = self.weight_g * self.weight_v / self.weight_v.norm(dim=(0, 1), keepdim=True)
        out = F.conv1d(x, weight, self.bias, padding=self.kernel // 2, groups=self.groups)
        return out[..., :-1] if self.kernel % 2 == 0 else out  # same length as the input


class Attention(nn.Module):
    """Multi-head self-attention plus the relative position bias, gated per query when `gated`."""

    relative_attention_bias: nn.Embedding

    def __init__(self, dim: int, heads: int, buckets: int, gated: bool) -> None:
        super().__init__()
        self.heads, self.gated = heads, gated
        self.k_proj, self.v_proj, self.q_proj, self.out_proj = (nn.Linear(dim, dim) for _ in range(4))
        if buckets:
            self.relative_attention_bias = nn.Embedding(buckets, heads)
        if gated:
            self.grep_linear = nn.Linear(dim // heads, 8)
            self.grep_a = nn.Parameter(torch.ones(1, heads, 1, 1))

    def forward(self, x: Tensor, bias: Tensor | None) -> Tensor:
        b, t, d = x.shape
        q, k, v = (p(x).view(b, t, self.heads, -1).transpose(1, 2) for p in (self.q_proj, self.k_proj, self.v_proj))
        mask = None
        if bias is not None:
            mask = bias[None]
            if self.gated:  # the raw query's gate scales each query row of the bias
                gate_a, gate_b = torch.sigmoid(self.grep_linear(q).view(b, self.heads, t, 2, 4).sum(-1)).chunk(2, -1)
                mask = (gate_a * (gate_b * self.grep_a - 1.0) + 2.0) * mask
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out_proj(out.transpose(1, 2).reshape(b, t, d))


class Layer(nn.Module):
    """One transformer layer: post-norm with deep-norm residual scaling, or pre-norm (`layer_norm_first`)."""

    def __init__(self, cfg: dict[str, Any], buckets: int) -> None:
        super().__init__()
        dim = cfg["encoder_embed_dim"]
        self.self_attn = Attention(dim, cfg["encoder_attention_heads"], buckets, cfg["gru_rel_pos"])
        self.self_attn_layer_norm, self.final_layer_norm = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.fc1, self.fc2 = nn.Linear(dim, cfg["encoder_ffn_embed_dim"]), nn.Linear(cfg["encoder_ffn_embed_dim"], dim)
        self.act = ACTIVATIONS[cfg["activation_fn"]]
        self.pre_norm = bool(cfg["layer_norm_first"])
        self.alpha = (2 * cfg["encoder_layers"]) ** 0.25 if cfg["deep_norm"] else 1.0

    def forward(self, x: Tensor, bias: Tensor | None) -> Tensor:
        if self.pre_norm:
            x = x + self.self_attn(self.self_attn_layer_norm(x), bias)
            return x + self.fc2(self.act(self.fc1(self.final_layer_norm(x))))
        x = self.self_attn_layer_norm(x * self.alpha + self.self_attn(x, bias))
        return self.final_layer_norm(x * self.alpha + self.fc2(self.act(self.fc1(x))))


class Encoder(nn.Module):
    """Conv positional embedding, layer norm (post-norm models) and the layers, one bias table shared."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        super().__init__()
        dim = cfg["encoder_embed_dim"]
        self.pos_conv = nn.Sequential(PosConv(dim, cfg["conv_pos"], cfg["conv_pos_groups"]))
        buckets = cfg["num_buckets"] if cfg["relative_position_embedding"] else 0
        layers = [Layer(cfg, buckets) for _ in range(cfg["encoder_layers"])]
        for layer in layers[1:] if buckets else []:  # the authors' layers all point at layer 0's table
            layer.self_attn.relative_attention_bias = layers[0].self_attn.relative_attention_bias
        self.layers = nn.ModuleList(layers)
        self.layer_norm = nn.LayerNorm(dim)
        self.buckets, self.max_distance = buckets, int(cfg["max_distance"])
        self.pre_norm = bool(cfg["layer_norm_first"])

    def position_bias(self, length: int) -> Tensor | None:
        """(heads, T, T) bias of each key's offset from each query, through the shared bucket table."""
        if not self.buckets:
            return None
        pos = torch.arange(length, device=self.layer_norm.weight.device)
        buckets = relative_buckets(pos[None, :] - pos[:, None], self.buckets, self.max_distance)
        table = cast(Layer, self.layers[0]).self_attn.relative_attention_bias
        return table(buckets).permute(2, 0, 1)

    def forward(self, x: Tensor, upto: int) -> list[Tensor]:
        """States 0 (the first layer's input) to `upto` (a layer index) of tokens (B, T, D)."""
        x = x + F.gelu(self.pos_conv(x.transpose(1, 2))).transpose(1, 2)
        states = [x if self.pre_norm else self.layer_norm(x)]
        bias = self.position_bias(x.shape[1])
        for layer in list(self.layers)[:upto]:
            states.append(layer(states[-1], bias))
        if self.pre_norm and upto == len(self.layers):
            states[-1] = self.layer_norm(states[-1])
        return states


def relative_buckets(offset: Tensor, buckets: int, max_distance: int) -> Tensor:
    """T5-style buckets of signed offsets: half per sign, exact below a quarter of them, log-spaced above."""
    half = buckets // 2
    exact = half // 2
    distance = offset.abs()
    far = exact + (torch.log(distance.float().clamp(min=1) / exact) / math.log(max_distance / exact) * (half - exact))
    far = far.long().clamp(max=half - 1)
    return (offset > 0).long() * half + torch.where(distance < exact, distance, far)


class BEATs(PublicModel):
    """A BEATs encoder from its authors' config dict (`BASE`: the released base size), with its fbank front-end."""

    family = "beats"
    sample_rate = SAMPLE_RATE
    window: Tensor
    mel_basis: Tensor

    def __init__(self, cfg: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.cfg = cfg = BASE | (cfg or {})
        patch, embed, dim = cfg["input_patch_size"], cfg["embed_dim"], cfg["encoder_embed_dim"]
        self.patch_embedding = nn.Conv2d(1, embed, patch, patch, bias=cfg["conv_bias"])
        self.layer_norm = nn.LayerNorm(embed)
        self.post_extract_proj = nn.Linear(embed, dim) if embed != dim else None
        self.encoder = Encoder(cfg)
        self.predictor = nn.Linear(dim, cfg["predictor_class"]) if cfg["finetuned_model"] else None
        self.patch, self.embedding_dim, self.num_layers = patch, dim, cfg["encoder_layers"]
        self.frame_hop_s = patch * HOP / SAMPLE_RATE
        self.register_buffer("window", torch.hann_window(FRAME, periodic=False).pow(0.85), persistent=False)
        mel = efficientat.kaldi_mel_banks(N_MELS, N_FFT, SAMPLE_RATE, FMIN, SAMPLE_RATE / 2)
        self.register_buffer("mel_basis", F.pad(mel, (0, 1)), persistent=False)
        self.frontend = {"type": "Kaldi fbank (BEATs preprocess)", "sample_rate": SAMPLE_RATE, "frame": FRAME,
                         "hop": HOP, "window": "povey", "n_fft": N_FFT, "n_mels": N_MELS, "fmin": FMIN,
                         "fmax": SAMPLE_RATE / 2, "preemphasis": 0.97, "scale": 2**15,
                         "normalise": f"(x - {FBANK_MEAN}) / (2 * {FBANK_STD})", "patch": patch}  # fmt: skip

    def fbank(self, wave: Tensor) -> Tensor:
        """The authors' normalised Kaldi fbank: (B, N) at 16 kHz -> (B, frames, 128)."""
        if wave.shape[1] < FRAME + (self.patch - 1) * HOP:
            raise UserError(
                f"BEATs: a clip of {wave.shape[1]} samples is shorter than one {self.patch}-frame patch",
                fix=f"pass at least {FRAME + (self.patch - 1) * HOP} samples ({self.frame_hop_s + 0.015:.3f} s)",
            )
        frames = (wave * 2**15).unfold(1, FRAME, HOP)
        frames = frames - frames.mean(dim=2, keepdim=True)
        frames = frames - 0.97 * torch.cat([frames[..., :1], frames[..., :-1]], dim=2)
        spec = torch.fft.rfft(frames * self.window, n=N_FFT)
        mel = (spec.real**2 + spec.imag**2) @ self.mel_basis.T
        return (mel.clamp(min=torch.finfo(torch.float32).eps).log() - FBANK_MEAN) / (2 * FBANK_STD)

    def tokens(self, wave: Tensor) -> Tensor:
        """Patch tokens (B, time patches x mel patches, D) entering the encoder."""
        x = self.patch_embedding(self.fbank(as_batch(wave))[:, None])
        x = self.layer_norm(x.flatten(2).transpose(1, 2))
        return self.post_extract_proj(x) if self.post_extract_proj is not None else x

    def hidden_states(self, wave: Tensor) -> list[Tensor]:
        return self.encoder(self.tokens(wave), self.num_layers)

    def layer_states(self, wave: Tensor, layer: int | None) -> Tensor:
        """Hidden state `layer`, running the layers up to it only."""
        return self.encoder(self.tokens(wave), self.check_layer(layer))[-1]

    def embed_frames(self, wave: Tensor, layer: int | None = None) -> tuple[Tensor, Tensor]:
        """One frame per time row of patches (160 ms), averaged over the mel patches, and its start in ms."""
        states = self.layer_states(wave, layer)
        frames = states.view(states.shape[0], -1, N_MELS // self.patch, states.shape[2]).mean(dim=2)
        stamps = torch.arange(frames.shape[1], dtype=torch.float32) * (self.frame_hop_s * 1000.0)
        return frames, stamps.expand(frames.shape[0], -1)

    def logits(self, wave: Tensor) -> Tensor:
        """A fine-tuned checkpoint's AudioSet logits (B, classes): the predictor on each token, then the mean."""
        if self.predictor is None:
            raise UserError("this BEATs checkpoint has no predictor head", fix="use a fine-tuned (AS2M) checkpoint")
        return self.predictor(self.layer_states(wave, None)).mean(dim=1)


def check_config(raw: Any, file: Path) -> dict[str, Any]:
    """The checkpoint's `cfg` over the authors' defaults; UserError naming the first unusable setting."""
    if not isinstance(raw, dict):
        raise UserError(
            f"{file}: 'cfg' is a {type(raw).__name__}, not a dict", fix="pass an unmodified BEATs checkpoint"
        )
    cfg = DEFAULTS | raw
    fix = "pass an unmodified BEATs checkpoint from microsoft/unilm (BEATs_iter3*.pt)"
    if cfg["activation_fn"] not in ACTIVATIONS:
        raise UserError(f"{file}: cfg activation_fn '{cfg['activation_fn']}' is not supported",
                        fix=f"use a checkpoint with activation_fn in {', '.join(ACTIVATIONS)}")  # fmt: skip
    for key in ("input_patch_size", "embed_dim", "encoder_layers", "encoder_embed_dim", "encoder_ffn_embed_dim",
                "encoder_attention_heads", "conv_pos", "conv_pos_groups", "num_buckets", "max_distance"):  # fmt: skip
        if not isinstance(cfg[key], int) or isinstance(cfg[key], bool) or cfg[key] <= 0:
            raise UserError(f"{file}: cfg {key} = {cfg[key]!r} is not a positive integer", fix=fix)
    if cfg["encoder_embed_dim"] % cfg["encoder_attention_heads"] or (cfg["deep_norm"] and cfg["layer_norm_first"]):
        raise UserError(f"{file}: cfg encoder_embed_dim / heads / deep_norm / layer_norm_first disagree", fix=fix)
    if N_MELS % cfg["input_patch_size"]:
        raise UserError(f"{file}: cfg input_patch_size {cfg['input_patch_size']} does not divide 128 mel bins", fix=fix)
    return cfg


def load(path: str | Path) -> BEATs:
    """A BEATs checkpoint (`{'cfg': ..., 'model': ...}`), loaded strictly into the layout its cfg gives."""
    file = Path(path).expanduser()
    fix = "pass an unmodified BEATs checkpoint from microsoft/unilm (BEATs_iter3*.pt)"
    if not file.is_file():
        raise UserError(f"BEATs checkpoint {file} not found", fix=fix)
    try:
        ckpt = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UserError(f"{file}: not a PyTorch checkpoint ({str(exc)[:200]})", fix=fix) from None
    for key in ("cfg", "model"):
        if not isinstance(ckpt, dict) or key not in ckpt:
            raise UserError(f"{file}: no '{key}' key (a BEATs checkpoint is {{'cfg': ..., 'model': ...}})", fix=fix)
    model = BEATs(check_config(ckpt["cfg"], file))
    state = ckpt["model"]
    if not isinstance(state, dict):
        raise UserError(f"{file}: 'model' is a {type(state).__name__}, not a state dict", fix=fix)
    missing = [k for k in model.state_dict() if k not in state]
    extra = [k for k in state if k not in model.state_dict()]
    if missing or extra:
        what = f"no '{missing[0]}'" if missing else f"an unexpected '{extra[0]}'"
        raise UserError(f"{file}: 'model' has {what} ({len(missing)} missing, {len(extra)} unexpected keys for its "
                        f"cfg)", fix=fix + "; a fine-tuned one needs cfg finetuned_model: true")  # fmt: skip
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise UserError(f"{file}: a tensor does not match its cfg: {str(exc)[:300]}", fix=fix) from None
    return model.eval()
