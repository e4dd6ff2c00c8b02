"""Where things live in a run directory."""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

from ..checkpoint import atomic_write_text


class RunDirectory:
    """``config.json``; ``metrics.json`` (test metrics per model); ``metrics_by_history.json`` and
    ``metrics_by_item_frequency.json`` (cold-start views); ``text_features.json`` (with text models);
    ``history.json`` (per-epoch records); ``checkpoints/<model>/{best,last}.pt``;
    ``trackers/<model>.pt`` (serving state after every event); ``plots/*.png``."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    @classmethod
    def new(cls, base: str | Path = "runs") -> "RunDirectory":
        stamp = time.strftime("%Y%m%d-%H%M%S")
        root, n = Path(base) / stamp, 1
        while root.exists():
            n += 1
            root = Path(base) / f"{stamp}-{n}"
        return cls(root)

    config = property(lambda self: self.root / "config.json")
    metrics = property(lambda self: self.root / "metrics.json")
    metrics_by_history = property(lambda self: self.root / "metrics_by_history.json")
    metrics_by_item_frequency = property(lambda self: self.root / "metrics_by_item_frequency.json")
    text_features = property(lambda self: self.root / "text_features.json")
    history = property(lambda self: self.root / "history.json")
    plots = property(lambda self: self.root / "plots")

    def checkpoints(self, model: str) -> Path:
        return self.root / "checkpoints" / model

    def tracker(self, model: str) -> Path:
        return self.root / "trackers" / f"{model}.pt"

    def write_json(self, path: Path, value) -> None:
        atomic_write_text(json.dumps(_finite(value), indent=2) + "\n", path)


def _finite(value):
    """NaN (a metric that does not apply, e.g. a forecast without categories) becomes JSON null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
