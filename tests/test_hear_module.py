"""Any module with the HEAR 2021 API as a public model (`hear:MODULE`): our own `audiotransfer.hear` over a
model.pt of ours, and a tiny independent module written here, through `load_model`, the content hash, the
`--checkpoint NAME=PATH:hear:MODULE` syntax and an advise run beside a study's states."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import audiotransfer
from audiotransfer.advise.embed import parse_checkpoint, parse_checkpoints
from audiotransfer.cli import main
from audiotransfer.data.features import RECIPES
from audiotransfer.errors import UserError
from audiotransfer.models import create_model
from audiotransfer.models.public import PUBLIC_FORMATS, load_public, public_hash
from audiotransfer.study.layout import StudyDir
from audiotransfer.training.checkpoint import save_model
from test_advise import _wavs, make_study

SR = 16000
FRAME, HOP = 400, 160
TOY = f'''
"""A HEAR module: log energy of random filters over 25-ms frames every 10 ms."""
import numpy as np
import torch

__version__ = "1.0"


class Model(torch.nn.Module):
    sample_rate = {SR}

    def __init__(self, w):
        super().__init__()
        self.w = torch.nn.Parameter(torch.from_numpy(w), requires_grad=False)
        self.scene_embedding_size = self.timestamp_embedding_size = w.shape[1]


def load_model(model_file_path=""):
    return Model(np.load(model_file_path).astype(np.float32))


def get_timestamp_embeddings(audio, model):
    frames = audio.unfold(1, {FRAME}, {HOP})
    stamps = (torch.arange(frames.shape[1]) * {HOP} + {FRAME} / 2) * 1000.0 / model.sample_rate
    return torch.log1p((frames @ model.w) ** 2), stamps.expand(audio.shape[0], -1)


def get_scene_embeddings(audio, model):
    return get_timestamp_embeddings(audio, model)[0].mean(dim=1)
'''


@pytest.fixture
def toy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The toy module `toyhear` importable from tmp_path, and its weights file."""
    (tmp_path / "toyhear.py").write_text(TOY)
    (tmp_path / "halfhear.py").write_text("def load_model(model_file_path=''):\n    return None\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("toyhear", "halfhear"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    np.save(tmp_path / "toy.npy", np.random.default_rng(0).normal(size=(FRAME, 8)))
    return tmp_path / "toy.npy"


def _ours(path: Path) -> Path:
    torch.manual_seed(0)
    net = create_model("cnn6", 3, width=0.125, n_mels=64)
    save_model(path, net, labels=["a", "b", "c"], task_type="multiclass", frontend=RECIPES["panns16k"].model_dump())
    return path


def test_our_hear_module_through_the_hear_format_equals_our_model(tmp_path: Path) -> None:
    model_pt = _ours(tmp_path / "model.pt")
    rng = np.random.default_rng(1)
    waves = [rng.normal(scale=0.1, size=SR).astype(np.float32) for _ in range(2)]
    ours = audiotransfer.load_model(model_pt)
    hear = audiotransfer.load_model(model_pt, format="hear:audiotransfer.hear")
    assert hear.sample_rate == 16000 and hear.embedding_dim == ours.embedding_dim
    assert np.abs(hear.embed(waves) - ours.embed(waves)).max() < 1e-5
    [(stamps, frames)], [(want_stamps, want_frames)] = hear.embed_frames(waves[0]), ours.embed_frames(waves[0])
    assert np.allclose(stamps, want_stamps) and np.abs(frames - want_frames).max() < 1e-5
    with pytest.raises(UserError, match="HEAR API has no layers"):
        hear.embed(waves, layer=1)


def test_an_independent_hear_module_its_hash_and_errors(toy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert "hear:toyhear" in PUBLIC_FORMATS and "hear" not in PUBLIC_FORMATS
    model = load_public(toy, "hear:toyhear")
    wave = np.sin(2 * np.pi * 440 * np.arange(SR // 2) / SR).astype(np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(wave.astype(np.float64), FRAME)[::HOP]
    want = np.log1p((frames @ np.load(toy)) ** 2)  # the module's recipe computed here in numpy
    loaded = audiotransfer.load_model(toy, format="hear:toyhear")
    assert np.abs(loaded.embed(wave)[0] - want.mean(axis=0)).max() < 1e-3 * np.abs(want).max()
    [(stamps, got)] = loaded.embed_frames(wave)
    assert np.abs(got - want).max() < 1e-3 * np.abs(want).max() and stamps[1] - stamps[0] == pytest.approx(10.0)
    assert model.frontend["hear_module"] == "toyhear" and model.num_layers == 0
    first = public_hash(toy, "hear:toyhear")
    monkeypatch.setattr(sys.modules["toyhear"], "__version__", "2.0")
    assert public_hash(toy, "hear:toyhear") != first  # a new release of the module is a new model
    with pytest.raises(UserError, match="'no_such_hear_mod' cannot be imported") as err:
        load_public(toy, "hear:no_such_hear_mod")
    assert "pip install no_such_hear_mod" in err.value.fix
    with pytest.raises(UserError, match=r"lacks the HEAR API function.*get_scene_embeddings, get_timestamp"):
        load_public(toy, "hear:halfhear")
    with pytest.raises(UserError, match="not found"):
        load_public(toy.with_name("gone.npy"), "hear:toyhear")
    with pytest.raises(UserError, match="not a Python module name"):
        public_hash(toy, "hear:1bad/name")
    with pytest.raises(UserError, match="unknown model format"):
        audiotransfer.load_model(toy, format="heard")


def test_checkpoint_syntax_takes_a_format_that_holds_a_colon() -> None:
    hear = parse_checkpoint("w2v=weights.pt:hear:hearbaseline")
    assert (hear.name, hear.path, hear.source) == ("w2v", Path("weights.pt"), "hear:hearbaseline")
    dotted = parse_checkpoint("x=/data/a:b/w.pt:hear:pkg.sub_mod")
    assert (dotted.path, dotted.source) == (Path("/data/a:b/w.pt"), "hear:pkg.sub_mod")
    for path in ("/data/a:b/model.pt", "/data/hear:x/model.pt", "runs/x:hear:y/model.pt"):  # colons in paths
        plain = parse_checkpoint(f"x={path}")
        assert (plain.path, plain.source) == (Path(path), "auto")
    assert parse_checkpoint("x=/data/a:b/Cnn10.pth:panns").path == Path("/data/a:b/Cnn10.pth")
    with pytest.raises(UserError, match="HEAR API has none"):
        parse_checkpoints("x=w.pt:hear:hearbaseline@3")


def test_advise_ranks_a_hear_module_beside_study_states(toy: Path, tmp_path: Path, capsys) -> None:
    root = make_study(tmp_path / "study")
    clips = tmp_path / "clips"
    _wavs(clips)
    args = ["advise", str(root), "--task", "folder", "--root", str(clips), "--no-progress"]
    args += ["--checkpoint", f"toy={toy}:hear:toyhear", "--out", str(tmp_path / "advice")]
    assert main(args) == 0
    assert "4 forward pass(es)" in capsys.readouterr().out
    table = pd.DataFrame(json.loads((tmp_path / "advice" / "advice.json").read_text())["tables"]["folder"])
    table = table.set_index("candidate")
    assert set(table.index) == {"s0", "s1", "s2", "toy"}
    assert table.loc["toy", "knn"] > 0.9  # filter energies separate three pitches
    assert table.loc[["s0", "s1", "s2"], "leep"].notna().all() and np.isnan(table.loc["toy", "leep"])
    assert len(list(StudyDir(root).embeddings.glob("public-*.npz"))) == 1  # the study's shared cache
    assert main(args) == 0
    assert "0 forward pass(es)" in capsys.readouterr().out
    out = tmp_path / "emb.npy"  # the same module from the shell's `embed`
    main(["embed", str(toy), str(clips), "--model-format", "hear:toyhear", "--out", str(out), "--no-progress"])
    assert np.load(out).shape == (18, 8)


def test_a_hear_module_is_a_linear_probe_study_state(toy: Path, tmp_path: Path) -> None:
    """`{checkpoint: WEIGHTS, format: hear:MODULE}` is a valid study state, and the run a study makes of it (a
    linear probe on the module's scene embeddings, from a waveform store at its rate) trains and predicts."""
    from audiotransfer.study.spec import STATES
    from audiotransfer.training import FINETUNE, finetune
    from test_public_training import _task

    assert STATES.validate_python({"toy": {"checkpoint": str(toy), "format": "hear:toyhear"}})["toy"].format == (
        "hear:toyhear"
    )
    manifest, store = _task(tmp_path / "task")
    recipe = FINETUNE.replace(epochs=2, batch_size=4, eval_batch_size=8, readers=1, protocol="linear")
    result = finetune(manifest, store, recipe, tmp_path / "probe", toy, False, "hear:toyhear")
    assert result.status == "done" and result.num_trainable_params == 8 * 2 + 2  # the head on 8 filter energies
    model = audiotransfer.load_model(tmp_path / "probe")
    probs = model.predict([np.zeros(SR // 2, np.float32), np.ones(SR // 3, np.float32)])
    assert probs.shape == (2, 2) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
