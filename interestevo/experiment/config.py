"""The configuration of a run: typed dataclasses, stored as ``config.json`` in the run directory."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from ..data import SyntheticConfig
from ..models import MODEL_NAMES, TEXT_SUFFIX, ModelConfig, split_model_name
from ..train import TrainConfig

SPLITS = ("loo", "temporal")


@dataclass
class DataConfig:
    """Where the interactions come from and how they are split."""

    path: str | None = None  # None: the built-in synthetic dataset
    format: str | None = None  # csv, tsv, parquet, movielens, recbole; None: from the file name
    items: str | None = None  # item side file with categories and/or texts (titles, descriptions)
    user_col: str = "user_id"
    item_col: str = "item_id"
    time_col: str = "timestamp"
    split: str = "loo"  # "loo" (leave-one-out) or "temporal" (global t1 = 80%, t2 = 90% quantiles)
    k_core: int = 0
    dt_unit: str = "hours"
    category_col: str | None = None  # item file's category column; None: one named like genre/category/tags
    text_col: str | None = None  # item text column; None: title + categories + description
    text_model: str | None = None  # sentence encoder name or path; None: all-MiniLM-L6-v2
    text_cache: str | None = None  # where text vectors are cached; None: ~/.cache/interestevo/text
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)

    @property
    def has_item_texts(self) -> bool:
        """Synthetic items always have texts; a log needs an item file."""
        return self.path is None or self.items is not None

    @property
    def asks_for_text(self) -> bool:
        """A text model or column was named."""
        return self.text_model is not None or self.text_col is not None


@dataclass
class ExperimentConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    models: tuple[str, ...] | None = None  # None: default_models(data)
    out: str | None = None  # run directory; None: runs/<timestamp>

    def __post_init__(self):
        if self.models is None:
            self.models = default_models(self.data)
        self.models = tuple(self.models)
        if not self.models:
            raise ValueError(f"no models given; expected a subset of {', '.join(MODEL_NAMES)}")
        for name in self.models:
            split_model_name(name)
        if (self.uses_text or self.data.asks_for_text) and not self.data.has_item_texts:
            wanting = [m for m in self.models if m.endswith(TEXT_SUFFIX)] or ["--text-model/--text-col"]
            raise ValueError(f"{', '.join(wanting)} needs item texts: pass --items with an item file "
                             f"(titles, genres, descriptions)")
        if self.data.split not in SPLITS:
            raise ValueError(f"unknown split {self.data.split!r}; expected one of {', '.join(SPLITS)}")

    def check_item_options(self) -> None:
        """Refuse item-file options that would be silently ignored (checked when a run starts, not when
        a finished run's config.json is read)."""
        if self.data.asks_for_text and not self.uses_text:
            raise ValueError(f"--text-model and --text-col apply to text models; add one to --models, "
                             f"e.g. timelstm{TEXT_SUFFIX}")
        if self.data.text_col is not None and self.data.path is None:
            raise ValueError("--text-col names a column of the --items file; synthetic items have their own texts")
        if self.data.category_col is not None and self.data.items is None:
            raise ValueError("--category-col names a column of the --items file; pass --items")

    @property
    def uses_text(self) -> bool:
        return any(split_model_name(m)[1] for m in self.models)

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


def default_models(data: DataConfig) -> tuple[str, ...]:
    """Every model, plus ``timelstm+text`` on synthetic data when the default text model is
    installed, or on a log whose item file's texts were asked for (``text_model``/``text_col``)."""
    from ..text import default_model_available

    wanted = data.asks_for_text and data.has_item_texts
    synthetic = data.path is None and default_model_available()
    return MODEL_NAMES + (("timelstm" + TEXT_SUFFIX,) if wanted or synthetic else ())


def _build(kind, values: dict):
    # Keys a newer version added or an older one dropped should not make old runs unreadable.
    known = {f.name for f in fields(kind)}
    return kind(**{k: v for k, v in values.items() if k in known})
