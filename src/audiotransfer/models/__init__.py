"""Models: the PANNs CNN family on log-mel input, and import of PANNs / autrainer checkpoints."""

from audiotransfer.models.checkpoints import load_pretrained, model_from_checkpoint
from audiotransfer.models.cnn import AudioCNN, create_model
from audiotransfer.models.registry import ARCHITECTURES

__all__ = ["ARCHITECTURES", "AudioCNN", "create_model", "load_pretrained", "model_from_checkpoint"]
