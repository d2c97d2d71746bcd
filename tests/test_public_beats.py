"""BEATs: the authors' checkpoint layout loads strictly, and the output is computed again here by hand.

The authors' code (microsoft/unilm `beats/`) imports torchaudio, which cannot be installed beside this torch,
so fidelity is (1) a state dict in the authors' key layout, written out below from their modules for a small
cfg, that loads with strict=True and gives back every tensor, and (2) on a fixed input, an independent
computation of the front-end (transformers' numpy Kaldi fbank), the patch tokens (an explicit unfold), the
relative position buckets (by hand) and one gated attention layer (the authors' arithmetic, written out).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import audiotransfer
from audiotransfer.errors import UserError
from audiotransfer.models.public import beats as bt
from audiotransfer.models.public import load_public

SMALL = {"input_patch_size": 16, "embed_dim": 24, "conv_bias": False, "encoder_layers": 2, "encoder_embed_dim": 32,
         "encoder_ffn_embed_dim": 40, "encoder_attention_heads": 4, "activation_fn": "gelu",
         "layer_norm_first": False, "deep_norm": True, "conv_pos": 8, "conv_pos_groups": 4,
         "relative_position_embedding": True, "num_buckets": 32, "max_distance": 64, "gru_rel_pos": True,
         "finetuned_model": True, "predictor_class": 5, "layer_wise_gradient_decay_ratio": 0.6,
         "dropout": 0.0, "encoder_layerdrop": 0.05}  # fmt: skip


def authors_state(cfg: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Random tensors under the authors' key names and shapes (BEATs, TransformerEncoder, MultiheadAttention)."""
    gen = torch.Generator().manual_seed(0)
    e, d, f, h, p = (cfg[k] for k in ("embed_dim", "encoder_embed_dim", "encoder_ffn_embed_dim",
                                      "encoder_attention_heads", "input_patch_size"))  # fmt: skip
    shapes: dict[str, tuple[int, ...]] = {
        "patch_embedding.weight": (e, 1, p, p), "layer_norm.weight": (e,), "layer_norm.bias": (e,),
        "post_extract_proj.weight": (d, e), "post_extract_proj.bias": (d,),
        "encoder.pos_conv.0.bias": (d,), "encoder.pos_conv.0.weight_g": (1, 1, cfg["conv_pos"]),
        "encoder.pos_conv.0.weight_v": (d, d // cfg["conv_pos_groups"], cfg["conv_pos"]),
        "encoder.layer_norm.weight": (d,), "encoder.layer_norm.bias": (d,),
        "predictor.weight": (cfg["predictor_class"], d), "predictor.bias": (cfg["predictor_class"],),
    }  # fmt: skip
    for i in range(cfg["encoder_layers"]):
        a = f"encoder.layers.{i}."
        for name in ("k_proj", "v_proj", "q_proj", "out_proj"):
            shapes |= {f"{a}self_attn.{name}.weight": (d, d), f"{a}self_attn.{name}.bias": (d,)}
        shapes |= {f"{a}self_attn.relative_attention_bias.weight": (cfg["num_buckets"], h),
                   f"{a}self_attn.grep_linear.weight": (8, d // h), f"{a}self_attn.grep_linear.bias": (8,),
                   f"{a}self_attn.grep_a": (1, h, 1, 1), f"{a}fc1.weight": (f, d), f"{a}fc1.bias": (f,),
                   f"{a}fc2.weight": (d, f), f"{a}fc2.bias": (d,)}  # fmt: skip
        for norm in ("self_attn_layer_norm", "final_layer_norm"):
            shapes |= {f"{a}{norm}.weight": (d,), f"{a}{norm}.bias": (d,)}
    state = {k: 0.2 * torch.randn(s, generator=gen) for k, s in shapes.items()}
    for key in state:
        if key.endswith("norm.weight") or key.endswith("grep_a") or key.endswith("weight_g"):
            state[key] = state[key].abs() + 1.0
    table = state["encoder.layers.0.self_attn.relative_attention_bias.weight"]
    for i in range(cfg["encoder_layers"]):  # the authors' layers share layer 0's bias table
        state[f"encoder.layers.{i}.self_attn.relative_attention_bias.weight"] = table
    return state


def authors_layer(x: torch.Tensor, state: dict[str, torch.Tensor], i: int, bias: torch.Tensor) -> torch.Tensor:
    """One post-norm deep-norm layer as the authors compute it, (T, B, C) layout, alpha-scaled attention."""
    w = {k.removeprefix(f"encoder.layers.{i}."): v for k, v in state.items() if k.startswith(f"encoder.layers.{i}.")}
    t, b, c = x.shape
    heads, hd = SMALL["encoder_attention_heads"], c // SMALL["encoder_attention_heads"]
    scaling, alpha = hd**-0.5, 32
    q = F.linear(x, w["self_attn.q_proj.weight"], w["self_attn.q_proj.bias"]) * scaling / alpha
    k = F.linear(x, w["self_attn.k_proj.weight"], w["self_attn.k_proj.bias"])
    v = F.linear(x, w["self_attn.v_proj.weight"], w["self_attn.v_proj.bias"])
    q, k, v = (z.reshape(t, b * heads, hd).transpose(0, 1) for z in (q, k, v))
    att = torch.bmm(q, k.transpose(1, 2))
    att = (att - att.max(dim=-1, keepdim=True)[0]) * alpha
    raw_q = q.view(b, heads, t, hd) * alpha / scaling
    g = F.linear(raw_q, w["self_attn.grep_linear.weight"], w["self_attn.grep_linear.bias"])
    g = torch.sigmoid(g.view(b, heads, t, 2, 4).sum(-1))
    gate = g[..., :1] * (g[..., 1:] * w["self_attn.grep_a"] - 1.0) + 2.0
    att = att + gate.reshape(b * heads, t, 1) * bias[None].repeat(b, 1, 1, 1).view(b * heads, t, t)
    out = torch.bmm(att.softmax(-1), v).transpose(0, 1).reshape(t, b, c)
    out = F.linear(out, w["self_attn.out_proj.weight"], w["self_attn.out_proj.bias"])
    deep = (2 * SMALL["encoder_layers"]) ** 0.25
    x = F.layer_norm(x * deep + out, (c,), w["self_attn_layer_norm.weight"], w["self_attn_layer_norm.bias"])
    ffn = F.linear(F.gelu(F.linear(x, w["fc1.weight"], w["fc1.bias"])), w["fc2.weight"], w["fc2.bias"])
    return F.layer_norm(x * deep + ffn, (c,), w["final_layer_norm.weight"], w["final_layer_norm.bias"])


def bucket(offset: int, buckets: int = 32, max_distance: int = 64) -> int:
    """The authors' bucket of one key-minus-query offset, with Python's math."""
    half = buckets // 2
    exact = half // 2
    base = half if offset > 0 else 0
    n = abs(offset)
    if n < exact:
        return base + n
    return base + min(half - 1, exact + int(math.log(n / exact) / math.log(max_distance / exact) * (half - exact)))


def test_beats_authors_layout_loads_strictly(tmp_path: Path) -> None:
    state = authors_state(SMALL)
    torch.save({"cfg": SMALL, "model": state}, tmp_path / "BEATs_small.pt")
    model = load_public(tmp_path / "BEATs_small.pt", "beats")
    assert isinstance(model, bt.BEATs) and not model.training
    mine = model.state_dict()
    assert sorted(mine) == sorted(state)  # every authors' key, nothing left over
    assert all(torch.equal(mine[k], state[k]) for k in state)
    assert (model.num_layers, model.embedding_dim, model.sample_rate) == (2, 32, 16000)
    wave = np.sin(np.arange(16000, dtype=np.float32) * 0.3)
    loaded = audiotransfer.load_model(tmp_path / "BEATs_small.pt", format="beats")  # the same family in inference
    with torch.inference_mode():
        want = model.embed(torch.from_numpy(wave), layer=1)[0].numpy()
    assert np.abs(loaded.embed([wave], sample_rate=16000, layer=1)[0] - want).max() < 1e-5
    [(stamps, frames)] = loaded.embed_frames([wave], sample_rate=16000)
    assert frames.shape == (6, 32) and list(stamps) == [0.0, 160.0, 320.0, 480.0, 640.0, 800.0]
    with torch.device("meta"):  # shapes only
        base = bt.BEATs()  # the released base size: the paper's 90M parameters
    assert abs(sum(p.numel() for p in base.parameters()) / 1e6 - 90.3) < 0.05


@pytest.mark.filterwarnings("ignore:At least one mel filter has all zero values")  # Kaldi's lowest bins are empty
def test_beats_output_checked_by_hand(tmp_path: Path) -> None:
    tf_audio = pytest.importorskip("transformers.audio_utils")
    state = authors_state(SMALL)
    torch.save({"cfg": SMALL, "model": state}, tmp_path / "b.pt")
    model = load_public(tmp_path / "b.pt", "beats")
    t = np.arange(int(1.3 * 16000)) / 16000
    wave = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.02 * np.random.default_rng(1).normal(size=len(t))).astype(np.float32)
    # front-end: transformers' numpy Kaldi fbank (Povey window, 20 Hz - 8 kHz Kaldi mel bins), the authors' scaling
    mel = tf_audio.mel_filter_bank(257, 128, 20, 8000, 16000, None, "kaldi", True)
    ref = tf_audio.spectrogram(wave.astype(np.float64) * 2**15, tf_audio.window_function(400, "povey", periodic=False),
                               400, 160, 512, power=2.0, center=False, preemphasis=0.97, mel_filters=mel,
                               log_mel="log", mel_floor=1.192092955078125e-07, remove_dc_offset=True,
                               dtype=np.float64).T  # fmt: skip
    ref = (ref - 15.41663) / (2 * 6.55582)
    with torch.inference_mode():
        fbank = model.fbank(torch.from_numpy(wave)[None])[0].double().numpy()
        states = model.hidden_states(torch.from_numpy(wave))
        emb, emb1 = model.embed(torch.from_numpy(wave)), model.embed(torch.from_numpy(wave), layer=1)
        frames, stamps = model.embed_frames(torch.from_numpy(wave)[None])
        logits = model.logits(torch.from_numpy(wave))
    assert fbank.shape == ref.shape == (1 + (len(wave) - 400) // 160, 128)
    assert np.abs(fbank - ref).max() < 1e-4  # float32 against float64
    # patches: 16x16 blocks of the fbank, time-major, a matrix product, layer norm, projection
    tp = fbank.shape[0] // 16
    blocks = torch.from_numpy(fbank[: tp * 16]).float().reshape(tp, 16, 8, 16).permute(0, 2, 1, 3).reshape(tp * 8, 256)
    x = blocks @ state["patch_embedding.weight"].reshape(24, 256).T
    x = F.layer_norm(x, (24,), state["layer_norm.weight"], state["layer_norm.bias"])
    x = F.linear(x, state["post_extract_proj.weight"], state["post_extract_proj.bias"])
    # conv positional embedding: weight norm over the kernel axis, same padding (the last output dropped)
    v, g = state["encoder.pos_conv.0.weight_v"], state["encoder.pos_conv.0.weight_g"]
    conv = F.conv1d(x.T[None], g * v / v.pow(2).sum(dim=(0, 1), keepdim=True).sqrt(), state["encoder.pos_conv.0.bias"],
                    padding=4, groups=4)[0, :, :-1].T  # fmt: skip
    x = F.layer_norm(x + F.gelu(conv), (32,), state["encoder.layer_norm.weight"], state["encoder.layer_norm.bias"])
    assert torch.allclose(states[0][0], x, atol=1e-4)
    offsets = [[key - query for key in range(tp * 8)] for query in range(tp * 8)]
    buckets = torch.tensor([[bucket(o) for o in row] for row in offsets])
    assert bucket(-5) == 5 and bucket(3) == 19 and bucket(-40) == 14 and bucket(9) == 24  # a few by eye
    assert torch.equal(bt.relative_buckets(torch.tensor(offsets), 32, 64), buckets)
    bias = state["encoder.layers.0.self_attn.relative_attention_bias.weight"][buckets].permute(2, 0, 1)
    one = authors_layer(states[0][0][:, None], state, 0, bias)[:, 0]
    assert torch.allclose(states[1][0], one, atol=1e-4)
    two = authors_layer(one[:, None], state, 1, bias)[:, 0]
    assert torch.allclose(states[2][0], two, atol=1e-4)
    assert torch.allclose(emb[0], two.mean(0), atol=1e-5) and torch.allclose(emb1[0], one.mean(0), atol=1e-5)
    assert frames.shape == (1, tp, 32) and torch.allclose(frames[0], two.view(tp, 8, 32).mean(1), atol=1e-5)
    assert stamps[0].tolist() == [160.0 * i for i in range(tp)]
    assert torch.allclose(logits[0], F.linear(two, state["predictor.weight"], state["predictor.bias"]).mean(0))


def test_beats_malformed_files_name_the_key(tmp_path: Path) -> None:
    state = authors_state(SMALL)
    torch.save({"model": state}, tmp_path / "nocfg.pt")
    with pytest.raises(UserError, match=r"nocfg.pt: no 'cfg' key") as err:
        load_public(tmp_path / "nocfg.pt", "beats")
    assert err.value.fix and "BEATs_iter3" in err.value.fix
    torch.save({"cfg": SMALL, "model": {k: v for k, v in state.items() if k != "encoder.layers.1.fc2.bias"}},
               tmp_path / "cut.pt")  # fmt: skip
    with pytest.raises(UserError, match=r"cut.pt: 'model' has no 'encoder.layers.1.fc2.bias'"):
        load_public(tmp_path / "cut.pt", "beats")
    torch.save({"cfg": SMALL | {"finetuned_model": False}, "model": state}, tmp_path / "head.pt")
    with pytest.raises(UserError, match=r"unexpected 'predictor.weight'") as err:
        load_public(tmp_path / "head.pt", "beats")
    assert err.value.fix and "finetuned_model" in err.value.fix
    torch.save({"cfg": SMALL | {"activation_fn": "glu"}, "model": state}, tmp_path / "glu.pt")
    with pytest.raises(UserError, match="activation_fn 'glu'"):
        load_public(tmp_path / "glu.pt", "beats")
    (tmp_path / "junk.pt").write_text("not a checkpoint")
    with pytest.raises(UserError, match=r"junk.pt: not a PyTorch checkpoint"):
        load_public(tmp_path / "junk.pt", "beats")
    with pytest.raises(UserError, match="shorter than one 16-frame patch"):
        bt.BEATs(SMALL).embed(torch.zeros(2000))
