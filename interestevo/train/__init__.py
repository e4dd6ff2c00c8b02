"""Training and evaluation of the recommenders (``interestevo.train``)."""
from .batches import SequenceBatch, sequence_batches, training_item_counts
from .config import TrainConfig
from .distributed import Distributed, init_distributed, resolve_device, shutdown_distributed
from .evaluate import Evaluation, evaluate
from .loop import EpochRecord, TrainResult, train_model

__all__ = ["Distributed", "EpochRecord", "Evaluation", "SequenceBatch", "TrainConfig", "TrainResult",
           "evaluate", "init_distributed", "resolve_device", "sequence_batches", "shutdown_distributed",
           "train_model", "training_item_counts"]
