"""A synthetic sound world organised by the AudioSet ontology: the default data of `audiotransfer demo`.

60 real AudioSet classes under five root categories (19 Human sounds, 10 Animal, 9 Music, 7 Natural sounds,
15 Sounds of things), each a parametric recipe with variation in pitch, tempo, timbre, duration and loudness;
2 s pre-training clips of 1-3 events over an unlabelled noise floor, written as AudioSet segment lists + WAVs
+ an ontology fragment; and three downstream tasks.

Ground truth by construction (which pre-training material shares generators with which task); whether a
model recovers it is an empirical question that `benchmarks/bench_synthetic.py --transfer` measures:

- commands (12 words, 1 s clips, speakers disjoint across splits) <- Human sounds: the same source-filter
  voice and phone units speak the speech classes and the vocalisations (laughs, yells, whoops, sighs,
  sneezes: fixed unit patterns by any speaker, so telling them apart takes vowels and consonants; the
  speech synthesizer and whispering also speak with any voice). Male, female and child voices overlap in
  pitch and differ in vocal-tract scale (formant positions).
- birds (bird present or absent in natural beds at low SNR, among other animals as loud as the birds:
  crickets, frogs, insect buzz, dogs, cats) <- Animal, above all Bird: the same bird-call recipes and ranges.
- scenes (6 scenes of beds + typical events) <- Sounds of things + Natural sounds: the same engines, alarms,
  tools, rain, wind, waves, fire.
- Music shares nothing: plucked strings, mallets, blown tones and drums appear in no task.

Bird distractors come from Animal (and fire crackle from Natural sounds); the bird task's beds from Natural
sounds. Alarms (car alarm, alarm clock) beep longer and lower than bird calls chirp.
Animal calls are additive tones, not the source-filter voice. In the real ontology a few classes also
descend from "Source-ambiguous sounds" (Chirp, Buzz, Crackle, Knock); the fragment keeps those links.
"""

from audiotransfer.data.synthetic.classes import CLASSES, ROOTS, SoundClass
from audiotransfer.data.synthetic.generate import TASKS, VERSION, fragment_path, generate_world

__all__ = ["CLASSES", "ROOTS", "TASKS", "VERSION", "SoundClass", "fragment_path", "generate_world"]
