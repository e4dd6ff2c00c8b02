"""The end-to-end experiment behind ``interestevo train``, and what reads its directory."""
from .config import DataConfig, ExperimentConfig
from .dataset import Dataset, load_dataset
from .pipeline import (ExperimentResult, ModelOutcome, evaluate_run, load_model,
                         run_experiment)
from .layout import RunDirectory

__all__ = ["DataConfig", "Dataset", "ExperimentConfig", "ExperimentResult", "ModelOutcome", "RunDirectory",
           "evaluate_run", "load_dataset", "load_model", "run_experiment"]
