"""Signal building blocks of the synthetic world: noises, filters, envelopes and physical-ish models.

Everything here is plain numpy/scipy on float64 arrays at 16 kHz, driven by an explicit
`numpy.random.Generator`, so a recipe called twice with equally seeded generators returns the same samples.
The recipes in `recipes.py` combine these blocks into the sound classes.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import signal

SR = 16000
Range = tuple[float, float]

# Pinking filter (Kellet's 3-pole approximation of a 1/f spectrum).
_PINK_B = np.array([0.049922035, -0.095993537, 0.050612699, -0.004408786])
_PINK_A = np.array([1.0, -2.494956002, 2.017265875, -0.522189400])


def draw(rng: np.random.Generator, r: Range | float) -> float:
    """A uniform draw from a (low, high) range; a plain number is returned as is."""
    if isinstance(r, tuple | list):
        return float(rng.uniform(r[0], r[1]))
    return float(r)


def log_draw(rng: np.random.Generator, r: Range) -> float:
    """A log-uniform draw (frequencies, durations): equal odds per octave."""
    return float(np.exp(rng.uniform(np.log(r[0]), np.log(r[1]))))


def seconds(x: float) -> int:
    return max(1, round(x * SR))


# ----------------------------------------------------------------------------------------- noises
def white(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.standard_normal(n)


def pink(rng: np.random.Generator, n: int) -> np.ndarray:
    return signal.lfilter(_PINK_B, _PINK_A, rng.standard_normal(n)) * 10.0


def brown(rng: np.random.Generator, n: int) -> np.ndarray:
    return signal.lfilter([0.1], [1.0, -0.995], rng.standard_normal(n))


# ---------------------------------------------------------------------------------------- filters
def _grid(f: float) -> float:
    """Clip to the usable band and snap to a 1% log grid, so filter designs can be cached."""
    f = float(np.clip(f, 20.0, 0.45 * SR))
    return float(np.exp(np.round(np.log(f) / 0.01) * 0.01))


@lru_cache(maxsize=4096)
def _butter(order: int, edges: tuple[float, ...], btype: str) -> np.ndarray:
    return signal.butter(order, list(edges) if len(edges) > 1 else edges[0], btype=btype, fs=SR, output="sos")


def bandpass(x: np.ndarray, lo: float, hi: float, order: int = 2) -> np.ndarray:
    lo, hi = _grid(lo), _grid(hi)
    if hi <= lo * 1.05:
        hi = _grid(min(lo * 1.2, 0.45 * SR))
        lo = min(lo, hi / 1.2)
    return signal.sosfilt(_butter(order, (lo, hi), "bandpass"), x)


def lowpass(x: np.ndarray, f: float, order: int = 2) -> np.ndarray:
    return signal.sosfilt(_butter(order, (_grid(f),), "lowpass"), x)


def highpass(x: np.ndarray, f: float, order: int = 2) -> np.ndarray:
    return signal.sosfilt(_butter(order, (_grid(f),), "highpass"), x)


def resonators(x: np.ndarray, freqs: list[float] | np.ndarray, bws: list[float] | np.ndarray) -> np.ndarray:
    """Cascade of two-pole resonators (formants), each normalised to unit gain at its centre."""
    a = np.array([1.0])
    gain = 1.0
    for f, bw in zip(freqs, bws, strict=True):
        f = min(float(f), 0.45 * SR)
        r = np.exp(-np.pi * bw / SR)
        a = np.convolve(a, [1.0, -2.0 * r * np.cos(2 * np.pi * f / SR), r * r])
        gain *= (1.0 - r) * np.sqrt(1.0 - 2.0 * r * np.cos(4 * np.pi * f / SR) + r * r)
    return signal.lfilter([gain], a, x)


# -------------------------------------------------------------------------------------- envelopes
def decay(n: int, tau: float, attack: float = 0.002) -> np.ndarray:
    """Linear attack then exponential decay with time constant `tau` seconds."""
    t = np.arange(n) / SR
    return np.minimum(t / max(attack, 1e-4), 1.0) * np.exp(-np.maximum(t - attack, 0.0) / tau)


def taper(n: int, fade: int) -> np.ndarray:
    """Flat window with raised-cosine fades of `fade` samples at both ends."""
    w = np.ones(n)
    fade = min(fade, n // 2)
    if fade > 0:
        ramp = 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, fade))
        w[:fade] = ramp
        w[n - fade :] = ramp[::-1]
    return w


def wander(rng: np.random.Generator, n: int, rate_hz: float) -> np.ndarray:
    """A smooth random curve in [0, 1] changing about `rate_hz` times a second."""
    knots = max(2, int(np.ceil(n / SR * rate_hz)) + 2)
    values = rng.uniform(0.0, 1.0, knots)
    xs = np.linspace(0.0, n, knots)
    return np.interp(np.arange(n), xs, values)


def place(out: np.ndarray, x: np.ndarray, start: int) -> None:
    """Add `x` into `out` from sample `start`, clipping at the end."""
    if start >= len(out):
        return
    stop = min(len(out), start + len(x))
    out[start:stop] += x[: stop - start]


def onsets(rng: np.random.Generator, count: int, period: float, jitter: float, start: float = 0.0) -> list[int]:
    """Sample positions of `count` roughly periodic onsets (period and jitter in seconds)."""
    times = start + period * np.arange(count) + rng.uniform(-jitter, jitter, count) * period
    return [seconds(max(t, 0.0)) for t in times]


def poisson_times(rng: np.random.Generator, n: int, rate: float) -> np.ndarray:
    """Sample positions of a Poisson process of `rate` events per second over `n` samples."""
    count = rng.poisson(rate * n / SR)
    return np.sort(rng.integers(0, n, count))


# ------------------------------------------------------------------------------------------ tones
def harmonic(f0: np.ndarray, amps: np.ndarray | list[float], rng: np.random.Generator) -> np.ndarray:
    """Additive tone following the frequency curve `f0` (Hz per sample); partials above 7.5 kHz dropped.

    sin(k*phase) comes from the Chebyshev recurrence s_k = 2 cos(phase) s_(k-1) - s_(k-2): one sine and
    one cosine however many partials.
    """
    phase = 2 * np.pi * np.cumsum(f0) / SR + rng.uniform(0, 2 * np.pi)
    top = float(np.max(f0))
    twice_cos = 2.0 * np.cos(phase)
    prev, cur = np.zeros(len(f0)), np.sin(phase)
    out = np.zeros(len(f0))
    for k, a in enumerate(amps, start=1):
        if k * top >= 7500:
            break
        if a:
            out += a * cur
        prev, cur = cur, twice_cos * cur - prev
    return out


def glottal(f0: np.ndarray) -> np.ndarray:
    """Voiced source: one impulse per pitch period, low-passed to a glottal pulse, then differentiated."""
    cycles = np.floor(np.cumsum(f0) / SR)
    pulses = np.diff(cycles, prepend=cycles[0])
    shaped = signal.lfilter([1.0], [1.0, -1.9, 0.9025], pulses)
    return np.diff(shaped, prepend=0.0)


def modal(n: int, freqs: np.ndarray, taus: np.ndarray, amps: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Struck object: a sum of exponentially decaying sinusoids (bells, bars, wood, metal).

    Each partial is the impulse response of a two-pole resonator, started at a random phase.
    """
    out = np.zeros(n)
    impulse = np.zeros(n)
    impulse[0] = 1.0
    for f, tau, a in zip(freqs, taus, amps, strict=True):
        if f >= 7500:
            continue
        w, r, phi = 2 * np.pi * f / SR, np.exp(-1.0 / (tau * SR)), rng.uniform(0, 2 * np.pi)
        # r^t sin(w t + phi) = impulse response of (sin(phi) + r sin(w - phi) z^-1) / (1 - 2 r cos(w) z^-1 + r^2 z^-2)
        out += a * signal.lfilter([np.sin(phi), r * np.sin(w - phi)], [1.0, -2 * r * np.cos(w), r * r], impulse)
    return out


def karplus(rng: np.random.Generator, f0: float, n: int, loss: float, brightness: float) -> np.ndarray:
    """Plucked string (Karplus-Strong): a noise burst circulating in a damped delay line of one period."""
    period = max(2, round(SR / f0))
    burst = lowpass(rng.uniform(-1, 1, period), brightness)
    y = np.zeros(n + period + 1)
    off = period + 1
    y[off : off + period] = burst[: min(period, n)]
    for start in range(off, off + n, period):
        stop = min(start + period, off + n)
        y[start:stop] += loss * 0.5 * (y[start - period : stop - period] + y[start - period - 1 : stop - period - 1])
    return y[off:]


def clicks(n: int, times: np.ndarray, amps: np.ndarray) -> np.ndarray:
    """Impulse train with the given sample positions and amplitudes."""
    out = np.zeros(n)
    np.add.at(out, times[times < n], amps[times < n])
    return out
