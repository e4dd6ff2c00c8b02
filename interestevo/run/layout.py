"""Where things live in a run directory."""
from __future__ import annotations

import functools
import json
import math
import time
from pathlib import Path

from filelock import BaseFileLock, FileLock, Timeout

from ..checkpoint import atomic_write_text, load_checkpoint
from ..models import ModelConfig, model_from_state
from ..train.loop import BEST, LAST
from .config import ExperimentConfig
from .dataset import item_labels, load_dataset

LOCK = ".lock"  # held (flock) by the run that writes the directory, for as long as it runs
DATA_REPORT = "data_report.json"


class RunError(ValueError):
    """A run directory that cannot be claimed: in use, not empty, not writable, not a directory."""


class Run:
    """``config.json``; ``data_report.json`` (what cleaning dropped, and why); ``metrics.json`` (test
    metrics per model); ``metrics_by_history.json`` and ``metrics_by_item_frequency.json`` (cold-start
    views); ``text_features.json`` (with text models); ``history.json`` (per-epoch records);
    ``checkpoints/<model>/{best,last}.pt``; ``serving.db`` (every user's events and state after
    them, for the best model: what ``recommend``, ``serve``, ``forget`` and ``finetune`` read and
    write; ``serving.db-writer`` is its writers' lock); ``plots/*.png``; ``.lock`` (held while a
    run writes here)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    @classmethod
    def new(cls, base: str | Path = "runs") -> "Run":
        """A fresh ``base/<timestamp>[-n]``, created here so that two runs never pick the same one."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        Path(base).mkdir(parents=True, exist_ok=True)
        root, n = Path(base) / stamp, 1
        while True:
            try:
                root.mkdir()
                return cls(root)
            except FileExistsError:
                n += 1
                root = Path(base) / f"{stamp}-{n}"

    def claim(self, resume: bool = False, created: bool = False) -> BaseFileLock:
        """Hold the directory for this run (release the returned lock when it ends), before any data
        loads: of two runs started on the same directory exactly one gets it. A new run needs an
        empty directory (or one a run left before writing its config.json, e.g. refused data or a
        kill); ``resume`` one with a config.json. Leftover temporary files of a killed run are removed.
        ``created``: the caller made the directory just now (see :meth:`release`)."""
        where = f"--out {self.root}"
        self._created = created or not self.root.exists()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise RunError(f"{where} is a file, not a directory") from None
        except OSError as err:
            raise RunError(f"{where} cannot be created: {err.strerror or err}") from None
        if not self.root.is_dir():
            raise RunError(f"{where} is a file, not a directory")
        lock = FileLock(self.root / LOCK, timeout=0)
        try:
            lock.acquire()
        except Timeout:
            raise RunError(f"{where} is in use by another interestevo run") from None
        except OSError as err:
            raise RunError(f"{where} is not writable: {err.strerror or err}") from None
        try:
            self._check_claimable(resume, where)
            self.remove_temporaries()
        except BaseException:
            lock.release()
            raise
        return lock

    def release(self, lock: BaseFileLock, failed: bool) -> None:
        """Let go of the directory and remove the lock file, so a finished run holds only its
        results; one this run created and left empty (it failed before writing anything) is
        removed too, so a refused run leaves no trace."""
        # Unlinked while still held: a run that opens the path afterwards makes a new lock file.
        (self.root / LOCK).unlink(missing_ok=True)
        lock.release()
        if failed and getattr(self, "_created", False) and not any(self.root.iterdir()):
            self.root.rmdir()

    def _check_claimable(self, resume: bool, where: str) -> None:
        if resume:
            if not self.config.is_file():
                raise RunError(f"--resume: {self.root} has no config.json to continue from")
            return
        started = sorted(p.name for p in self.root.iterdir() if not _written_before_start(p))
        if started:
            raise RunError(f"{where} is not empty: choose a new directory, or pass --resume to "
                           f"continue the run in it (nothing there is overwritten)")

    def remove_temporaries(self) -> None:
        """Temporary files of atomic writes that a killed process left (only while holding the lock)."""
        for path in self.root.rglob(".*.tmp"):
            if path.is_file():
                path.unlink()

    config = property(lambda self: self.root / "config.json")
    metrics = property(lambda self: self.root / "metrics.json")
    metrics_by_history = property(lambda self: self.root / "metrics_by_history.json")
    metrics_by_item_frequency = property(lambda self: self.root / "metrics_by_item_frequency.json")
    text_features = property(lambda self: self.root / "text_features.json")
    history = property(lambda self: self.root / "history.json")
    data_report = property(lambda self: self.root / DATA_REPORT)
    plots = property(lambda self: self.root / "plots")

    store_path = property(lambda self: self.root / "serving.db")  # every user's state (SQLite)

    def checkpoints(self, model: str) -> Path:
        return self.root / "checkpoints" / model

    def best_checkpoint(self, model: str) -> Path:
        return self.checkpoints(model) / BEST

    def last_checkpoint(self, model: str) -> Path:
        """Everything needed to resume training ``model``."""
        return self.checkpoints(model) / LAST

    # ------------------------------------------------------------------ a finished run
    @classmethod
    def open(cls, root: str | Path) -> "Run":
        """A run that has started (it has its config.json); anything else is refused in one line."""
        run = cls(root)
        if not run.config.is_file():
            raise RunError(f"{run.root} is not a run directory (no config.json)")
        return run

    @functools.cached_property
    def settings(self):
        """The run's :class:`ExperimentConfig` (its config.json)."""
        return ExperimentConfig.load(self.config)

    def trained_models(self) -> list[str]:
        """The run's models that have a best checkpoint, in the run's order."""
        return [m for m in self.settings.models if self.best_checkpoint(m).is_file()]

    def best_model(self) -> str:
        """The neural model whose best checkpoint has the highest validation NDCG@10, the rule of
        ``serve``, ``recommend`` and ``finetune`` alike (the test split only reports)."""
        trained = [m for m in self.trained_models() if m != "pop"]
        if not trained:
            raise RunError(f"{self.root} has no trained neural model (checkpoints/<model>/best.pt); "
                           f"the run did not finish: continue it with `train --resume --out {self.root}`")
        scores = {m: load_checkpoint(self.best_checkpoint(m)).get("valid", {}).get("ndcg@10") for m in trained}
        scored = [m for m in trained if isinstance(scores[m], (int, float)) and math.isfinite(scores[m])]
        if not scored:
            raise RunError(f"{self.root}: no checkpoint records a validation NDCG@10; name the model "
                           f"(--model, one of {', '.join(trained)})")
        return max(scored, key=lambda m: scores[m])

    def load_model(self, name: str):
        """``(model, checkpoint)``: the best weights of ``name``, built with the settings they were
        trained with (the checkpoint's own: editing config.json changes nothing here)."""
        path = self.best_checkpoint(name)
        if not path.is_file():
            trained = ", ".join(self.trained_models()) or "none"
            raise RunError(f"model {name!r} is not a model of the run {self.root} (no {path}); "
                           f"it has {trained}")
        saved = load_checkpoint(path)
        try:
            config = ModelConfig.from_saved(saved["model_config"])
            return model_from_state(name, saved["num_items"], config, saved["model_state"]).eval(), saved
        except (KeyError, RuntimeError) as err:  # a missing entry; a size mismatch from load_state_dict
            raise ValueError(f"{path} does not fit the settings it names (model settings such as hidden_size "
                             f"differ from those it was trained with, or it lacks {err})") from None

    def dataset(self):
        """The run's data, read, cleaned and split as training read it."""
        return load_dataset(self.settings.data, with_text=self.settings.uses_text)

    def item_labels(self) -> dict[str, tuple[str | None, list]]:
        """Title and categories per item id (as text) from the run's item file; empty without one."""
        return item_labels(self.settings.data)

    def write_json(self, path: Path, value) -> None:
        atomic_write_text(json.dumps(_finite(value), indent=2) + "\n", path)


def _written_before_start(path: Path) -> bool:
    """What a run writes before its config.json: the lock, the data report and temporary files."""
    return path.name in (LOCK, DATA_REPORT) or (path.name.startswith(".") and path.name.endswith(".tmp"))


def _finite(value):
    """NaN (a metric that does not apply, e.g. a forecast without categories) becomes JSON null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
