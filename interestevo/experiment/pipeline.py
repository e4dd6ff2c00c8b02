"""One call runs the whole comparison: load data, train every model, evaluate on the test split,
and write the run directory (configuration, checkpoints, serving state, metrics, plots)."""
from __future__ import annotations

import logging
import math
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from .. import plots
from ..checkpoint import atomic_write_text, load_checkpoint, plain_ids, save_checkpoint
from ..data import DataFormatError
from ..models import SequenceRecommender, build_model, split_model_name
from ..serving.tracker import build_run_store
from ..train import (EpochRecord, TrainResult, evaluate, init_distributed, shutdown_distributed,
                     train_model)
from ..train.loop import check_resumable_layout
from ..train.distributed import Distributed
from ..run.config import ExperimentConfig
from ..run.dataset import Dataset, load_dataset
from ..run.layout import Run
from .memory import check_memory, check_synthetic_memory

TEXT_DIM = 1024  # the widest sentence encoder vectors we expect; the estimate errs on the large side

log = logging.getLogger("interestevo.experiment")


@dataclass
class ModelOutcome:
    name: str
    test: dict  # interestevo.metrics keys + forecast_mse (+ forecast_mse_true on synthetic data)
    by_history: dict  # bucket label -> metrics
    by_item_frequency: dict  # unseen / rare / frequent target items -> metrics
    history: list[EpochRecord] = field(default_factory=list)
    best_epoch: int = 0


@dataclass
class ExperimentResult:
    run: Run
    outcomes: dict[str, ModelOutcome]

    @property
    def metrics(self) -> dict[str, dict]:
        return {name: outcome.test for name, outcome in self.outcomes.items()}


def run_experiment(config: ExperimentConfig, resume: bool = False, threads: int | None = None) -> ExperimentResult:
    """Train and test every model in ``config.models``; under ``torchrun`` every process trains
    its shard and only rank 0 writes. ``resume`` continues from the run directory's checkpoints;
    ``threads``: intra-op CPU threads of each process (default: torch's, one per core)."""
    config.check_values()
    if not resume:
        config.check_item_options()
    if threads is not None:
        torch.set_num_threads(threads)
    ctx = init_distributed(config.train.device)
    lock, failed = None, True
    try:
        default = str(Run.new().root) if ctx.is_main and not config.out else None
        run = Run(ctx.broadcast(config.out or default))
        config.out = str(run.root)
        if ctx.is_main:  # before the data loads: of two runs on one directory, exactly one goes on
            lock = run.claim(resume, created=default is not None)
            on_cpu = f", torch threads: {torch.get_num_threads()}" if ctx.device.type == "cpu" else ""
            log.info("run directory: %s (training on %s%s)", run.root, ctx.device, on_cpu)
        if config.data.path is None:
            check_synthetic_memory(config.data.synthetic)
        dataset = load_dataset(config.data, with_text=config.uses_text)
        report = dataset.inter.report
        log.info("%s", report)
        if ctx.is_main:
            run.write_json(run.data_report, report.to_dict())
        check_dropped_fraction(report, config.data.max_dropped_fraction, run.data_report)
        check_memory(config.models, dataset.inter.num_items, config.model, config.train, ctx.device,
                     text_dim=TEXT_DIM if config.uses_text else 0)
        text = _text_features(config, dataset, ctx) if config.uses_text else None
        if resume:  # every model, before any of them trains again
            for name in config.models:
                _check_resumable(run, name, _checkpoint_extra(name, config, dataset.inter, text))
        if ctx.is_main:
            atomic_write_text(config.to_json() + "\n", run.config)
            log.info("%r; %s", dataset.inter, dataset.split)
            if text is not None:
                run.write_json(run.text_features, text.summary())
        outcomes = {}
        for name in config.models:
            outcomes[name] = _run_model(name, config, dataset, run, ctx, resume, text)
        result = ExperimentResult(run, outcomes)
        if ctx.is_main:
            _write_results(result, config, dataset)
            if any(m != "pop" for m in run.trained_models()):
                users, events = build_run_store(run, dataset.inter)
                log.info("%s: every user's state (%d users, %d events)", run.store_path, users, events)
        ctx.barrier()
        failed = False
        return result
    finally:
        if lock is not None:
            run.release(lock, failed)
        shutdown_distributed(ctx)


