"""Learnability of the synthetic commands task: learnable by a small classifier, yet not trivially."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

from audiotransfer.data.features import RECIPES, LogMel
from audiotransfer.data.synthetic import voice, world

pytestmark = pytest.mark.slow  # renders and featurises about a thousand clips


def test_commands_beat_chance_but_are_not_trivial() -> None:
    """A linear classifier (shrinkage LDA) on clip-level log-mel mean and std, trained on 700 clips, tested on
    speakers never heard in training."""
    specs = [world.task_spec("commands", 0, i, 60) for i in range(1008)]
    audio = np.stack([world.render_task("commands", 0, i, s) for i, s in enumerate(specs)]).astype(np.float32)
    with torch.no_grad():
        mel = LogMel(RECIPES["panns16k"])(torch.from_numpy(audio)).numpy()
    features = np.concatenate([mel.mean(axis=1), mel.std(axis=1)], axis=1)
    labels = np.array([s["label"] for s in specs])
    split = np.array([s["split"] for s in specs])
    train, test = split == "train", split == "test"
    model = LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto").fit(features[train], labels[train])
    accuracy = model.score(features[test], labels[test])
    chance = 1 / len(world.TASK_LABELS["commands"])
    assert accuracy > 4 * chance, accuracy  # learnable
    assert accuracy < 0.99, accuracy  # but not trivially separable (mean/std cannot tell "no" from "on")


def test_tasks_resemble_their_matched_categories() -> None:
    """The world's ground truth, seen by a cheap model: a classifier of root categories trained on
    pre-training clips (log-mel mean and std, logistic regression) puts the command words in Human sounds,
    scene clips in Sounds of things + Natural sounds, and moves bird clips towards Animal more than towards
    any other category when a bird is present."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from audiotransfer.data.synthetic import CLASSES, ROOTS

    logmel = LogMel(RECIPES["demo"])
    root_of = {c.id: c.root for c in CLASSES}

    def features(clips: list[np.ndarray]) -> np.ndarray:
        width = max(len(c) for c in clips)
        audio = np.stack([np.pad(c, (0, width - len(c))) for c in clips]).astype(np.float32)
        with torch.no_grad():
            mel = logmel(torch.from_numpy(audio)).numpy()
        return np.concatenate([mel.mean(axis=1), mel.std(axis=1)], axis=1)

    rows = [i for i in range(900) if len({root_of[x] for x in world.pretrain_labels(0, "train", i)}) == 1]
    x = features([world.render_pretrain(0, "train", i).audio for i in rows])
    y = [root_of[world.pretrain_labels(0, "train", i)[0]] for i in rows]
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000)).fit(x, y)
    roots = list(model.classes_)
    assert roots == sorted(ROOTS)

    def probabilities(task: str, count: int) -> tuple[np.ndarray, np.ndarray]:
        specs = [world.task_spec(task, 0, i, 20) for i in range(count)]
        p = model.predict_proba(features([world.render_task(task, 0, i, s) for i, s in enumerate(specs)]))
        return p, np.array([s["label"] for s in specs])

    rng = np.random.default_rng(0)  # the command words themselves, without the task's noise floor
    words = [voice.speak(rng, voice.WORDS[w], world.speaker(0, k)) for k in range(8) for w in voice.WORDS]
    commands = model.predict_proba(features(words))
    assert roots[int(commands.mean(0).argmax())] == "Human sounds"
    scenes, _ = probabilities("scenes", 48)
    share = dict(zip(roots, scenes.mean(0), strict=True))
    assert share["Sounds of things"] + share["Natural sounds"] > 0.5
    assert max(share, key=share.get) in {"Sounds of things", "Natural sounds"}
    birds, label = probabilities("birds", 80)
    lift = dict(zip(roots, birds[label == "1"].mean(0) - birds[label == "0"].mean(0), strict=True))
    assert max(lift, key=lift.get) == "Animal", lift
