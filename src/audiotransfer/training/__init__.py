"""Training: the engine (pre-training, fine-tuning protocols), metrics, checkpoints, DDP."""

from audiotransfer.training.checkpoint import load_model
from audiotransfer.training.engine import finetune, pretrain
from audiotransfer.training.recipe import FINETUNE, PRETRAIN, TrainRecipe
from audiotransfer.training.result import RunResult

__all__ = ["FINETUNE", "PRETRAIN", "RunResult", "TrainRecipe", "finetune", "load_model", "pretrain"]