def check_dropped_fraction(report, limit: float, saved_in: Path | None = None) -> None:
    """Refuse data that cleaning had to cut by more than ``limit`` (a fraction of the rows read)."""
    if report.dropped_fraction > limit:
        raise DataFormatError(f"cleaning dropped {report.dropped_fraction:.2%} of the rows, more than "
                              f"--max-dropped-fraction {limit:g}: {report.summary_of_drops()} (pass "
                              f"--max-dropped-fraction {_round_up(report.dropped_fraction)} to "
                              f"accept it; details in {saved_in or 'data_report.json'})")


def _round_up(fraction: float) -> str:
    """The smallest two-decimal limit that accepts ``fraction``, as a flag value."""
    return f"{min(1.0, math.ceil(fraction * 100) / 100):.2f}"


def _text_features(config: ExperimentConfig, dataset: Dataset, ctx: Distributed):
    """Encoded on the main process (on the training device) and handed to the others, so the
    processes neither repeat the work nor race on the cache file."""
    from ..text import item_text_features

    texts = dataset.inter.item_text
    if texts is None or not any(isinstance(t, str) for t in texts):
        raise DataFormatError(f"{config.data.items or 'synthetic data'}: no item has a text; name the text "
                              f"column with --text-col")
    features = None
    if ctx.is_main:
        # A bar only on a terminal: redirected output would fill with bar frames.
        features = item_text_features(texts, config.data.text_model, config.data.text_cache,
                                      progress=config.train.progress and sys.stderr.isatty(),
                                      device=str(ctx.device))
    return ctx.broadcast(features)


def _run_model(name: str, config: ExperimentConfig, dataset: Dataset, run: Run,
               ctx: Distributed, resume: bool, text=None) -> ModelOutcome:
    inter = dataset.inter
    torch.manual_seed(config.train.seed)  # every model starts from the same seed
    model = build_model(name, inter.num_items, config.model, _categories(inter), text)
    extra = _checkpoint_extra(name, config, inter, text)
    result = TrainResult()
    if name == "pop":
        model.fit(torch.from_numpy(inter.item[dataset.train_targets]))
        if ctx.is_main:
            save_checkpoint({"model_state": model.state_dict(), "epoch": 0, **extra},
                        run.best_checkpoint(name))
    else:
        result = train_model(model, inter, dataset.train_targets, dataset.valid_targets, config.train,
                             name=name, checkpoint_dir=run.checkpoints(name), resume=resume, extra=extra,
                             ctx=ctx)
    test = evaluate(model, inter, dataset.test_targets, batch_size=config.train.eval_batch_size,
                    window=config.train.window, device=ctx.device, true_interest=dataset.true_interest,
                    amp=config.train.amp)
    outcome = ModelOutcome(name, test.summary(), test.by_history(), test.by_item_frequency(dataset.train_item_counts),
                           result.history, result.best_epoch)
    log.info("%s test: %s", name, ", ".join(f"{k} {v:.4f}" for k, v in outcome.test.items()
                                             if k in ("hit@10", "ndcg@10", "mrr@10", "forecast_mse")))
    return outcome


def _categories(inter) -> torch.Tensor | None:
    return None if inter.item_categories is None else torch.from_numpy(inter.item_categories)


def _checkpoint_extra(name: str, config: ExperimentConfig, inter, text=None) -> dict:
    """What a checkpoint needs besides weights to be used on its own: configuration and id maps
    (and, for a text model, the fingerprint of the texts and encoder behind its vectors)."""
    extra = {"model_name": name, "model_config": asdict(config.model), "train_config": asdict(config.train),
             "num_items": inter.num_items, "dt_unit": inter.dt_unit,
             "user_ids": plain_ids(inter.user_ids), "item_ids": plain_ids(inter.item_ids)}
    if text is not None and split_model_name(name)[1]:
        extra["text_fingerprint"] = text.fingerprint
    return extra


