"""The configuration of a run: typed dataclasses, stored as ``config.json`` in the run directory."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from ..data import SyntheticConfig
from ..models import MODEL_NAMES, ModelConfig
from ..train import TrainConfig

SPLITS = ("loo", "temporal")


@dataclass
class DataConfig:
    """Where the interactions come from and how they are split."""

    path: str | None = None  # None: the built-in synthetic dataset
    format: str | None = None  # csv, tsv, parquet, movielens, recbole; None: from the file name
    items: str | None = None  # item side file with categories
    user_col: str = "user_id"
    item_col: str = "item_id"
    time_col: str = "timestamp"
    split: str = "loo"  # "loo" (leave-one-out) or "temporal" (global t1 = 80%, t2 = 90% quantiles)
    k_core: int = 0
    dt_unit: str = "hours"
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)


@dataclass
class ExperimentConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    models: tuple[str, ...] = MODEL_NAMES
    out: str | None = None  # run directory; None: runs/<timestamp>

    def __post_init__(self):
        unknown = [m for m in self.models if m not in MODEL_NAMES]
        if unknown or not self.models:
            raise ValueError(f"unknown model(s) {', '.join(unknown) or '(none given)'}; "
                             f"expected a subset of {', '.join(MODEL_NAMES)}")
        if self.data.split not in SPLITS:
            raise ValueError(f"unknown split {self.data.split!r}; expected one of {', '.join(SPLITS)}")
        self.models = tuple(self.models)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_dict(cls, raw: dict) -> "ExperimentConfig":
        data = dict(raw.get("data", {}))
        data["synthetic"] = _build(SyntheticConfig, data.get("synthetic", {}))
        return cls(data=_build(DataConfig, data), model=_build(ModelConfig, raw.get("model", {})),
                   train=_build(TrainConfig, raw.get("train", {})),
                   models=tuple(raw.get("models", MODEL_NAMES)), out=raw.get("out"))

    @classmethod
    def load(cls, path: str | Path) -> "ExperimentConfig":
        return cls.from_dict(json.loads(Path(path).read_text()))


def _build(kind, values: dict):
    # Keys a newer version added or an older one dropped should not make old runs unreadable.
    known = {f.name for f in fields(kind)}
    return kind(**{k: v for k, v in values.items() if k in known})
