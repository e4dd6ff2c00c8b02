"""The run layer: a run directory (:class:`Run`: its layout, settings, data, checkpoints, best
model and user store), its settings (:class:`ExperimentConfig`) and its data (:func:`load_dataset`)."""
from .config import DataConfig, ExperimentConfig
from .dataset import Dataset, item_labels, load_dataset
from .layout import Run, RunError

__all__ = ["DataConfig", "Dataset", "ExperimentConfig", "Run", "RunError", "item_labels", "load_dataset"]
