"""How much memory a configuration needs, estimated before any model is built, so that sizes that
cannot fit are refused in one line instead of ending in an allocation error or the OOM killer."""
from __future__ import annotations

import os

import torch

from ..models import build_model, split_model_name

FLOAT = 4
# Per parameter: weights, gradients, AdamW's two moments, the best weights kept aside, and the
# serialised copy a checkpoint holds while it is written (model, optimizer and best weights).
COPIES_PER_PARAMETER = 9
ACTIVATIONS_PER_HIDDEN_UNIT = 12  # gates, cell, hidden and decay values per step kept for backward
SCORE_COPIES = 3  # logits, their float32 copy, their gradient
GIB = 2 ** 30


def parameter_count(name: str, num_items: int, model_config) -> int:
    """Exactly, without allocating: the model is built on the meta device."""
    base, _ = split_model_name(name)  # text projections are small next to the id embeddings
    with torch.device("meta"):
        model = build_model(base, num_items, model_config)
    return sum(p.numel() for p in model.parameters()) + sum(b.numel() for b in model.buffers())


def training_bytes(name: str, num_items: int, model_config, train_config, text_dim: int = 0) -> int:
    """Peak bytes of training and evaluating ``name`` (an estimate, on the generous side)."""
    params = parameter_count(name, num_items, model_config)
    targets = train_config.batch_size * train_config.window
    n = train_config.negatives_for(num_items)
    if n > 0:
        scores = targets * (n + 1) * FLOAT * SCORE_COPIES + n * (model_config.embedding_size * FLOAT * 2 + 8)
    else:
        scores = targets * (num_items + 1) * FLOAT * SCORE_COPIES
    recurrent = (targets * model_config.num_layers * model_config.hidden_size * ACTIVATIONS_PER_HIDDEN_UNIT
                 + targets * model_config.embedding_size * 2) * FLOAT
    ranking = train_config.eval_batch_size * (num_items + 1) * FLOAT * 2  # full-ranking scores and top-k
    text = num_items * text_dim * FLOAT * 2
    return params * FLOAT * COPIES_PER_PARAMETER + max(scores + recurrent, ranking) + text


def synthetic_bytes(synthetic) -> int:
    """Peak bytes of generating the synthetic dataset: per event its ids, times and gaps, the true
    interest over every category, and the pandas frames built on the way (an estimate)."""
    events = synthetic.num_users * synthetic.max_events
    return events * (12 * 8 + 3 * synthetic.num_categories * FLOAT)


def check_synthetic_memory(synthetic) -> None:
    """ValueError when the synthetic dataset asked for cannot be generated in this machine's memory."""
    free = available_bytes(torch.device("cpu"))
    need = synthetic_bytes(synthetic)
    if free is not None and need > free:
        raise ValueError(f"--synthetic-users {synthetic.num_users:,} needs about {need / GIB:,.1f} GiB to "
                         f"generate (up to {synthetic.max_events} events each), more than the {free / GIB:,.1f} "
                         f"GiB free; choose fewer users")


def available_bytes(device: torch.device) -> int | None:
    """Free memory of ``device`` now (None where it cannot be told)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(models, num_items: int, model_config, train_config, device: torch.device,
                 text_dim: int = 0) -> None:
    """ValueError naming the model, its estimate and the free memory when a model cannot fit."""
    free = available_bytes(device)
    if free is None:
        return
    for name in models:
        need = training_bytes(name, num_items, model_config, train_config, text_dim)
        if need > free:
            raise ValueError(
                f"{name} needs about {need / GIB:,.1f} GiB to train with these sizes ({num_items:,} items, "
                f"--embedding-size {model_config.embedding_size}, --hidden-size {model_config.hidden_size}, "
                f"--num-layers {model_config.num_layers}, --batch-size {train_config.batch_size}, --window "
                f"{train_config.window}, --num-negatives {train_config.negatives_for(num_items)}), more than the "
                f"{free / GIB:,.1f} GiB free on {device}; choose smaller sizes")
