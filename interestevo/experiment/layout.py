"""Where things live in a run directory."""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

from filelock import BaseFileLock, FileLock, Timeout

from ..checkpoint import atomic_write_text

LOCK = ".lock"  # held (flock) by the run that writes the directory, for as long as it runs
DATA_REPORT = "data_report.json"


class RunDirectoryError(ValueError):
    """A run directory that cannot be claimed: in use, not empty, not writable, not a directory."""


class RunDirectory:
    """``config.json``; ``data_report.json`` (what cleaning dropped, and why); ``metrics.json`` (test
    metrics per model); ``metrics_by_history.json`` and ``metrics_by_item_frequency.json`` (cold-start
    views); ``text_features.json`` (with text models); ``history.json`` (per-epoch records);
    ``checkpoints/<model>/{best,last}.pt``; ``trackers/<model>.pt`` (serving state after every
    event); ``plots/*.png``; ``.lock`` (held while a run writes here)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    @classmethod
    def new(cls, base: str | Path = "runs") -> "RunDirectory":
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
            raise RunDirectoryError(f"{where} is a file, not a directory") from None
        except OSError as err:
            raise RunDirectoryError(f"{where} cannot be created: {err.strerror or err}") from None
        if not self.root.is_dir():
            raise RunDirectoryError(f"{where} is a file, not a directory")
        lock = FileLock(self.root / LOCK, timeout=0)
        try:
            lock.acquire()
        except Timeout:
            raise RunDirectoryError(f"{where} is in use by another interestevo run") from None
        except OSError as err:
            raise RunDirectoryError(f"{where} is not writable: {err.strerror or err}") from None
        try:
            self._check_claimable(resume, where)
            self.remove_temporaries()
        except BaseException:
            lock.release()
            raise
        return lock

    def release(self, lock: BaseFileLock, failed: bool) -> None:
        """Let go of the directory; one this run created and left holding nothing but the lock (it
        failed before writing anything) is removed, so a refused run leaves no trace."""
        lock.release()
        if failed and getattr(self, "_created", False):
            if [p.name for p in self.root.iterdir()] == [LOCK]:
                (self.root / LOCK).unlink()
                self.root.rmdir()

    def _check_claimable(self, resume: bool, where: str) -> None:
        if resume:
            if not self.config.is_file():
                raise RunDirectoryError(f"--resume: {self.root} has no config.json to continue from")
            return
        started = sorted(p.name for p in self.root.iterdir() if not _written_before_start(p))
        if started:
            raise RunDirectoryError(f"{where} is not empty: choose a new directory, or pass --resume to "
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

    def checkpoints(self, model: str) -> Path:
        return self.root / "checkpoints" / model

    def tracker(self, model: str) -> Path:
        return self.root / "trackers" / f"{model}.pt"

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
