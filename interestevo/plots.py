"""PNG figures of a run: training curves, metrics by history length, interest over time."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .metrics import HISTORY_BUCKETS  # noqa: E402


def plot_training_curves(histories: dict[str, list], path: str | Path) -> Path:
    """Training loss and validation NDCG@10 per epoch, one line per model.

    ``histories`` maps a model name to its :class:`~interestevo.train.EpochRecord` list.
    """
    fig, (loss_ax, ndcg_ax) = plt.subplots(1, 2, figsize=(10, 4))
    for name, history in histories.items():
        if not history:
            continue
        epochs = [r.epoch for r in history]
        loss_ax.plot(epochs, [r.loss for r in history], marker="o", label=name)
        ndcg_ax.plot(epochs, [r.valid["ndcg@10"] for r in history], marker="o", label=name)
    loss_ax.set(title="training loss", xlabel="epoch", ylabel="cross-entropy per target")
    ndcg_ax.set(title="validation NDCG@10", xlabel="epoch", ylabel="NDCG@10")
    ndcg_ax.legend()
    return _save(fig, path)


def plot_metrics_by_history(by_history: dict[str, dict[str, dict]], path: str | Path,
                            metric: str = "ndcg@10") -> Path:
    """Grouped bars: ``metric`` per model for each history-length bucket (cold-start view)."""
    labels = [label for label, _, _ in HISTORY_BUCKETS]
    names = list(by_history)
    width = 0.8 / max(len(names), 1)
    fig, ax = plt.subplots(figsize=(8, 4))
    for i, name in enumerate(names):
        values = [by_history[name].get(label, {}).get(metric, np.nan) for label in labels]
        ax.bar(np.arange(len(labels)) + i * width, np.nan_to_num(values), width, label=name)
    counts = [next(iter(by_history.values())).get(label, {}).get("count", 0) for label in labels] if names else []
    ax.set_xticks(np.arange(len(labels)) + width * (len(names) - 1) / 2,
                  [f"{label} prior events\n({n} targets)" for label, n in zip(labels, counts)])
    ax.set(title=f"test {metric} by history length", ylabel=metric)
    ax.legend()
    return _save(fig, path)


def plot_interest_over_time(hours: np.ndarray, truth: np.ndarray, predictions: dict[str, np.ndarray],
                            category_names: list[str], path: str | Path, title: str, top: int = 3) -> Path:
    """One user's interest in their ``top`` categories: the true curve and each model's forecast.

    ``hours`` (M,) are event times since the user's first event; ``truth`` and each prediction
    are (M, C) distributions at those events.
    """
    chosen = np.argsort(-truth.mean(axis=0))[:top]
    fig, axes = plt.subplots(len(chosen), 1, figsize=(10, 2.2 * len(chosen)), sharex=True, squeeze=False)
    days = hours / 24.0
    for ax, c in zip(axes[:, 0], chosen):
        ax.step(days, truth[:, c], where="post", color="black", label="true", linewidth=2)
        for name, forecast in predictions.items():
            ax.plot(days, forecast[:, c], marker=".", linestyle="--", label=name)
        ax.set_ylabel(category_names[c])
        ax.set_ylim(-0.02, 1.02)
    axes[0, 0].set_title(title)
    axes[0, 0].legend(loc="upper right", fontsize="small")
    axes[-1, 0].set_xlabel("days since the user's first event")
    return _save(fig, path)


def _save(fig, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
