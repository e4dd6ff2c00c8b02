"""The jobs over runs: train and compare models (:func:`run_experiment`), evaluate a finished run,
fine-tune one (:mod:`.finetune`) and export its recommendations (:mod:`.export`)."""
from .pipeline import ExperimentResult, ModelOutcome, evaluate_run, load_model, run_experiment

__all__ = ["ExperimentResult", "ModelOutcome", "evaluate_run", "load_model", "run_experiment"]