def _check_same_items(saved: dict, item_ids: list, path: Path) -> None:
    """A checkpoint only scores the catalogue it was trained on: with other items (or the same in
    another order) every item index would silently mean another item."""
    if saved.get("item_ids") != item_ids:
        raise ValueError(f"{path}: the items differ from those the model was trained on (the log or the "
                         f"item file changed); train a new run instead")


def _check_resumable(run: Run, name: str, extra: dict) -> None:
    """Resuming continues on the same items, texts and text encoder, or not at all."""
    path = next((p for p in (run.last_checkpoint(name), run.best_checkpoint(name)) if p.is_file()), None)
    if path is None:
        return
    saved = load_checkpoint(path)
    check_resumable_layout(saved, path)
    _check_same_items(saved, extra["item_ids"], path)
    if saved.get("text_fingerprint") != extra.get("text_fingerprint"):
        raise ValueError(f"{path}: the item texts or the text encoder (its files or the sentence-transformers "
                         f"version) differ from those the model was trained with; train a new run instead")


def _write_results(result: ExperimentResult, config: ExperimentConfig, dataset: Dataset) -> None:
    run = result.run
    run.write_json(run.metrics, result.metrics)
    run.write_json(run.metrics_by_history, {n: o.by_history for n, o in result.outcomes.items()})
    run.write_json(run.metrics_by_item_frequency, {n: o.by_item_frequency for n, o in result.outcomes.items()})
    run.write_json(run.history, {n: [asdict(r) for r in o.history] for n, o in result.outcomes.items()})
    trained = {n: o.history for n, o in result.outcomes.items() if o.history}
    if trained:
        plots.plot_training_curves(trained, run.plots / "training_curves.png")
    plots.plot_metrics_by_history({n: o.by_history for n, o in result.outcomes.items()},
                                  run.plots / "metrics_by_history.png")
    if dataset.true_interest is not None:
        _plot_interest(run, config, dataset)


def _plot_interest(run: Run, config: ExperimentConfig, dataset: Dataset) -> None:
    """One user's true interest vs the forecasts of the time-aware model and the plain LSTM."""
    inter = dataset.inter
    offsets = np.asarray(inter.user_offsets)
    user = int(np.argmax(np.diff(offsets)[1:])) + 1  # the longest history shows the most
    events = np.arange(offsets[user] + 1, offsets[user + 1])
    shown = [name for name in ("timelstm", "lstm") if name in config.models] or list(config.models[:1])
    predictions = {name: evaluate(load_model(run, name), inter, events, window=config.train.window).forecast
                   for name in shown}
    seconds = inter.timestamp[events] - inter.timestamp[offsets[user]]
    plots.plot_interest_over_time(seconds / 3600.0, dataset.true_interest[events], predictions,
                                  inter.category_names, run.plots / "interest_over_time.png",
                                  title=f"user {inter.user_ids[user]}: interest at each event, true vs forecast")


def load_model(run: Run | str | Path, name: str) -> SequenceRecommender:
    """The best weights of ``name`` from a run directory."""
    run = run if isinstance(run, Run) else Run.open(run)
    return run.load_model(name)[0]


def evaluate_run(run_dir: str | Path, models: tuple[str, ...] | None = None) -> dict[str, ModelOutcome]:
    """Re-evaluate the best checkpoints of a finished run on its test split."""
    run = Run.open(run_dir)
    config = run.settings
    missing = [str(run.best_checkpoint(name)) for name in models or config.models
               if not run.best_checkpoint(name).is_file()]
    if missing:
        raise FileNotFoundError(f"{run.root}: no best checkpoint for {len(missing)} model(s) of the run "
                                f"({', '.join(missing)}); the run did not finish (continue it with "
                                f"`train --resume --out {run.root}`) or files were removed")
    dataset = run.dataset()
    outcomes = {}
    item_ids = plain_ids(dataset.inter.item_ids)
    for name in models or config.models:
        model, saved = run.load_model(name)
        _check_same_items(saved, item_ids, run.best_checkpoint(name))
        test = evaluate(model, dataset.inter, dataset.test_targets, batch_size=config.train.eval_batch_size,
                        window=config.train.window, true_interest=dataset.true_interest)
        outcomes[name] = ModelOutcome(name, test.summary(), test.by_history(),
                                      test.by_item_frequency(dataset.train_item_counts))
    return outcomes
