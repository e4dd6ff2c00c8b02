"""The training loop: whole sequences, windows with carried state, AdamW, early stopping on
validation NDCG@10 (patience in epochs and in optimiser steps), atomic checkpoints every epoch,
resume, DDP and AMP."""
from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..checkpoint import load_checkpoint, save_checkpoint
from ..models import SequenceRecommender
from ..models.repeat import LastSeen
from .batches import SequenceBatch, sequence_batches, training_item_counts
from .config import TrainConfig
from .distributed import Distributed, resolve_device
from .evaluate import Progress, _autocast, evaluate

log = logging.getLogger("interestevo.train")

BEST, LAST = "best.pt", "last.pt"


@dataclass
class EpochRecord:
    epoch: int
    loss: float  # mean training cross-entropy per target
    valid: dict  # validation metrics (interestevo.metrics keys)
    seconds: float  # training time of the epoch, validation excluded


class TrainingDiverged(ValueError):
    """The loss became NaN or infinite: training stops, keeping the checkpoints of the last good epoch."""


@dataclass
class TrainResult:
    history: list[EpochRecord] = field(default_factory=list)
    best_epoch: int = 0
    best_score: float = float("-inf")  # validation NDCG@10 of the best epoch


class Objective(nn.Module):
    """Summed cross-entropy of every target in a window: the module DDP wraps, so the scores
    (which use the item embeddings) are inside its forward."""

    def __init__(self, model: SequenceRecommender):
        super().__init__()
        self.model = model

    def forward(self, items, dt, times, lengths, targets, state, negatives: torch.Tensor | None = None,
                last_seen: torch.Tensor | None = None):
        queries, state = self.model(items, dt, lengths, state)
        rows, labels, at = queries[targets], items[targets], times[targets]
        seen = None if last_seen is None else last_seen[targets]
        if negatives is None:
            logits = self.model.score(rows, at, seen)
        else:
            positive = self.model.score_items(rows, labels.unsqueeze(1), at, seen)
            sampled = self.model.score_items(rows, negatives, at, seen)
            # A sampled negative that is the target itself must not be pushed down.
            sampled = sampled.masked_fill(negatives.unsqueeze(0) == labels.unsqueeze(1), float("-inf"))
            logits = torch.cat([positive, sampled], dim=1)
            labels = torch.zeros_like(labels)
        loss = nn.functional.cross_entropy(logits.float(), labels, reduction="sum")
        return loss, state


def train_model(model: SequenceRecommender, inter, train_events: np.ndarray, valid_events: np.ndarray,
                config: TrainConfig, *, name: str = "model", checkpoint_dir: str | Path | None = None,
                resume: bool = False, extra: dict | None = None, ctx: Distributed | None = None) -> TrainResult:
    """Train ``model`` on the targets ``train_events``, keep the epoch with the best validation
    NDCG@10, and leave those weights loaded in ``model``. Items that training never reads are
    marked cold (see :class:`~interestevo.models.item_encoder.ItemEncoder`).

    ``checkpoint_dir`` receives ``last.pt`` (everything needed to resume) and ``best.pt`` (the best
    weights and ``extra``: configuration, id mappings) after every epoch, from the main process only.
    """
    ctx = ctx or Distributed(device=resolve_device(config.device))
    device = ctx.device
    model.mark_trained_items(training_item_counts(inter, train_events))
    model.observe_log(inter)
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    objective = Objective(model)
    runner = nn.parallel.DistributedDataParallel(objective) if ctx.enabled else objective
    result, best_state, bad_epochs, bad_steps, start = TrainResult(), None, 0, 0, 1
    checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None

    if resume and checkpoint_dir is not None and (checkpoint_dir / LAST).is_file():
        saved = load_checkpoint(checkpoint_dir / LAST, map_location=device)
        check_resumable_layout(saved, checkpoint_dir / LAST)
        model.load_state_dict(saved["model_state"])
        optimizer.load_state_dict(saved["optimizer_state"])
        result = TrainResult([EpochRecord(**r) for r in saved["history"]], saved["best_epoch"], saved["best_score"])
        best_state, bad_epochs, start = saved["best_state"], saved["bad_epochs"], saved["epoch"] + 1
        bad_steps = saved.get("bad_steps", 0)
        _set_rng_state(saved["rng"])
        log.info("%s: resumed after epoch %d", name, saved["epoch"])

    for epoch in range(start, config.epochs + 1):
        if _patience_spent(bad_epochs, bad_steps, config):
            break
        began = time.perf_counter()
        # The shuffle depends on (seed, epoch) only, so a resumed run sees the same batches.
        rng = np.random.default_rng([config.seed, epoch])
        batches = ctx.shard(sequence_batches(inter, train_events, config.batch_size, rng))
        loss = _train_epoch(runner, model, optimizer, batches, config, device, rng, ctx,
                            desc=f"{name} {epoch}/{config.epochs}")
        _check_finite(model, loss, name, epoch, checkpoint_dir if ctx.is_main else None)
        seconds = time.perf_counter() - began
        valid = evaluate(model, inter, valid_events, batch_size=config.eval_batch_size, window=config.window,
                         device=device, amp=config.amp, progress=config.progress and ctx.is_main).summary()
        score = valid["ndcg@10"]
        improved = not score <= result.best_score  # NaN (no validation targets) keeps the latest
        if improved:
            result.best_epoch, result.best_score, bad_epochs, bad_steps = epoch, score, 0, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            bad_epochs, bad_steps = bad_epochs + 1, bad_steps + len(batches)
        result.history.append(EpochRecord(epoch, loss, valid, seconds))
        log.info("%s epoch %d: loss %.4f, valid ndcg@10 %.4f hit@10 %.4f%s (%.1f s)", name, epoch, loss, score,
                 valid["hit@10"], " *" if improved else "", seconds)
        if ctx.is_main and checkpoint_dir is not None:
            if improved:
                save_checkpoint({"model_state": best_state, "epoch": epoch, "valid": valid, **(extra or {})},
                                checkpoint_dir / BEST)
            save_checkpoint({"model_state": model.state_dict(), "optimizer_state": optimizer.state_dict(),
                             "epoch": epoch, "history": [asdict(r) for r in result.history],
                             "best_epoch": result.best_epoch, "best_score": result.best_score,
                             "best_state": best_state, "bad_epochs": bad_epochs, "bad_steps": bad_steps,
                             "rng": _rng_state(),
                             **(extra or {})}, checkpoint_dir / LAST)
        ctx.barrier()

    _log_why_training_stopped(name, result, bad_epochs, bad_steps, config)
    if best_state is not None:
        model.load_state_dict(best_state)
    return result


