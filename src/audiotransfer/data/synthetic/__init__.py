"""A synthetic sound world organised by the AudioSet ontology: the default data of `audiotransfer demo`.

72 real AudioSet classes under five root categories (31 Human sounds, 10 Animal, 9 Music, 7 Natural sounds,
15 Sounds of things), each a parametric recipe with variation in pitch, tempo, timbre, duration and loudness;
2 s pre-training clips of 1-3 events over an unlabelled noise floor 10-30 dB below the quietest event,
written as AudioSet segment lists + WAVs + an ontology fragment; and three downstream tasks.

Ground truth by construction (`SHARES`: which pre-training material shares generators with which task;
`audiotransfer.demo.ground_truth` checks a study's report against it):

- commands (12 words, 1 s clips, 5-30 dB SNR, speakers disjoint across splits) <- Human sounds: the same
  source-filter voice and phone units speak the speech classes and the vocalisations. Most Human classes
  are defined by what is voiced, not by who voices it (yells, whoops, battle cries, gasps, pants, grunts,
  giggles, snickers, ...: fixed phone patterns by any speaker, told apart only by their vowels and
  consonants), so learning them takes speaker-invariant phone features, which is what the words need.
  Male, female and child voices overlap in pitch and differ in vocal-tract scale (formant positions).
- birds (bird present or absent in natural beds at low SNR, among other animals as loud as the birds:
  crickets, frogs, insect buzz, dogs, cats) <- Animal, above all Bird: the same bird-call recipes and ranges;
  the beds come from Natural sounds.
- scenes (6 scenes of beds + typical events) <- Sounds of things + Natural sounds: the same engines, alarms,
  tools, rain, wind, waves, fire.
- Music shares nothing: plucked strings, mallets, blown tones and drums appear in no task.

Bird distractors come from Animal (and fire crackle from Natural sounds). Alarms (car alarm, alarm clock)
beep longer and lower than bird calls chirp. Animal calls are additive tones, not the source-filter voice.
In the real ontology a few classes also descend from "Source-ambiguous sounds" (Chirp, Buzz, Crackle,
Knock); the fragment keeps those links.
"""

from audiotransfer.data.synthetic.classes import CLASSES, ROOTS, SoundClass
from audiotransfer.data.synthetic.generate import TASKS, VERSION, fragment_path, generate_world
from audiotransfer.data.synthetic.world import SHARES

__all__ = ["CLASSES", "ROOTS", "SHARES", "TASKS", "VERSION", "SoundClass", "fragment_path", "generate_world"]
