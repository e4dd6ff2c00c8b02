"""The configuration of a run: typed dataclasses, stored as ``config.json`` in the run directory."""
from __future__ import annotations

import json
import math
import os
import sys
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from ..data import SyntheticConfig
from ..models import MODEL_NAMES, TEXT_SUFFIX, ModelConfig, split_model_name
from ..train import TrainConfig

SPLITS = ("loo", "temporal")
#: The built-in synthetic log of ``interestevo train``: smaller than the generator's default and with
#: histories of 3 to 50 events, so that the quick start's models train in under 3 minutes on 2 cores
#: and every user bucket of the cold-start view (1-4, 5-19, 20+ prior events) has test users.
SYNTHETIC_LOG = SyntheticConfig(num_users=1500, min_events=3, max_events=50)


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
    max_dropped_fraction: float = 0.01  # cleaning may drop at most this fraction of rows, or the run stops
    synthetic: SyntheticConfig = SYNTHETIC_LOG

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
    train: TrainConfig | None = None  # None: default_train(data)
    models: tuple[str, ...] | None = None  # None: default_models(data)
    out: str | None = None  # run directory; None: runs/<timestamp>

    def __post_init__(self):
        if self.train is None:
            self.train = default_train(self.data)
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
        repeated = sorted({m for m in self.models if self.models.count(m) > 1})
        if repeated:
            raise ValueError(f"--models names {', '.join(repeated)} more than once")

    def check_values(self) -> None:
        """Every setting in range, named by its flag (and its key in a config file), and the input
        files present, before any data loads. ValueError says which and what was expected."""
        for flag, path in (("--data", self.data.path), ("--items", self.data.items)):
            if path is not None and not Path(path).is_file():
                raise ValueError(f"{flag} {path}: {'not a file' if Path(path).exists() else 'file not found'}")
        for section, name, flag, ok, expected in _CHECKS:
            value = getattr(getattr(self, section), name)
            if not ok(value):
                key = f"{section}.{name}"
                named = f"{flag} must be {expected}, got {value!r} ({key} in a config file)" if flag else \
                    f"{key} must be {expected}, got {value!r}"
                raise ValueError(named)

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
    def from_dict(cls, raw: dict, strict: bool = False, where: str = "config") -> "ExperimentConfig":
        """From ``config.json``'s layout. Values of the wrong type are refused; unknown keys too when
        ``strict`` (a file a person wrote), else ignored (keys a newer or older version wrote)."""
        if not isinstance(raw, dict):
            raise ValueError(f"{where}: expected a table of settings (data, model, train, models, out), "
                             f"got {type(raw).__name__}")
        if strict:
            _refuse_unknown(raw, {"data", "model", "train", "models", "out"}, where)
        data = _section(raw, "data", where)
        data["synthetic"] = _build(SyntheticConfig, _section(data, "synthetic", where, "data."), strict,
                                   f"{where}: data.synthetic", base=SYNTHETIC_LOG)
        models = raw.get("models")
        if models is not None and (not isinstance(models, (list, tuple))
                                   or not all(isinstance(m, str) for m in models)):
            raise ValueError(f"{where}: models must be a list of model names, got {models!r}")
        out = raw.get("out")
        if out is not None and not isinstance(out, str):
            raise ValueError(f"{where}: out must be a directory name, got {out!r}")
        data = _build(DataConfig, data, strict, f"{where}: data")
        return cls(data=data, model=_build(ModelConfig, _section(raw, "model", where), strict, f"{where}: model"),
                   train=_build(TrainConfig, _section(raw, "train", where), strict, f"{where}: train",
                                base=default_train(data)),
                   models=None if models is None else tuple(models), out=out)

    def train_overrides(self) -> dict:
        """The training settings that differ from :func:`default_train` of this configuration's data."""
        defaults = default_train(self.data)
        return {f.name: getattr(self.train, f.name) for f in fields(TrainConfig)
                if getattr(self.train, f.name) != getattr(defaults, f.name)}

    @classmethod
    def load(cls, path: str | Path) -> "ExperimentConfig":
        """A run directory's ``config.json``; a damaged or hand-broken one is one ValueError."""
        path = Path(path)
        try:
            raw = json.loads(path.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ValueError(f"{path} is not valid JSON ({err}); the run directory is damaged") from None
        if isinstance(raw, dict) and isinstance(raw.get("model"), dict):
            # Runs made before these parts existed trained models without them.
            for term in ("item_activity", "repeat_scores", "fuse_attention"):
                raw["model"].setdefault(term, False)
        return cls.from_dict(raw, where=str(path))

    @classmethod
    def from_file(cls, path: str | Path) -> "ExperimentConfig":
        """A settings file a person wrote (``--config run.toml``): config.json's keys, every key
        checked; relative paths in it are relative to the file's folder."""
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"--config {path}: file not found")
        if path.suffix.lower() != ".toml":
            raise ValueError(f"--config {path}: expected a .toml file")
        try:
            raw = tomllib.loads(path.read_text())
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
            raise ValueError(f"--config {path}: not valid TOML ({err})") from None
        for key in ("path", "items", "text_cache"):
            value = raw.get("data", {}).get(key) if isinstance(raw.get("data"), dict) else None
            if isinstance(value, str):
                raw["data"][key] = str((path.parent / os.path.expanduser(value)).resolve())
        return cls.from_dict(raw, strict=True, where=f"--config {path}")


