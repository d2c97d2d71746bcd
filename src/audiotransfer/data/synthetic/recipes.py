"""Parametric recipes: one function per sound family, its parameters drawn from ranges in the class table.

Every recipe has the signature `recipe(rng, n, **params) -> waveform` with at most `n` samples; textures
fill all `n`, discrete events return their own length. Loudness is set later by the clip assembler, so
recipes only shape timbre, pitch, rhythm and duration. Ranges are (low, high) tuples drawn per event,
which is where the variation inside a class comes from.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

import audiotransfer.data.synthetic.voice as voice
from audiotransfer.data.synthetic.sources import (
    SR,
    Range,
    bandpass,
    brown,
    clicks,
    decay,
    draw,
    harmonic,
    highpass,
    karplus,
    log_draw,
    lowpass,
    modal,
    onsets,
    pink,
    place,
    poisson_times,
    resonators,
    seconds,
    taper,
    wander,
    white,
)

Recipe = Callable[..., np.ndarray]


def _length(n: int, rng: np.random.Generator, duration: Range) -> int:
    return min(n, seconds(draw(rng, duration)))


# -------------------------------------------------------------------------------------- human
def speech(rng: np.random.Generator, n: int, voice_kind: str, duration: Range = (0.8, 2.0),
           style: str = "normal") -> np.ndarray:  # fmt: skip
    """Running speech (random syllables) by a random speaker of `voice_kind` ("any": male, female or child);
    style "whisper" or "robot" (synthesizer)."""
    speaker = _random_voice(rng) if voice_kind == "any" else voice.random_speaker(rng, voice_kind)
    manner = {"normal": voice.NORMAL, "whisper": voice.Style(whisper=True), "robot": voice.ROBOT}[style]
    return voice.babble(rng, speaker, draw(rng, duration) * n / SR / 2.0, manner)[:n]


def _random_voice(rng: np.random.Generator) -> voice.Speaker:
    return voice.random_speaker(rng, str(rng.choice(list(voice.VOICES))))


def babbling(rng: np.random.Generator, n: int, count: Range = (3, 8.99)) -> np.ndarray:
    """One consonant-vowel syllable repeated ("ba-ba-ba"), as infants babble."""
    syllable = [voice.CONSONANTS[rng.integers(len(voice.CONSONANTS))], list(voice.VOWELS)[rng.integers(8)]]
    return voice.speak(rng, syllable * int(draw(rng, count)), _random_voice(rng))[:n]


def melodic_voice(rng: np.random.Generator, n: int, voice_kind: str, kind: str) -> np.ndarray:
    """Humming ("m" on a melody), singing (syllables with long vowels, melody, vibrato) or a yell."""
    speaker = voice.random_speaker(rng, voice_kind)
    if kind == "hum":
        units = ["m"] * int(draw(rng, (3, 7.99)))
        style = voice.Style(stretch=draw(rng, (3.0, 5.0)), intonation=0.02, declination=0.0)
    elif kind == "sing":
        units = [
            u
            for _ in range(int(draw(rng, (3, 6.99))))
            for u in (voice.CONSONANTS[rng.integers(len(voice.CONSONANTS))], list(voice.VOWELS)[rng.integers(8)])
        ]
        style = voice.Style(stretch=draw(rng, (2.5, 4.0)), intonation=0.01, declination=0.0,
                            vibrato=draw(rng, (0.01, 0.03)))  # fmt: skip
    else:
        units = [["h", "e", "i"], ["a"], ["h", "o"], ["y", "e", "ae"]][rng.integers(4)]
        speaker = voice.Speaker(speaker.f0 * draw(rng, (1.4, 1.9)), speaker.scale * 1.05, speaker.rate, 0.1)
        style = voice.Style(stretch=draw(rng, (2.5, 4.5)), intonation=0.3, declination=-0.2)
    notes = None if kind == "yell" else _melody(rng, 1.0, len(units))
    return voice.speak(rng, units, speaker, style, notes)[:n]


def vocal(rng: np.random.Generator, n: int, patterns: list[list[str]], repeat: Range = (1, 1.99),
          rate: Range = (0.8, 1.2), stretch: Range = (1.0, 1.0), pitch: Range = (1.0, 1.0),
          rise: Range = (0.0, 0.0), breath: Range = (0.0, 0.3)) -> np.ndarray:  # fmt: skip
    """Non-speech vocalisations as fixed unit patterns of the speech voice (laughs, yells, whoops, sighs,
    sneezes) by any kind of speaker: telling them apart takes vowels and consonants, as with command words."""
    base = _random_voice(rng)
    speaker = voice.Speaker(base.f0 * draw(rng, pitch), base.scale, draw(rng, rate), draw(rng, breath))
    style = voice.Style(stretch=draw(rng, stretch), declination=-draw(rng, rise), intonation=0.1)
    units = patterns[rng.integers(len(patterns))] * int(draw(rng, repeat))
    return voice.speak(rng, units, speaker, style)[:n]


def cough(rng: np.random.Generator, n: int, count: Range = (1, 3.99)) -> np.ndarray:
    out = np.zeros(n)
    scale = draw(rng, (0.9, 1.3))
    for start in onsets(rng, int(draw(rng, count)), draw(rng, (0.25, 0.5)), 0.2):
        m = seconds(draw(rng, (0.15, 0.35)))
        burst = resonators(white(rng, m), np.array([600, 1200, 2500]) * scale, [200, 300, 400])
        burst *= decay(m, draw(rng, (0.04, 0.1)), attack=0.004)
        place(out, burst, start)
    return out[: max(s for s in np.flatnonzero(out)) + 1] if out.any() else out


def whistling(rng: np.random.Generator, n: int, pitch: Range = (700, 2200), notes: Range = (2, 6.99)) -> np.ndarray:
    count = int(draw(rng, notes))
    length = _length(n, rng, (0.6, 2.0))
    centre = log_draw(rng, pitch)
    steps = centre * 2 ** (rng.integers(-5, 8, count) / 12)
    f0 = np.repeat(steps, int(np.ceil(length / count)))[:length]
    f0 = np.convolve(f0, np.ones(400) / 400, mode="same")
    f0[:200], f0[-200:] = f0[200], f0[-201]
    f0 *= 1 + 0.01 * np.sin(2 * np.pi * draw(rng, (4, 7)) * np.arange(length) / SR)
    tone = harmonic(f0, [1.0, 0.08], rng) + 0.03 * bandpass(white(rng, length), 800, 4000)
    return tone * taper(length, seconds(0.05))


def claps(rng: np.random.Generator, n: int, rate: Range = (2.0, 6.0), regular: float = 0.15) -> np.ndarray:
    length = _length(n, rng, (0.8, 2.0))
    times = onsets(rng, int(length / SR * draw(rng, rate)) + 1, 1.0 / draw(rng, rate), regular)
    out = np.zeros(length)
    centre = draw(rng, (900, 2000))
    for t in times:
        m = seconds(0.05)
        place(out, bandpass(white(rng, m), centre * 0.6, centre * 2.2) * decay(m, draw(rng, (0.006, 0.015))), t)
    return out


def footsteps(rng: np.random.Generator, n: int, rate: Range = (1.5, 2.6)) -> np.ndarray:
    period = 1.0 / draw(rng, rate)
    out = np.zeros(n)
    thud_f = draw(rng, (150, 400))
    scuff = draw(rng, (0.05, 0.4))
    for t in onsets(rng, int(n / SR / period) + 1, period, 0.05, start=draw(rng, (0, period))):
        m = seconds(0.12)
        step = lowpass(white(rng, m), thud_f) * decay(m, 0.025)
        step += scuff * bandpass(white(rng, m), 2000, 6000) * decay(m, 0.04, attack=0.02)
        place(out, step, t)
    return out


# -------------------------------------------------------------------------------------- animals
def chirps(rng: np.random.Generator, n: int, band: Range = (2500, 7000), sweep: Range = (-1.0, 1.0),
           length: Range = (0.03, 0.12), count: Range = (3, 10.99),
           gap: Range = (0.03, 0.2)) -> np.ndarray:  # fmt: skip
    """Bird calls and songs: frequency-modulated tonal syllables in a bout."""
    out = np.zeros(n)
    pos = 0
    f_lo, f_hi = sorted((log_draw(rng, band), log_draw(rng, band)))
    shape = draw(rng, sweep)
    syllable = draw(rng, length)
    for _ in range(int(draw(rng, count))):
        m = seconds(syllable * draw(rng, (0.8, 1.25)))
        t = np.linspace(0.0, 1.0, m)
        curve = t if shape >= 0 else 1.0 - t
        f0 = f_lo + (f_hi - f_lo) * curve ** (1 + abs(shape) * 2)
        f0 *= 1 + 0.03 * np.sin(2 * np.pi * draw(rng, (20, 80)) * t * m / SR)
        place(out, harmonic(f0, [1.0, 0.2, 0.05], rng) * np.sin(np.pi * t) ** 2, pos)
        pos += m + seconds(draw(rng, gap))
        if pos >= n:
            break
    return out[: min(n, pos)]


def harsh_calls(rng: np.random.Generator, n: int, f0: Range, formant: Range, length: Range,
                count: Range, noise: Range = (0.1, 0.4), glide: Range = (-0.2, 0.2)) -> np.ndarray:  # fmt: skip
    """Harmonic-rich animal calls: an additive tone whose partials follow one fixed spectral peak, plus
    rough noise (squawk, caw, bark, meow). Deliberately not the source-filter voice of the speech classes."""
    out = np.zeros(n)
    base = log_draw(rng, f0)
    form = log_draw(rng, formant)
    period = draw(rng, length) * draw(rng, (1.3, 2.2))
    k = np.arange(1, 25)
    amps = np.exp(-0.5 * ((k * base - form) / (0.6 * form)) ** 2) + 0.05
    for start in onsets(rng, int(draw(rng, count)), period, 0.15):
        m = seconds(draw(rng, length))
        t = np.linspace(0.0, 1.0, m)
        contour = base * (1 + draw(rng, glide) * np.sin(np.pi * t)) * (1 + 0.02 * rng.standard_normal())
        call = harmonic(contour, amps, rng) * (1 + draw(rng, noise) * bandpass(white(rng, m), 30, 300))
        place(out, call * decay(m, m / SR / 2.5, attack=0.01) * taper(m, seconds(0.01)), start)
    end = int(np.flatnonzero(out)[-1]) + 1 if out.any() else n
    return out[:end]


def hoots(rng: np.random.Generator, n: int, f0: Range, length: Range, count: Range,
          glide: Range = (0.0, 0.15)) -> np.ndarray:  # fmt: skip
    """Soft tonal calls with a pitch rise and fall: owl hoots, dove coos."""
    out = np.zeros(n)
    base = log_draw(rng, f0)
    for i, start in enumerate(onsets(rng, int(draw(rng, count)), draw(rng, length) * 1.6, 0.1)):
        m = seconds(draw(rng, length))
        t = np.linspace(0.0, 1.0, m)
        f = base * (1 + (0.08 if i % 2 else 0.0)) * (1 + draw(rng, glide) * np.sin(np.pi * t))
        place(out, harmonic(f, [1.0, 0.15, 0.05], rng) * np.sin(np.pi * t) ** 1.5, start)
    end = int(np.flatnonzero(out)[-1]) + 1 if out.any() else n
    return out[:end]


def cricket(rng: np.random.Generator, n: int, carrier: Range = (3500, 5500)) -> np.ndarray:
    """Pulsed stridulation: chirps of a few 30-Hz pulses on a high carrier, repeated all clip long."""
    f = np.full(n, log_draw(rng, carrier))
    pulse_rate = draw(rng, (20, 45))
    pulses = int(draw(rng, (2, 6.99)))
    chirp_period = draw(rng, (0.25, 0.8))
    t = np.arange(n) / SR
    in_chirp = (t % chirp_period) < pulses / pulse_rate
    gate = (np.sin(2 * np.pi * pulse_rate * t) > 0.2) & in_chirp
    return harmonic(f, [1.0, 0.1], rng) * lowpass(gate.astype(float), 300)


def buzz(rng: np.random.Generator, n: int, f0: Range = (150, 350)) -> np.ndarray:
    """Insect wings: a bright buzz whose pitch and loudness drift as it flies about."""
    length = _length(n, rng, (1.0, 2.0))
    drift = 1 + 0.08 * (wander(rng, length, 2.0) - 0.5)
    tone = harmonic(log_draw(rng, f0) * drift, 1.0 / np.arange(1, 30), rng)
    return highpass(tone, 300) * (0.4 + 0.6 * wander(rng, length, 1.5)) * taper(length, seconds(0.1))


def croaks(rng: np.random.Generator, n: int, pulse_rate: Range = (15, 45), pitch: Range = (200, 700)) -> np.ndarray:
    """Frog: croaks made of rapid pulses of a low tone (amplitude-gated, not a filtered pulse train)."""
    out = np.zeros(n)
    rate, f = draw(rng, pulse_rate), log_draw(rng, pitch)
    croak = draw(rng, (0.15, 0.5))
    for start in onsets(rng, int(draw(rng, (1, 4.99))), croak * draw(rng, (1.5, 2.5)), 0.1):
        m = seconds(croak)
        t = np.arange(m) / SR
        gate = np.maximum(np.sin(2 * np.pi * rate * t), 0.0) ** 3
        place(out, harmonic(np.full(m, f), [1.0, 0.5, 0.3], rng) * gate * taper(m, seconds(0.02)), start)
    end = int(np.flatnonzero(out)[-1]) + 1 if out.any() else n
    return out[:end]


# ---------------------------------------------------------------------------------------- music
_SCALE = np.array([0, 2, 4, 5, 7, 9, 11, 12, 14, 16])


def _melody(rng: np.random.Generator, base: float, count: int) -> np.ndarray:
    return base * 2 ** (_SCALE[rng.integers(0, len(_SCALE), count)] / 12)


def plucks(rng: np.random.Generator, n: int, pitch: Range, notes: Range, loss: Range = (0.990, 0.998),
           brightness: Range = (1500, 6000), body: Range = (90, 250)) -> np.ndarray:  # fmt: skip
    """Plucked strings (Karplus-Strong) playing a melody in a major scale; guitar body resonance."""
    count = int(draw(rng, notes))
    pitches = _melody(rng, log_draw(rng, pitch), count)
    period = draw(rng, (0.15, 0.45))
    out = np.zeros(n)
    g, b = draw(rng, loss), draw(rng, brightness)
    for f, start in zip(pitches, onsets(rng, count, period, 0.1), strict=False):
        place(out, karplus(rng, f, n - min(start, n - 1), g, b), start)
    return out + 0.3 * resonators(out, [draw(rng, body)], [40.0])


def mallets(rng: np.random.Generator, n: int, pitch: Range = (220, 1000), notes: Range = (3, 9.99)) -> np.ndarray:
    """Marimba: bars with partials at 1x, 4x and 9.9x, decaying fast, a melody of notes."""
    count = int(draw(rng, notes))
    tau = draw(rng, (0.15, 0.5))
    out = np.zeros(n)
    for f, start in zip(_melody(rng, log_draw(rng, pitch), count), onsets(rng, count, draw(rng, (0.12, 0.3)), 0.05),
                        strict=True):  # fmt: skip
        m = min(n, seconds(tau * 5))
        place(out, modal(m, np.array([f, 4 * f, 9.9 * f]), np.array([tau, tau / 4, tau / 10]),
                         np.array([1.0, 0.3, 0.1]), rng), start)  # fmt: skip
    return out


def blown(rng: np.random.Generator, n: int, pitch: Range, notes: Range, amps: list[float],
          breath: Range = (0.0, 0.05), vibrato: Range = (0.0, 0.01), attack: float = 0.05) -> np.ndarray:  # fmt: skip
    """Sustained harmonic tones (flute, cello, trumpet, organ): a legato melody with vibrato."""
    count = int(draw(rng, notes))
    length = _length(n, rng, (1.0, 2.0))
    pitches = _melody(rng, log_draw(rng, pitch), count)
    per = int(np.ceil(length / count))
    f0 = np.repeat(pitches, per)[:length]
    t = np.arange(length) / SR
    f0 = f0 * (1 + draw(rng, vibrato) * np.sin(2 * np.pi * draw(rng, (4.5, 6.5)) * t))
    tilt = np.array(amps) * draw(rng, (0.7, 1.3)) ** np.arange(len(amps))
    tone = harmonic(f0, tilt, rng)
    env = np.tile(decay(per, 3.0, attack=attack), count)[:length]
    tone *= env
    tone += draw(rng, breath) * bandpass(white(rng, length), 1000, 5000) * np.sqrt(np.mean(tone**2)) * 3
    return tone * taper(length, seconds(0.02))


def drums(rng: np.random.Generator, n: int, kind: str, tempo: Range = (80, 150)) -> np.ndarray:
    """Bass drum (a pitch-dropping sine) or hi-hat (high-passed noise ticks) on a beat grid."""
    beat = 60.0 / draw(rng, tempo)
    step = beat if kind == "kick" else beat / 2
    out = np.zeros(n)
    hit_f = draw(rng, (45, 70))
    for k, start in enumerate(onsets(rng, int(n / SR / step) + 1, step, 0.02, start=draw(rng, (0, step)))):
        if kind == "kick":
            m = seconds(0.3)
            t = np.arange(m) / SR
            f = hit_f + draw(rng, (60, 120)) * np.exp(-t / 0.03)
            hit = np.sin(2 * np.pi * np.cumsum(f) / SR) * decay(m, draw(rng, (0.08, 0.2)))
        else:
            m = seconds(0.1)
            hit = highpass(white(rng, m), 7000, order=4) * decay(m, 0.04 if k % 4 == 3 else 0.015)
        place(out, hit * draw(rng, (0.7, 1.0)), start)
    return out


# ------------------------------------------------------------------------------------- nature
def rain(rng: np.random.Generator, n: int, density: Range = (300, 2000)) -> np.ndarray:
    """Rain on a surface: dense random droplet clicks through a resonance, over hiss."""
    times = poisson_times(rng, n, log_draw(rng, density))
    drops = clicks(n, times, rng.pareto(2.5, len(times)) + 0.3)
    centre = draw(rng, (2000, 5000))
    return bandpass(drops, centre / 2, centre * 1.6) + draw(rng, (0.05, 0.3)) * highpass(pink(rng, n), 1500)


def wind(rng: np.random.Generator, n: int, cutoff: Range = (200, 700), gusts: Range = (0.3, 1.5)) -> np.ndarray:
    """Wind: low-passed noise with a slow gusting envelope."""
    env = 0.2 + wander(rng, n, draw(rng, gusts)) ** 2
    return lowpass(brown(rng, n), log_draw(rng, cutoff), order=2) * env


def rustle(rng: np.random.Generator, n: int, density: Range = (20, 80)) -> np.ndarray:
    """Rustling leaves: granular high noise, bursts of many small crackles."""
    times = poisson_times(rng, n, log_draw(rng, density) * 20)
    grains = clicks(n, times, rng.uniform(0.2, 1.0, len(times)))
    swell = wander(rng, n, draw(rng, (0.8, 2.5)))
    return bandpass(grains, 2000, 7000) * swell + 0.05 * highpass(white(rng, n), 3000) * swell


def thunder(rng: np.random.Generator, n: int) -> np.ndarray:
    """Thunder: a crack then a long low rumble with secondary rolls."""
    length = _length(n, rng, (1.2, 2.0))
    rumble = lowpass(brown(rng, length), draw(rng, (80, 250)), order=4)
    env = decay(length, draw(rng, (0.4, 1.0)), attack=draw(rng, (0.01, 0.15)))
    env *= 0.6 + 0.8 * wander(rng, length, draw(rng, (2, 6)))
    crack = highpass(white(rng, length), 1000) * decay(length, 0.05) * draw(rng, (0.0, 0.5))
    return rumble * env / (np.std(rumble) + 1e-12) + crack


def stream(rng: np.random.Generator, n: int, bubbles: Range = (30, 120)) -> np.ndarray:
    """Babbling water: many small rising-pitch bubbles over band-passed noise."""
    out = 0.1 * bandpass(pink(rng, n), 300, 3000)
    for start in poisson_times(rng, n, log_draw(rng, bubbles)):
        m = seconds(draw(rng, (0.01, 0.04)))
        t = np.arange(m) / SR
        f = log_draw(rng, (400, 2500)) * (1 + 2.0 * t / t[-1] * draw(rng, (0.1, 0.5)))
        place(out, np.sin(2 * np.pi * np.cumsum(f) / SR) * np.exp(-t / (m / SR / 3)) * draw(rng, (0.2, 1.0)), start)
    return out


def surf(rng: np.random.Generator, n: int) -> np.ndarray:
    """Waves: broadband noise swelling and breaking with a slow period."""
    t = np.arange(n) / SR
    swell = 0.5 + 0.5 * np.sin(2 * np.pi * t / draw(rng, (3.0, 7.0)) + rng.uniform(0, 2 * np.pi))
    return bandpass(pink(rng, n), draw(rng, (150, 400)), draw(rng, (2500, 6000))) * (0.15 + swell**3)


def crackle(rng: np.random.Generator, n: int, rate: Range = (8, 40)) -> np.ndarray:
    """Fire: sparse sharp crackles of heavy-tailed size over a soft low roar."""
    times = poisson_times(rng, n, log_draw(rng, rate))
    pops = clicks(n, times, rng.pareto(1.5, len(times)) + 0.2)
    return bandpass(pops, 1000, 6000) * 3 + draw(rng, (0.02, 0.1)) * lowpass(brown(rng, n), 200)


# -------------------------------------------------------------------------------------- things
def siren(rng: np.random.Generator, n: int, pattern: str, low: Range, high: Range, period: Range) -> np.ndarray:
    """Sirens: a square-ish tone sweeping (wail) or alternating (hi-lo) between two pitches."""
    length = _length(n, rng, (1.2, 2.0))
    t = np.arange(length) / SR
    lo, hi, per = draw(rng, low), draw(rng, high), draw(rng, period)
    phase = 2 * np.pi * t / per + rng.uniform(0, 2 * np.pi)
    if pattern == "wail":
        f0 = lo + (hi - lo) * (0.5 + 0.5 * np.sin(phase))
    else:
        f0 = np.where(np.sin(phase) > 0, hi, lo)
        f0 = np.convolve(f0, np.ones(80) / 80, mode="same")
        f0[:40], f0[-40:] = f0[40], f0[-41]
    return harmonic(f0, [1.0, 0.0, 0.33, 0.0, 0.2, 0.0, 0.14], rng) * taper(length, seconds(0.05))


def beeps(rng: np.random.Generator, n: int, pitch: Range, on: Range, off: Range, group: Range,
          pause: Range, sweep: Range = (0.0, 0.0)) -> np.ndarray:  # fmt: skip
    """Electronic alarms: groups of square-wave beeps with pauses (smoke detector, alarm clock, car alarm)."""
    f, dur_on, dur_off = log_draw(rng, pitch), draw(rng, on), draw(rng, off)
    size, gap, bend = int(draw(rng, group)), draw(rng, pause), draw(rng, sweep)
    out = np.zeros(n)
    pos = seconds(draw(rng, (0.0, 0.2)))
    while pos < n:
        for _ in range(size):
            m = seconds(dur_on)
            f0 = f * (1 + bend * np.linspace(0, 1, m))
            place(out, harmonic(f0, [1.0, 0, 0.33, 0, 0.2], rng) * taper(m, seconds(0.004)), pos)
            pos += m + seconds(dur_off)
        pos += seconds(gap)
    return out


def chime(rng: np.random.Generator, n: int, pitch: Range = (500, 1000)) -> np.ndarray:
    """Doorbell ding-dong: two bell strikes, the second a third to a fifth lower."""
    f = log_draw(rng, pitch)
    interval = 2 ** (-int(rng.integers(3, 8)) / 12)
    tau = draw(rng, (0.3, 0.8))
    gap = seconds(draw(rng, (0.35, 0.7)))
    m = min(n, gap + seconds(tau * 3))
    ratios, amps = np.array([1.0, 2.0, 2.76, 5.4]), np.array([1.0, 0.5, 0.3, 0.15])
    out = np.zeros(m)
    place(out, modal(m, f * ratios, tau / ratios**0.5, amps, rng), 0)
    place(out, modal(m - gap, f * interval * ratios, tau / ratios**0.5, amps, rng), gap)
    return out


def impacts(rng: np.random.Generator, n: int, freqs: Range, tau: Range, rate: Range, count: Range,
            noise: Range = (0.1, 0.4), inharmonic: bool = False, regular: float = 0.1) -> np.ndarray:  # fmt: skip
    """Struck objects in sequence (knocks, hammering, ticks, jackhammer, keystrokes, clinks)."""
    base, decay_s = log_draw(rng, freqs), draw(rng, tau)
    ratios = np.array([1.0, 2.32, 4.25, 6.63]) if inharmonic else np.array([1.0, 1.6, 2.3])
    times = onsets(rng, int(draw(rng, count)), 1.0 / draw(rng, rate), regular)
    m = seconds(decay_s * 5 + 0.01)
    out = np.zeros(min(n, times[-1] + m))
    for i, start in enumerate(times):
        f = base * (1.25 if (i % 2 and regular < 0.05) else 1.0) * draw(rng, (0.97, 1.03))
        hit = modal(m, f * ratios, decay_s / ratios**0.3, np.array([1.0, 0.6, 0.4, 0.3])[: len(ratios)], rng)
        hit += draw(rng, noise) * bandpass(white(rng, m), f * 0.5, f * 4) * decay(m, decay_s / 3)
        place(out, hit * draw(rng, (0.6, 1.0)), start)
    return out


def sawing(rng: np.random.Generator, n: int) -> np.ndarray:
    """Hand saw: strokes of band-passed noise modulated by the teeth rate."""
    length = _length(n, rng, (1.0, 2.0))
    t = np.arange(length) / SR
    stroke = np.abs(np.sin(np.pi * t * draw(rng, (1.2, 3.0))))
    teeth = 0.5 + 0.5 * np.sin(2 * np.pi * draw(rng, (80, 250)) * t)
    centre = draw(rng, (1500, 4000))
    return bandpass(white(rng, length), centre / 2, centre * 1.8) * stroke * teeth


def engine(rng: np.random.Generator, n: int, firing: Range, rise: Range = (1.0, 1.0)) -> np.ndarray:
    """Combustion engine: a low harmonic series at the firing rate, optionally revving up."""
    length = _length(n, rng, (1.5, 2.0))
    t = np.linspace(0.0, 1.0, length)
    start = log_draw(rng, firing)
    f0 = start * (1 + (draw(rng, rise) - 1) * np.clip(t * draw(rng, (1.0, 1.8)), 0, 1) ** 1.5)
    f0 *= 1 + 0.01 * rng.standard_normal(length).cumsum() / np.sqrt(length)
    tone = harmonic(f0, 1.0 / np.arange(1, 40) ** draw(rng, (0.6, 1.2)), rng)
    rumble = lowpass(brown(rng, length), 300) * draw(rng, (0.5, 2.0))
    return (lowpass(tone, draw(rng, (800, 2500))) + rumble) * taper(length, seconds(0.08))


RECIPES: dict[str, Recipe] = {
    f.__name__: f
    for f in (
        speech, babbling, melodic_voice, vocal, cough, whistling, claps, footsteps, chirps, harsh_calls, hoots,
        cricket, buzz, croaks, plucks, mallets, blown, drums, rain, wind, rustle, thunder, stream, surf, crackle,
        siren, beeps, chime, impacts, sawing, engine,
    )
}  # fmt: skip
