"""Clip assembly: pre-training clips (1-3 labelled events over an unlabelled noise floor) and task clips.

Every clip is a pure function of (seed, part, index): one generator decides what is in the clip (its
labels, split, speaker), a second one renders the audio. So labels can be listed without rendering, any
clip can be rendered alone (workers, previews, tests), and chunking or the number of workers never changes
a sample.

Loudness is the 95th percentile of 50 ms frame RMS (dBFS), so sparse events (ticks, knocks) and textures
get comparable levels. The noise floor is not a class; every labelled event sits at least 10 dB above it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import audiotransfer.data.synthetic.voice as voice
from audiotransfer.data.synthetic.classes import BY_ID, BY_NAME, CLASSES, SoundClass, classes_in
from audiotransfer.data.synthetic.recipes import RECIPES
from audiotransfer.data.synthetic.sources import brown, draw, pink, seconds

CLIP_SECONDS = 2.0
COMMAND_SECONDS = 1.0
PARTS = {"train": 0, "eval": 1, "scenes": 2, "birds": 3, "commands": 4, "speakers": 5, "preview": 6}
EVENT_DB = (-30.0, -14.0)
FLOOR_DB = (-58.0, -45.0)  # task clips' room tone
FLOOR_SNR = (10.0, 30.0)  # pre-training clips: the floor sits this far below the quietest labelled event
# 70 / 15 / 15 over each run of 20 clips of a class, dev and test spread out so small tasks get all splits.
SPLIT_CYCLE = tuple("dev" if i in (2, 9, 16) else "test" if i in (4, 13, 19) else "train" for i in range(20))


def clip_rng(seed: int, part: str, index: int, stage: int) -> np.random.Generator:
    """The generator of one clip: stage 0 decides the content, stage 1 renders the audio."""
    return np.random.default_rng([seed, PARTS[part], index, stage])


# ---------------------------------------------------------------------------------------- levels
def loudness_db(x: np.ndarray) -> float:
    frame = seconds(0.05)
    usable = len(x) // frame * frame
    if usable == 0:
        return float(20 * np.log10(np.sqrt(np.mean(x**2)) + 1e-12))
    rms = np.sqrt(np.mean(x[:usable].reshape(-1, frame) ** 2, axis=1))
    return float(20 * np.log10(np.percentile(rms, 95) + 1e-12))


def at_level(x: np.ndarray, db: float) -> np.ndarray:
    return x * 10 ** ((db - loudness_db(x)) / 20)


def noise_floor(rng: np.random.Generator, n: int, db: float) -> np.ndarray:
    """Unlabelled room tone: a random blend of pink and brown noise."""
    w = rng.uniform()
    return at_level(w * pink(rng, n) + (1 - w) * brown(rng, n) * 5, db)


def event(rng: np.random.Generator, cls: SoundClass, n: int, db: float, **overrides: object) -> np.ndarray:
    """One event of `cls` at loudness `db`, placed at a random onset in an `n`-sample stem."""
    x = at_level(RECIPES[cls.recipe](rng, n, **{**cls.params, **overrides}), db)
    stem = np.zeros(n)
    start = int(rng.integers(0, n - len(x) + 1))
    stem[start : start + len(x)] = x
    return stem


def limit(x: np.ndarray, peak: float = 0.95) -> float:
    """Gain that keeps the mixture's peak under `peak` (1 when it already is)."""
    top = float(np.max(np.abs(x)))
    return min(1.0, peak / top) if top > 0 else 1.0


# ----------------------------------------------------------------------------------- pre-training
def pretrain_labels(seed: int, part: str, index: int) -> list[str]:
    """AudioSet ids of the events in a pre-training clip.

    The first event cycles through the classes (exact balance); 0-2 more follow, from the same root
    category with probability 0.85 (clips are mostly about one domain, as in AudioSet) else from any class.
    """
    rng = clip_rng(seed, part, index, 0)
    first = CLASSES[index % len(CLASSES)]
    chosen = [first]
    for _ in range(int(rng.choice([0, 1, 2], p=[0.4, 0.35, 0.25]))):
        pool = classes_in(first.root) if rng.random() < 0.85 else list(CLASSES)
        pool = [c for c in pool if c not in chosen]
        chosen.append(pool[int(rng.integers(len(pool)))])
    return [c.id for c in chosen]


