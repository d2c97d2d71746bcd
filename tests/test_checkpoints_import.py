"""Import of PANNs `.pth` and autrainer CNN10 state dicts, built here with the published key layouts."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from audiotransfer.errors import UserError
from audiotransfer.models import create_model, load_pretrained, model_from_checkpoint


def _bn(prefix: str, n: int) -> dict[str, torch.Tensor]:
    return {
        f"{prefix}.weight": torch.rand(n),
        f"{prefix}.bias": torch.randn(n),
        f"{prefix}.running_mean": torch.randn(n),
        f"{prefix}.running_var": torch.rand(n) + 0.5,
        f"{prefix}.num_batches_tracked": torch.tensor(1000),
    }


def published_layout(
    blocks: list[int], kernel: int, two_convs: bool, head: str, classes: int, mels: int = 64
) -> dict[str, torch.Tensor]:
    """Random tensors under the key names and shapes of the PANNs / autrainer CNN state dicts."""
    state = _bn("bn0", mels)
    previous = 1
    for i, channels in enumerate(blocks, start=1):
        state[f"conv_block{i}.conv1.weight"] = torch.randn(channels, previous, kernel, kernel)
        state.update(_bn(f"conv_block{i}.bn1", channels))
        if two_convs:
            state[f"conv_block{i}.conv2.weight"] = torch.randn(channels, channels, kernel, kernel)
            state.update(_bn(f"conv_block{i}.bn2", channels))
        previous = channels
    state["fc1.weight"], state["fc1.bias"] = torch.randn(previous, previous), torch.randn(previous)
    state[f"{head}.weight"], state[f"{head}.bias"] = torch.randn(classes, previous), torch.randn(classes)
    return state


def panns_file(path: Path, state: dict[str, torch.Tensor]) -> Path:
    """A PANNs checkpoint: {'iteration', 'model'} with the STFT and mel front end inside `model`."""
    front = {
        "spectrogram_extractor.stft.conv_real.weight": torch.randn(513, 1, 1024),
        "spectrogram_extractor.stft.conv_imag.weight": torch.randn(513, 1, 1024),
        "logmel_extractor.melW": torch.rand(513, 64),
    }
    torch.save({"iteration": 660000, "model": {**front, **state}}, path)
    return path


CNN10 = [64, 128, 256, 512]


def test_panns_cnn10_pth_loads_every_weight(tmp_path: Path) -> None:
    state = published_layout(CNN10, 3, True, "fc_audioset", 527)
    model = model_from_checkpoint(panns_file(tmp_path / "Cnn10_mAP=0.380.pth", state))
    assert model.config == {"name": "cnn10", "num_classes": 527, "width": 1.0, "n_mels": 64}
    loaded = model.state_dict()
    assert set(loaded) == set(state)
    assert all(torch.equal(loaded[k], state[k]) for k in state)


def test_panns_cnn6_into_a_task_model_resizes_the_head(tmp_path: Path) -> None:
    state = published_layout(CNN10, 5, False, "fc_audioset", 527)
    model = load_pretrained(create_model("cnn6", 10), panns_file(tmp_path / "Cnn6.pth", state), source="panns")
    assert model.num_classes == 527 and torch.equal(model.conv_block4.conv1.weight, state["conv_block4.conv1.weight"])


@pytest.mark.parametrize("wrapped", [False, True])
def test_autrainer_cnn10_state_dict(tmp_path: Path, wrapped: bool) -> None:
    state = published_layout(CNN10, 3, True, "out", 527)
    torch.save({"model": state} if wrapped else state, tmp_path / "model.pt")
    model = model_from_checkpoint(tmp_path / "model.pt")
    assert model.name == "cnn10" and torch.equal(model.fc_audioset.weight, state["out.weight"])
    assert torch.equal(model.conv_block3.bn2.running_var, state["conv_block3.bn2.running_var"])


def test_mismatches_list_the_keys(tmp_path: Path) -> None:
    state = published_layout([8, 16, 32, 64], 3, True, "out", 5)
    del state["conv_block2.bn1.running_mean"]
    state["att_block.cla.weight"] = torch.randn(5, 64)
    with pytest.raises(UserError) as err:
        load_pretrained(create_model("cnn10", 5, width=0.125), state, source="autrainer")
    assert "conv_block2.bn1.running_mean" in err.value.message and "att_block.cla.weight" in err.value.message
    state = published_layout([8, 16, 32, 64], 3, True, "fc_audioset", 5)
    with pytest.raises(UserError, match=r"conv_block1.conv1.weight \(8, 1, 3, 3\) vs model \(16, 1, 3, 3\)"):
        load_pretrained(create_model("cnn10", 5, width=0.25), state)
    with pytest.raises(UserError, match="checkpoint not found"):
        model_from_checkpoint(tmp_path / "absent.pth")
    with pytest.raises(UserError, match="neither"):
        model_from_checkpoint({"encoder.weight": torch.zeros(1)})
