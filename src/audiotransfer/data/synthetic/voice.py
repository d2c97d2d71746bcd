"""A source-filter voice: phone units, speakers, and the command words.

A voiced unit is a glottal pulse train (the speaker's pitch) through three formant resonators (the
phone's formant targets times the speaker's vocal-tract scale); fricatives are band-passed noise,
plosives a closure and a burst. Speech classes of the pre-training world babble random syllables of these
units; the commands task speaks fixed unit sequences. Both use this one model, which is what makes speech
pre-training relevant to the commands task.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audiotransfer.data.synthetic.sources import (
    SR,
    Range,
    bandpass,
    draw,
    glottal,
    log_draw,
    lowpass,
    resonators,
    seconds,
    taper,
    wander,
)

# Formant targets (Hz, adult male) of vowels and voiced consonants, and their relative levels.
VOWELS: dict[str, tuple[float, float, float]] = {
    "a": (730, 1090, 2440), "e": (530, 1840, 2480), "i": (270, 2290, 3010), "o": (570, 840, 2410),
    "u": (300, 870, 2240), "ae": (660, 1720, 2410), "uh": (520, 1190, 2390), "ih": (390, 1990, 2550),
}  # fmt: skip
SONORANTS: dict[str, tuple[float, float, float]] = {
    "m": (250, 1000, 2200), "n": (250, 1500, 2300), "l": (360, 1300, 2700), "r": (420, 1300, 1600),
    "w": (300, 700, 2200), "y": (280, 2200, 2900),
}  # fmt: skip
FRICATIVES: dict[str, tuple[float, float, float]] = {  # band low, band high, level
    "s": (4000, 7500, 0.35), "sh": (2000, 5000, 0.35), "f": (1200, 7000, 0.15), "h": (500, 4000, 0.12),
}  # fmt: skip
PLOSIVES: dict[str, tuple[float, bool]] = {  # burst centre, voiced
    "p": (900, False), "t": (4000, False), "k": (2000, False), "b": (700, True), "d": (3000, True),
    "g": (1800, True),
}  # fmt: skip
DURATION = {"vowel": 0.13, "sonorant": 0.07, "fricative": 0.11, "plosive": 0.07}
CONSONANTS = [*SONORANTS, *FRICATIVES, *PLOSIVES]

# The command words: fixed unit sequences (some pairs share units, e.g. "no"/"on", to keep it hard).
WORDS: dict[str, list[str]] = {
    "yes": ["y", "e", "s"], "no": ["n", "o", "u"], "up": ["uh", "p"], "down": ["d", "a", "u", "n"],
    "left": ["l", "e", "f", "t"], "right": ["r", "a", "i", "t"], "on": ["o", "n"], "off": ["o", "f"],
    "stop": ["s", "t", "o", "p"], "go": ["g", "o", "u"], "one": ["w", "uh", "n"], "two": ["t", "u"],
}  # fmt: skip


def kind(unit: str) -> str:
    if unit in VOWELS:
        return "vowel"
    if unit in SONORANTS:
        return "sonorant"
    if unit in FRICATIVES:
        return "fricative"
    if unit in PLOSIVES:
        return "plosive"
    raise KeyError(unit)


@dataclass(frozen=True)
class Speaker:
    """A synthetic speaker: pitch (Hz), vocal-tract scale (formant multiplier), speaking rate, breathiness."""

    f0: float
    scale: float
    rate: float
    breathiness: float


# Speaker populations: (f0 range, formant-scale range).
# Pitch ranges overlap widely; the vocal-tract scale (formant positions) is what tells the voices apart.
VOICES: dict[str, tuple[Range, Range]] = {
    "male": ((85.0, 240.0), (0.88, 1.02)),
    "female": ((120.0, 300.0), (1.04, 1.17)),
    "child": ((150.0, 420.0), (1.19, 1.35)),
}


def random_speaker(
    rng: np.random.Generator, voice: str, rate: Range = (0.8, 1.25), breathiness: Range = (0.0, 0.25)
) -> Speaker:
    f0, scale = VOICES[voice]
    return Speaker(log_draw(rng, f0), draw(rng, scale), draw(rng, rate), draw(rng, breathiness))


@dataclass(frozen=True)
class Style:
    """How an utterance is voiced: pitch movement, regularity, vowel length, source."""

    intonation: float = 0.08  # depth of random pitch movement
    declination: float = 0.16  # pitch fall over the utterance
    jitter: float = 0.01  # period-to-period pitch noise
    timing: float = 0.15  # spread of unit durations
    stretch: float = 1.0  # vowel and sonorant length factor (singing, humming, yelling)
    vibrato: float = 0.0
    whisper: bool = False


NORMAL = Style()
ROBOT = Style(intonation=0.0, declination=0.0, jitter=0.0, timing=0.0)


def speak(rng: np.random.Generator, units: list[str], speaker: Speaker, style: Style = NORMAL,
          notes: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
    """Render a unit sequence with a speaker's voice; `notes` (one pitch factor per unit) sets a melody."""
    durs = np.array([DURATION[kind(u)] * (style.stretch if kind(u) in ("vowel", "sonorant") else 1.0)
                     for u in units])  # fmt: skip
    durs *= speaker.rate * rng.uniform(1.0 - style.timing, 1.0 + style.timing, len(units))
    lengths = [seconds(d) for d in durs]
    fade = seconds(0.015)
    total = sum(lengths) + fade
    t = np.linspace(0.0, 1.0, total)
    f0 = speaker.f0 * (1.0 + style.declination * (0.5 - t)) * (1.0 + style.intonation * (wander(rng, total, 4.0) - 0.5))
    if notes is not None:
        f0 *= np.concatenate([np.repeat(notes, lengths), np.full(fade, notes[-1])])
    f0 *= 1.0 + style.vibrato * np.sin(2 * np.pi * 5.5 * np.arange(total) / SR)
    voice = glottal(f0 * (1.0 + style.jitter * rng.standard_normal(total)))
    voice /= np.sqrt(np.mean(voice**2)) + 1e-12
    breath = rng.standard_normal(total)
    mix = 1.0 if style.whisper else speaker.breathiness
    out = np.zeros(total)
    pos = 0
    for unit, m in zip(units, lengths, strict=True):
        seg = slice(pos, pos + m + fade)
        size = seg.stop - seg.start
        k = kind(unit)
        if k in ("vowel", "sonorant"):
            targets = VOWELS.get(unit) or SONORANTS[unit]
            src = (1.0 - mix) * voice[seg] + mix * 0.5 * breath[seg]
            x = resonators(src, np.array(targets) * speaker.scale, [80.0, 100.0, 140.0])
            level = 1.0 if k == "vowel" else 0.4
        elif k == "fricative":
            lo, hi, level = FRICATIVES[unit]
            x = bandpass(breath[seg], lo * speaker.scale, hi * speaker.scale)
        else:
            centre, voiced = PLOSIVES[unit]
            x = np.zeros(size)
            burst = seconds(0.02)
            start = max(0, size - burst - fade)
            x[start : start + burst] = bandpass(breath[seg][:burst], centre * 0.6, centre * 1.6) * np.exp(
                -np.arange(burst) / (0.005 * SR)
            )
            if voiced:
                x[:start] += 0.1 * lowpass(voice[seg][:start], 400.0)
            level = 0.6
        x = x * level / (np.sqrt(np.mean(x**2)) + 1e-12)
        out[seg] += x * taper(size, fade)
        pos += m
    return out * taper(total, fade)


def babble(rng: np.random.Generator, speaker: Speaker, duration: float, style: Style = NORMAL) -> np.ndarray:
    """Random syllables (CV, CVC, V) in words separated by short pauses, about `duration` seconds long."""
    n = seconds(duration)
    out = np.zeros(n)
    pos = 0
    vowels = list(VOWELS)
    while pos < n - seconds(0.2):
        units: list[str] = []
        for _ in range(int(rng.integers(1, 4))):
            if rng.random() < 0.8:
                units.append(CONSONANTS[rng.integers(len(CONSONANTS))])
            units.append(vowels[rng.integers(len(vowels))])
            if rng.random() < 0.4:
                units.append(CONSONANTS[rng.integers(len(CONSONANTS))])
        word = speak(rng, units, speaker, style)
        out[pos : pos + len(word)] += word[: n - pos]
        pos += len(word) + seconds(rng.uniform(0.03, 0.25))
    return out