#: The training budget on the built-in synthetic data. TrainConfig's defaults are made for real logs
#: (65-78 epochs on MovieLens-100K at lr 1e-3, patience for a noisy validation); on the synthetic
#: log they kept the quick start's seven models training for 8 to 66 minutes on 2 cores. With these,
#: each model stops after 5-7 epochs, and timelstm leads the models without Δt (test NDCG@10 0.319
#: against 0.303-0.309).
SYNTHETIC_TRAIN = {"lr": 3e-3, "patience": 3, "patience_steps": 0, "epochs": 20}


def default_train(data: DataConfig) -> TrainConfig:
    """TrainConfig's defaults for a log; :data:`SYNTHETIC_TRAIN` on the built-in synthetic data."""
    return TrainConfig() if data.path is not None else TrainConfig(**SYNTHETIC_TRAIN)


def default_models(data: DataConfig) -> tuple[str, ...]:
    """Every model, plus ``timelstm+text`` on synthetic data when the default text model is
    installed, or on a log whose item file's texts were asked for (``text_model``/``text_col``)."""
    from ..text import default_model_available

    wanted = data.asks_for_text and data.has_item_texts
    synthetic = data.path is None and default_model_available()
    return MODEL_NAMES + (("timelstm" + TEXT_SUFFIX,) if wanted or synthetic else ())


def _section(raw: dict, name: str, where: str, prefix: str = "") -> dict:
    value = raw.get(name, {})
    if not isinstance(value, dict):
        raise ValueError(f"{where}: {prefix}{name} must be a table of settings, got {value!r}")
    return dict(value)


def _refuse_unknown(values: dict, known: set, where: str) -> None:
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)}; expected some of {', '.join(sorted(known))}")


def _build(kind, values: dict, strict: bool = False, where: str = "config", base=None):
    """``kind`` from ``values`` (over ``base``'s, or the defaults), each of the kind of its default."""
    known = {f.name: f for f in fields(kind)}
    if strict:
        _refuse_unknown(values, set(known), where)
    # Keys a newer version added or an older one dropped should not make old runs unreadable.
    kept = {k: v for k, v in values.items() if k in known}
    for name, value in kept.items():
        default = known[name].default
        if default is MISSING or isinstance(value, (dict, SyntheticConfig)):
            continue
        if not _same_kind(value, default):
            raise ValueError(f"{where}.{name} must be {_kind_name(default)}, got {value!r}")
    return kind(**kept) if base is None else replace(base, **kept)


def _same_kind(value, default) -> bool:
    """Does ``value`` fit a field whose default is ``default`` (None: a string or nothing)?"""
    if default is None:
        return value is None or isinstance(value, str)
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, type(default))


def _kind_name(default) -> str:
    if default is None:
        return "a string or absent"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(
        type(default), type(default).__name__)


def _finite_above(low: float, inclusive: bool = False):
    return lambda v: isinstance(v, (int, float)) and math.isfinite(v) and (v >= low if inclusive else v > low)


def _int_at_least(low: int, high: int | None = None):
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= low and (high is None or v <= high)


SEED_LIMIT = 2 ** 63 - 1  # torch.manual_seed and numpy's generators take any seed up to this
# (section, field, flag, check, what is expected): what check_values enforces.
_CHECKS = (
    ("train", "epochs", "--epochs", _int_at_least(1), "a positive integer"),
    ("train", "batch_size", "--batch-size", _int_at_least(1), "a positive integer"),
    ("train", "window", "--window", _int_at_least(1), "a positive integer"),
    ("train", "lr", "--lr", _finite_above(0), "a finite number > 0"),
    ("train", "weight_decay", None, _finite_above(0, inclusive=True), "a finite number >= 0"),
    ("train", "patience", "--patience", _int_at_least(1), "a positive integer"),
    ("train", "patience_steps", "--patience-steps", _int_at_least(0), "an integer >= 0"),
    ("train", "max_grad_norm", None, _finite_above(0, inclusive=True), "a finite number >= 0"),
    ("train", "num_negatives", "--num-negatives", lambda v: v is None or _int_at_least(0)(v),
     "an integer >= 0, or null (by catalogue size)"),
    ("train", "seed", "--seed", _int_at_least(0, SEED_LIMIT), f"an integer in [0, {SEED_LIMIT}]"),
    ("train", "eval_batch_size", None, _int_at_least(1), "a positive integer"),
    ("model", "embedding_size", "--embedding-size", _int_at_least(1), "a positive integer"),
    ("model", "hidden_size", "--hidden-size", _int_at_least(1), "a positive integer"),
    ("model", "num_layers", "--num-layers", _int_at_least(1), "a positive integer"),
    ("model", "dropout", None, lambda v: _finite_above(0, True)(v) and v < 1, "a number in [0, 1)"),
    ("model", "decay", "--decay", lambda v: v in ("exp", "log", "none"), "one of exp, log, none"),
    ("model", "item_activity", "--no-item-activity", lambda v: isinstance(v, bool), "true or false"),
    ("model", "repeat_scores", "--no-repeat-scores", lambda v: isinstance(v, bool), "true or false"),
    ("model", "attention_layers", None, _int_at_least(1), "a positive integer"),
    ("model", "attention_heads", None, _int_at_least(1), "a positive integer"),
    ("model", "attention_dropout", None, lambda v: _finite_above(0, True)(v) and v < 1, "a number in [0, 1)"),
    ("model", "max_history", None, _int_at_least(1), "a positive integer"),
    ("data", "k_core", "--k-core", _int_at_least(0), "an integer >= 0"),
    ("data", "max_dropped_fraction", "--max-dropped-fraction", lambda v: _finite_above(0, True)(v) and v <= 1,
     "a number in [0, 1]"),
    ("data", "dt_unit", None, lambda v: v in ("seconds", "minutes", "hours", "days"),
     "one of seconds, minutes, hours, days"),
)