@dataclass
class Rendered:
    """A mixture (already limited) with the noise floor and each labelled stem, at the mixture's gain."""

    audio: np.ndarray
    floor: np.ndarray
    stems: dict[str, np.ndarray]


def render_pretrain(seed: int, part: str, index: int, seconds_: float = CLIP_SECONDS) -> Rendered:
    n = seconds(seconds_)
    rng = clip_rng(seed, part, index, 1)
    levels = {cid: draw(rng, EVENT_DB) for cid in pretrain_labels(seed, part, index)}
    stems = {cid: event(rng, BY_ID[cid], n, db) for cid, db in levels.items()}
    floor = noise_floor(rng, n, min(levels.values()) - draw(rng, FLOOR_SNR))
    mix = floor + sum(stems.values())
    g = limit(mix)
    return Rendered(mix * g, floor * g, {k: v * g for k, v in stems.items()})


def render_single(rng: np.random.Generator, cls: SoundClass, seconds_: float = CLIP_SECONDS) -> np.ndarray:
    """One event of a class over the noise floor (previews)."""
    n = seconds(seconds_)
    db = draw(rng, EVENT_DB)
    mix = noise_floor(rng, n, db - draw(rng, FLOOR_SNR)) + event(rng, cls, n, db)
    return mix * limit(mix)


# ------------------------------------------------------------------------------------------ tasks
# Scenes: typical beds (textures) and a pool of typical events; pools overlap on purpose.
SCENES: dict[str, tuple[list[str], list[str]]] = {
    "street": (["Idling", "Wind"],
               ["Accelerating, revving, vroom", "Police car (siren)", "Ambulance (siren)", "Car alarm", "Idling"]),
    "construction_site": (["Idling", "Wind"], ["Hammer", "Jackhammer", "Sawing", "Knock"]),
    "home": ([], ["Tick-tock", "Knock", "Ding-dong", "Computer keyboard", "Dishes, pots, and pans",
                  "Alarm clock", "Smoke detector, smoke alarm"]),
    "rainy_day": (["Rain on surface", "Wind"], ["Thunder", "Stream", "Ding-dong"]),
    "beach": (["Waves, surf", "Wind"], ["Wind", "Idling", "Thunder"]),
    "campfire": (["Crackle", "Rustling leaves", "Wind"], ["Crackle", "Knock", "Sawing"]),
}  # fmt: skip
SCENE_BEDS = sorted({bed for beds, _ in SCENES.values() for bed in beds})
# Bird activity: natural beds, bird calls (the pre-training generators and ranges), and other animals as loud
# as the birds (insects, frogs, dogs, cats) plus fire crackle: telling a call from a non-call is the task.
BIRD_BEDS = ["Wind", "Rain on surface", "Stream", "Waves, surf", "Rustling leaves"]
BIRD_CALLS: list[tuple[str, dict[str, object]]] = [
    ("Chirp, tweet", {"length": (0.03, 0.15)}),
    ("Squawk", {}),
    ("Caw", {}),
    ("Coo", {}),
    ("Hoot", {}),
]
BIRD_DISTRACTORS = ["Cricket", "Croak", "Buzz", "Bark", "Meow", "Cricket", "Croak", "Crackle"]
BIRD_SNR = (-12.0, 6.0)
COMMAND_SNR = (5.0, 30.0)
TASK_LABELS: dict[str, list[str]] = {
    "scenes": list(SCENES),
    "birds": ["0", "1"],
    "commands": list(voice.WORDS),
}
TASK_NAMES = {"birds": ["no bird", "bird"]}
# The ground truth: the root categories whose generators each task is built from (Music: none).
SHARES: dict[str, tuple[str, ...]] = {
    "scenes": ("Sounds of things", "Natural sounds"),
    "birds": ("Animal", "Natural sounds"),
    "commands": ("Human sounds",),
}


