"""Checkpoints written atomically: a crash during a save never destroys the previous one.

The payload goes to a temporary file in the destination's directory (same filesystem, so the
rename is atomic), is flushed and fsynced, then renamed over the destination; the directory is
fsynced so the rename itself survives a power cut.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import torch


def atomic_save(obj, path: str | os.PathLike) -> Path:
    """``torch.save(obj, path)`` that leaves either the old file or the complete new one."""
    return _atomic_write(path, "wb", lambda handle: torch.save(obj, handle))


def atomic_write_text(text: str, path: str | os.PathLike) -> Path:
    """Write a small text file (JSON results, configuration) with the same guarantee."""
    return _atomic_write(path, "w", lambda handle: handle.write(text))


def _atomic_write(path: str | os.PathLike, mode: str, write) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_directory(path.parent)
    return path


def plain_ids(values) -> list:
    """Ids as Python ints or strings, which the safe (weights_only) loader accepts."""
    return [v.item() if isinstance(v, np.generic) else v for v in np.asarray(values).tolist()]


def load_checkpoint(path: str | os.PathLike, map_location="cpu"):
    """Load a checkpoint written by :func:`atomic_save`.

    Only plain containers, numbers, strings and tensors are stored, so the safe
    ``weights_only`` loader suffices.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    return torch.load(path, map_location=map_location, weights_only=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # e.g. platforms without directory file descriptors
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
