"""CNN6/10/14: the PANNs layout (names, sizes), width scaling, embeddings and named activations."""

from __future__ import annotations

import pytest
import torch

from audiotransfer.errors import UserError
from audiotransfer.models import create_model

# Parameter counts of the PANNs models with 527 AudioSet classes (Kong et al. 2020, Table: 4.8M, 5.2M, 80.8M).
PANNS_PARAMS = {"cnn6": 4_837_455, "cnn10": 5_219_279, "cnn14": 80_753_615}


@pytest.mark.parametrize("name", ["cnn6", "cnn10", "cnn14"])
def test_full_width_matches_panns_parameter_count_and_names(name: str) -> None:
    model = create_model(name, 527)
    assert sum(p.numel() for p in model.parameters()) == PANNS_PARAMS[name]
    keys = set(model.state_dict())
    assert {"bn0.running_mean", "fc1.weight", "fc_audioset.bias", "conv_block1.conv1.weight"} <= keys
    assert ("conv_block1.conv2.weight" in keys) == (name != "cnn6")
    assert model.state_dict()["conv_block1.conv1.weight"].shape[-1] == (5 if name == "cnn6" else 3)


@pytest.mark.parametrize("name", ["cnn6", "cnn10", "cnn14"])
def test_tiny_models_embed_and_expose_block_activations(name: str) -> None:
    model = create_model(name, 5, width=0.0625, n_mels=32).eval()
    x = torch.randn(3, 101, 32)
    blocks = 6 if name == "cnn14" else 4
    assert model.block_names == [f"conv_block{i}" for i in range(1, blocks + 1)] + ["embedding"]
    logits, embedding = model(x), model.embed(x)
    assert logits.shape == (3, 5) and embedding.shape == (3, model.embedding_dim)
    acts = model.activations(x)
    assert list(acts) == model.block_names
    assert acts["conv_block1"].shape == (3, 4) and torch.allclose(acts["embedding"], embedding)
    assert list(model.activations(x, ["conv_block2"])) == ["conv_block2"]
    with pytest.raises(KeyError):
        model.activations(x, ["conv_block9"])


def test_head_replacement_and_config_roundtrip() -> None:
    torch.manual_seed(0)
    model = create_model("cnn10", 527, width=0.125)
    backbone = model.fc1.weight.clone()
    model.replace_head(10)
    assert model.fc_audioset.out_features == 10 and torch.equal(model.fc1.weight, backbone)
    rebuilt = create_model(**model.config)
    rebuilt.load_state_dict(model.state_dict())
    assert rebuilt.config == {"name": "cnn10", "num_classes": 10, "width": 0.125, "n_mels": 64}


def test_bn0_normalises_each_mel_bin() -> None:
    model = create_model("cnn6", 2, width=0.125, n_mels=16).train()
    x = torch.randn(16, 50, 16) * 3 + torch.arange(16.0) * 10
    model(x)
    assert torch.allclose(model.bn0.running_mean, 0.1 * x.mean(dim=(0, 1)), atol=1e-3)


def test_unknown_model_suggests_names() -> None:
    with pytest.raises(UserError, match="cnn10"):
        create_model("cnn01", 2)
    with pytest.raises(UserError, match="32-fold"):
        create_model("cnn14", 2, n_mels=16)