def task_spec(task: str, seed: int, index: int, num_speakers: int) -> dict[str, str]:
    """Label, split and (commands) speaker of a task clip; labels cycle for exact balance per split."""
    labels = TASK_LABELS[task]
    label, position = labels[index % len(labels)], index // len(labels)
    if task != "commands":
        return {"label": label, "split": SPLIT_CYCLE[position % len(SPLIT_CYCLE)], "speaker": ""}
    split = SPLIT_CYCLE[position % len(SPLIT_CYCLE)]
    pool = speakers_of(split, num_speakers)
    speaker = pool[int(clip_rng(seed, task, index, 0).integers(len(pool)))]
    return {"label": label, "split": split, "speaker": f"spk{speaker:04d}"}


def speakers_of(split: str, num_speakers: int) -> list[int]:
    """Speaker indices of a split: the first 70% train, the next 15% dev, the rest test (disjoint)."""
    a, b = round(num_speakers * 0.7), round(num_speakers * 0.85)
    return {"train": list(range(a)), "dev": list(range(a, b)), "test": list(range(b, num_speakers))}[split]


def speaker(seed: int, index: int) -> voice.Speaker:
    rng = clip_rng(seed, "speakers", index, 0)
    return voice.random_speaker(rng, str(rng.choice(["male", "female", "child"], p=[0.4, 0.4, 0.2])))


def render_task(task: str, seed: int, index: int, spec: dict[str, str]) -> np.ndarray:
    rng = clip_rng(seed, task, index, 1)
    if task == "commands":
        n = seconds(COMMAND_SECONDS)
        word = voice.speak(rng, voice.WORDS[spec["label"]], speaker(seed, int(spec["speaker"][3:])))[:n]
        word = at_level(word, draw(rng, EVENT_DB))
        start = int(rng.integers(0, n - len(word) + 1))
        mix = noise_floor(rng, n, loudness_db(word) - draw(rng, COMMAND_SNR))
        mix[start : start + len(word)] += word
        return mix * limit(mix)
    n = seconds(CLIP_SECONDS)
    mix = noise_floor(rng, n, draw(rng, FLOOR_DB))
    if task == "scenes":
        beds, pool = SCENES[spec["label"]]
        if beds and rng.random() < 0.6:
            mix += event(rng, BY_NAME[beds[int(rng.integers(len(beds)))]], n, draw(rng, (-34.0, -20.0)))
        if rng.random() < 0.3:  # a bed of any scene: beds alone do not give the scene away
            mix += event(rng, BY_NAME[SCENE_BEDS[int(rng.integers(len(SCENE_BEDS)))]], n, draw(rng, (-34.0, -20.0)))
        for _ in range(int(rng.integers(1, 4))):
            mix += event(rng, BY_NAME[pool[int(rng.integers(len(pool)))]], n, draw(rng, EVENT_DB))
        return mix * limit(mix)
    bed_db = draw(rng, (-30.0, -18.0))
    for name in rng.choice(BIRD_BEDS, size=int(rng.integers(1, 3)), replace=False):
        mix += event(rng, BY_NAME[str(name)], n, bed_db)
    for _ in range(int(rng.integers(1, 3))):  # other animals, as loud as the birds: telling calls apart matters
        mix += event(rng, BY_NAME[BIRD_DISTRACTORS[int(rng.integers(len(BIRD_DISTRACTORS)))]], n,
                     bed_db + draw(rng, BIRD_SNR))  # fmt: skip
    if spec["label"] == "1":
        for _ in range(int(rng.integers(1, 4))):
            name, overrides = BIRD_CALLS[int(rng.integers(len(BIRD_CALLS)))]
            mix += event(rng, BY_NAME[name], n, bed_db + draw(rng, BIRD_SNR), **overrides)
    return mix * limit(mix)