def _patience_spent(bad_epochs: int, bad_steps: int, config: TrainConfig) -> bool:
    """No better validation NDCG@10 for ``patience`` epochs and ``patience_steps`` optimiser steps."""
    return bad_epochs >= config.patience and bad_steps >= config.patience_steps


def _log_why_training_stopped(name: str, result: TrainResult, bad_epochs: int, bad_steps: int,
                              config: TrainConfig) -> None:
    if not result.history:
        return
    if _patience_spent(bad_epochs, bad_steps, config) and result.history[-1].epoch < config.epochs:
        log.info("%s: early stop: no better validation NDCG@10 for %d epochs (%d steps); best epoch %d", name,
                 bad_epochs, bad_steps, result.best_epoch)
    else:
        log.info("%s: trained all %d epochs; best epoch %d", name, config.epochs, result.best_epoch)


def _check_finite(model: SequenceRecommender, loss: float, name: str, epoch: int, checkpoint_dir) -> None:
    """A NaN/inf loss or weight (e.g. a learning rate far too large) stops the run before it is saved."""
    finite = np.isfinite(loss) and all(bool(torch.isfinite(p).all()) for p in model.parameters())
    if finite:
        return
    kept = "no checkpoint was written" if epoch == 1 or checkpoint_dir is None else \
        f"the checkpoints of epoch {epoch - 1} in {checkpoint_dir} are kept"
    raise TrainingDiverged(f"{name}: training diverged in epoch {epoch} (the loss or a weight is "
                           f"{'NaN or infinite' if np.isfinite(loss) else loss}); {kept}; try a smaller --lr")


def check_resumable_layout(saved: dict, path: Path) -> None:
    """The optimizer state lists parameters by position: a checkpoint whose model had them in
    another order (before the item bias moved into the ItemEncoder) cannot continue training."""
    if "item_bias" in saved["model_state"]:
        raise ValueError(f"{path} was written by an older interestevo whose parameters are ordered "
                         f"differently: it cannot be resumed (evaluate and recommend still work)")


def _train_epoch(runner, model, optimizer, batches: list[SequenceBatch], config: TrainConfig, device,
                 rng: np.random.Generator, ctx: Distributed, desc: str) -> float:
    model.train()
    total, count = 0.0, 0
    # A bar on a terminal; a redirected log gets a line a minute in a long epoch, and one per epoch.
    progress = Progress(len(batches), desc, "batches", bar=config.progress and ctx.is_main)
    for batch in batches:
        batch = batch.to(device)
        num_targets = max(batch.num_targets, 1)
        optimizer.zero_grad(set_to_none=True)
        state = model.initial_state(len(batch.users), device)
        history = LastSeen(len(batch.users), model.num_items, device) if model.needs_history else None
        windows = list(batch.windows(config.window))
        for k, (_, win) in enumerate(windows):
            state = tuple(s[:, :len(win.users)] for s in state)
            negatives = _negatives(model.num_items, config.negatives_for(model.num_items), rng, device)
            last_seen = None if history is None else history.read(win.items, win.times, win.lengths)
            # Gradients of one batch accumulate over its windows; DDP syncs once, on the last.
            last = k == len(windows) - 1
            sync = runner.no_sync() if ctx.enabled and not last else contextlib.nullcontext()
            with sync:
                with _autocast(device, config.amp):
                    loss, state = runner(win.items, win.dt, win.times, win.lengths, win.targets, state, negatives,
                                         last_seen)
                (loss / num_targets).backward()
            state = tuple(s.detach().float() for s in state)
            total += float(loss.detach())
            # Stop at once: the next step would spread NaN into every weight. (Under DDP every rank
            # goes on to the epoch's end, where the weights, equal on all ranks, are checked.)
            if not ctx.enabled and not np.isfinite(total):
                progress.close()
                return total
        count += batch.num_targets
        if config.max_grad_norm:
            nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
        optimizer.step()
        progress.set_postfix(loss=f"{total / max(count, 1):.4f}")
        progress.update(1, batch.num_targets)
    progress.close()
    return total / max(count, 1)


def _negatives(num_items: int, n: int, rng: np.random.Generator, device) -> torch.Tensor | None:
    if n <= 0:
        return None
    return torch.from_numpy(rng.integers(1, num_items + 1, size=n)).to(device)


def _rng_state() -> dict:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
