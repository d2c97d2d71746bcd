"""The class table of the synthetic world: real AudioSet classes, each bound to a recipe and its ranges.

Ids and names are the real AudioSet ones (checked against the ontology by the tests); `root` is the
top-level AudioSet category the class descends from. Parameter ranges are (low, high) tuples drawn per
event by the recipe, giving each class variation in pitch, tempo, timbre and duration.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

HUMAN, ANIMAL, MUSIC, NATURAL, THINGS = "Human sounds", "Animal", "Music", "Natural sounds", "Sounds of things"
ROOTS = (HUMAN, ANIMAL, MUSIC, NATURAL, THINGS)


@dataclass(frozen=True)
class SoundClass:
    id: str
    name: str
    root: str
    recipe: str
    params: dict[str, Any] = field(default_factory=dict)


_BIRD = {"band": (2500.0, 7000.0)}
_SHOUT = {"stretch": (2.0, 4.0), "pitch": (1.2, 1.8), "rise": (0.1, 0.6)}
_BREATH = {"stretch": (1.0, 3.0), "rise": (-0.3, 0.0), "breath": (0.2, 0.7)}
_LAUGH = {"repeat": (3, 8.99), "rate": (0.5, 1.2), "pitch": (0.9, 1.4), "breath": (0.2, 0.5)}

CLASSES: tuple[SoundClass, ...] = (
    # Human sounds: a source-filter voice (shared with the commands task), body sounds
    SoundClass("/m/05zppz", "Male speech, man speaking", HUMAN, "speech", {"voice_kind": "male"}),
    SoundClass("/m/02zsn", "Female speech, woman speaking", HUMAN, "speech", {"voice_kind": "female"}),
    SoundClass("/m/0ytgt", "Child speech, kid speaking", HUMAN, "speech", {"voice_kind": "child"}),
    SoundClass("/m/0261r1", "Babbling", HUMAN, "babbling"),
    SoundClass("/m/0brhx", "Speech synthesizer", HUMAN, "speech", {"voice_kind": "any", "style": "robot"}),
    SoundClass("/m/02rtxlg", "Whispering", HUMAN, "speech", {"voice_kind": "any", "style": "whisper"}),
    # pairs with equal prosody ranges, told apart only by their vowels and consonants
    SoundClass("/m/07sr1lc", "Yell", HUMAN, "vocal", {"patterns": [["h", "e", "i"], ["y", "e", "ae"], ["h", "ae"]],
                                                      **_SHOUT}),
    SoundClass("/m/07rwj3x", "Whoop", HUMAN, "vocal", {"patterns": [["w", "u"], ["w", "u", "h", "u"], ["w", "o"]],
                                                       **_SHOUT}),
    SoundClass("/m/07plz5l", "Sigh", HUMAN, "vocal", {"patterns": [["h", "a"], ["h", "uh"], ["h", "o", "f"]],
                                                      **_BREATH}),
    SoundClass("/m/01hsr_", "Sneeze", HUMAN, "vocal",
               {"patterns": [["a", "a", "sh", "u"], ["h", "a", "t", "sh", "u"], ["a", "i", "s", "u"]], **_BREATH}),
    SoundClass("/m/02fxyj", "Humming", HUMAN, "melodic_voice", {"voice_kind": "female", "kind": "hum"}),
    SoundClass("/t/dd00003", "Male singing", HUMAN, "melodic_voice", {"voice_kind": "male", "kind": "sing"}),
    SoundClass("/t/dd00004", "Female singing", HUMAN, "melodic_voice", {"voice_kind": "female", "kind": "sing"}),
    SoundClass("/m/07r660_", "Giggle", HUMAN, "vocal", {"patterns": [["h", "i"], ["h", "ih"], ["h", "e"]],
                                                         **_LAUGH}),
    SoundClass("/m/07sq110", "Belly laugh", HUMAN, "vocal", {"patterns": [["h", "a"], ["h", "o"], ["h", "uh"]],
                                                             **_LAUGH}),
    # more vocalisations defined by what is voiced, not by who voices it: speaker-invariant phone patterns
    SoundClass("/m/04gy_2", "Battle cry", HUMAN, "vocal", {"patterns": [["a", "r", "a"], ["h", "u", "r", "a"]],
                                                           **_SHOUT}),
    SoundClass("/m/07q4ntr", "Bellow", HUMAN, "vocal", {"patterns": [["o", "w"], ["h", "o", "l"]], **_SHOUT}),
    SoundClass("/m/03qc9zr", "Screaming", HUMAN, "vocal", {"patterns": [["i"], ["a", "i"], ["y", "i"]], **_SHOUT}),
    SoundClass("/m/07s0dtb", "Gasp", HUMAN, "vocal", {"patterns": [["h", "a", "p"], ["h", "ih", "k"]], **_BREATH}),
    SoundClass("/m/07pyy8b", "Pant", HUMAN, "vocal", {"patterns": [["h", "a", "h", "a"], ["h", "uh", "h", "uh"]],
                                                      **_BREATH}),
    SoundClass("/m/07q0yl5", "Snort", HUMAN, "vocal", {"patterns": [["n", "f"], ["m", "f", "t"]], **_BREATH}),
    SoundClass("/m/07s2xch", "Groan", HUMAN, "vocal", {"patterns": [["u", "n"], ["o", "n", "m"]], **_BREATH}),
    SoundClass("/m/07r4k75", "Grunt", HUMAN, "vocal", {"patterns": [["uh", "g"], ["uh", "k"], ["a", "g", "d"]],
                                                       **_BREATH}),
    SoundClass("/m/02p3nc", "Hiccup", HUMAN, "vocal", {"patterns": [["ih", "k"], ["i", "k", "p"]], **_BREATH}),
    SoundClass("/m/07qw_06", "Wail, moan", HUMAN, "vocal", {"patterns": [["o", "w", "a"], ["m", "o", "a"]],
                                                            **_SHOUT}),
    SoundClass("/m/07rgt08", "Chuckle, chortle", HUMAN, "vocal", {"patterns": [["h", "uh"], ["h", "e", "h"]],
                                                                  **_LAUGH}),
    SoundClass("/m/07s04w4", "Snicker", HUMAN, "vocal", {"patterns": [["s", "n", "i", "k"], ["t", "s", "ih"]],
                                                         **_LAUGH}),
    SoundClass("/m/01b_21", "Cough", HUMAN, "cough"),
    SoundClass("/m/01w250", "Whistling", HUMAN, "whistling"),
    SoundClass("/m/0l15bq", "Clapping", HUMAN, "claps"),
    SoundClass("/m/07pbtc8", "Walk, footsteps", HUMAN, "footsteps"),
    # Animal: bird calls (shared with the bird-activity task), mammals, insects, frogs
    SoundClass("/m/07pggtn", "Chirp, tweet", ANIMAL, "chirps", _BIRD),
    SoundClass("/m/07sx8x_", "Squawk", ANIMAL, "harsh_calls",
               {"f0": (500.0, 1100.0), "formant": (1500.0, 3000.0), "length": (0.12, 0.35), "count": (1, 3.99),
                "noise": (0.3, 0.8)}),
    SoundClass("/m/07r5c2p", "Caw", ANIMAL, "harsh_calls",
               {"f0": (350.0, 650.0), "formant": (1000.0, 1800.0), "length": (0.2, 0.4), "count": (2, 4.99),
                "glide": (-0.1, 0.1)}),
    SoundClass("/m/07r_25d", "Coo", ANIMAL, "hoots", {"f0": (380.0, 650.0), "length": (0.25, 0.5),
                                                      "count": (2, 4.99), "glide": (0.05, 0.2)}),
    SoundClass("/m/07r_80w", "Hoot", ANIMAL, "hoots", {"f0": (250.0, 450.0), "length": (0.3, 0.7),
                                                       "count": (1, 3.99), "glide": (0.0, 0.05)}),
    SoundClass("/m/05tny_", "Bark", ANIMAL, "harsh_calls",
               {"f0": (250.0, 650.0), "formant": (500.0, 1400.0), "length": (0.08, 0.2), "count": (1, 4.99),
                "glide": (0.1, 0.35)}),
    SoundClass("/m/07qrkrw", "Meow", ANIMAL, "harsh_calls",
               {"f0": (450.0, 900.0), "formant": (700.0, 1600.0), "length": (0.4, 0.9), "count": (1, 2.99),
                "noise": (0.0, 0.1), "glide": (0.2, 0.5)}),
    SoundClass("/m/09xqv", "Cricket", ANIMAL, "cricket"),
    SoundClass("/m/07pjwq1", "Buzz", ANIMAL, "buzz"),
    SoundClass("/m/07st88b", "Croak", ANIMAL, "croaks"),
    # Music: instruments and drums (shares no generator with any task)
    SoundClass("/m/042v_gx", "Acoustic guitar", MUSIC, "plucks", {"pitch": (110.0, 330.0), "notes": (3, 8.99)}),
    SoundClass("/m/018vs", "Bass guitar", MUSIC, "plucks",
               {"pitch": (41.0, 110.0), "notes": (2, 6.99), "brightness": (300.0, 900.0)}),
    SoundClass("/m/0dwsp", "Marimba, xylophone", MUSIC, "mallets"),
    SoundClass("/m/0l14j_", "Flute", MUSIC, "blown", {"pitch": (260.0, 900.0), "notes": (2, 6.99),
                                                      "amps": [1.0, 0.2, 0.1], "breath": (0.02, 0.08),
                                                      "vibrato": (0.003, 0.01)}),
    SoundClass("/m/01xqw", "Cello", MUSIC, "blown", {"pitch": (65.0, 260.0), "notes": (1, 4.99),
                                                     "amps": [1.0, 0.6, 0.5, 0.4, 0.35, 0.3, 0.25, 0.2, 0.15, 0.1],
                                                     "vibrato": (0.005, 0.015), "attack": 0.1}),
    SoundClass("/m/07gql", "Trumpet", MUSIC, "blown", {"pitch": (165.0, 500.0), "notes": (2, 6.99),
                                                       "amps": [0.5, 0.8, 1.0, 0.9, 0.7, 0.5, 0.4, 0.3],
                                                       "attack": 0.03}),
    SoundClass("/m/03gvt", "Hammond organ", MUSIC, "blown", {"pitch": (130.0, 520.0), "notes": (1, 3.99),
                                                             "amps": [1.0, 0.7, 0.5, 0.6, 0.0, 0.4, 0.0, 0.5],
                                                             "attack": 0.005}),
    SoundClass("/m/0bm02", "Bass drum", MUSIC, "drums", {"kind": "kick"}),
    SoundClass("/m/03qtq", "Hi-hat", MUSIC, "drums", {"kind": "hat"}),
    # Natural sounds: textures (shared with the scenes and bird-activity tasks)
    SoundClass("/t/dd00038", "Rain on surface", NATURAL, "rain"),
    SoundClass("/m/03m9d0z", "Wind", NATURAL, "wind"),
    SoundClass("/m/09t49", "Rustling leaves", NATURAL, "rustle"),
    SoundClass("/m/0ngt1", "Thunder", NATURAL, "thunder"),
    SoundClass("/m/0j6m2", "Stream", NATURAL, "stream"),
    SoundClass("/m/034srq", "Waves, surf", NATURAL, "surf"),
    SoundClass("/m/07pzfmf", "Crackle", NATURAL, "crackle"),
    # Sounds of things: vehicles, alarms, domestic and tools (shared with the scenes task)
    SoundClass("/m/04qvtq", "Police car (siren)", THINGS, "siren",
               {"pattern": "wail", "low": (600.0, 800.0), "high": (1200.0, 1600.0), "period": (0.3, 4.0)}),
    SoundClass("/m/012n7d", "Ambulance (siren)", THINGS, "siren",
               {"pattern": "hilo", "low": (400.0, 700.0), "high": (750.0, 1100.0), "period": (0.8, 1.6)}),
    SoundClass("/m/02mfyn", "Car alarm", THINGS, "beeps",
               {"pitch": (600.0, 1400.0), "on": (0.12, 0.3), "off": (0.03, 0.08), "group": (3, 8.99),
                "pause": (0.0, 0.1), "sweep": (-0.2, 0.2)}),
    SoundClass("/m/01y3hg", "Smoke detector, smoke alarm", THINGS, "beeps",
               {"pitch": (2900.0, 3500.0), "on": (0.3, 0.5), "off": (0.15, 0.3), "group": (3, 3.99),
                "pause": (0.5, 1.0)}),
    SoundClass("/m/046dlr", "Alarm clock", THINGS, "beeps",
               {"pitch": (900.0, 2000.0), "on": (0.15, 0.25), "off": (0.05, 0.08), "group": (2, 4.99),
                "pause": (0.3, 0.6)}),
    SoundClass("/m/07r67yg", "Ding-dong", THINGS, "chime"),
    SoundClass("/m/07qjznl", "Tick-tock", THINGS, "impacts",
               {"freqs": (1500.0, 3500.0), "tau": (0.003, 0.008), "rate": (1.0, 2.5), "count": (3, 5.99),
                "regular": 0.01}),
    SoundClass("/m/07r4wb8", "Knock", THINGS, "impacts",
               {"freqs": (120.0, 300.0), "tau": (0.02, 0.05), "rate": (4.0, 8.0), "count": (2, 5.99)}),
    SoundClass("/m/03l9g", "Hammer", THINGS, "impacts",
               {"freqs": (1200.0, 3000.0), "tau": (0.04, 0.12), "rate": (1.5, 3.5), "count": (2, 5.99),
                "inharmonic": True}),
    SoundClass("/m/03p19w", "Jackhammer", THINGS, "impacts",
               {"freqs": (300.0, 900.0), "tau": (0.008, 0.02), "rate": (14.0, 25.0), "count": (12, 35.99),
                "noise": (0.5, 1.5), "regular": 0.05}),
    SoundClass("/m/01m2v", "Computer keyboard", THINGS, "impacts",
               {"freqs": (2500.0, 5000.0), "tau": (0.004, 0.01), "rate": (5.0, 11.0), "count": (5, 15.99),
                "noise": (0.5, 1.0), "regular": 0.4}),
    SoundClass("/m/04brg2", "Dishes, pots, and pans", THINGS, "impacts",
               {"freqs": (1500.0, 4000.0), "tau": (0.05, 0.2), "rate": (2.0, 6.0), "count": (2, 6.99),
                "inharmonic": True, "regular": 0.5}),
    SoundClass("/m/01b82r", "Sawing", THINGS, "sawing"),
    SoundClass("/m/07pb8fc", "Idling", THINGS, "engine", {"firing": (20.0, 45.0)}),
    SoundClass("/m/07q2z82", "Accelerating, revving, vroom", THINGS, "engine",
               {"firing": (25.0, 45.0), "rise": (2.0, 3.5)}),
)  # fmt: skip

BY_ID: dict[str, SoundClass] = {c.id: c for c in CLASSES}
BY_NAME: dict[str, SoundClass] = {c.name: c for c in CLASSES}


def classes_in(root: str) -> list[SoundClass]:
    return [c for c in CLASSES if c.root == root]
