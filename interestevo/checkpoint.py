"""Checkpoints written atomically: a crash during a save never destroys the previous one.

The payload goes to a temporary file in the destination's directory (same filesystem, so the
rename is atomic), is flushed and fsynced, then renamed over the destination; the directory is
fsynced so the rename itself survives a power cut.

:func:`save_checkpoint` also stores the SHA-256 of the payload in the same file (a header line
before it), and :func:`load_checkpoint` verifies it: a damaged file is refused, never used.
"""
from __future__ import annotations

import hashlib
import io
import logging
import os
import pickle
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger("interestevo.checkpoint")

# File layout of save_checkpoint: MAGIC, the payload's SHA-256 in hex and a newline, the payload.
MAGIC = b"interestevo checkpoint v1\n"
_DIGEST_LINE = 64 + 1


class CheckpointError(ValueError):
    """A file that is not a whole checkpoint written by this program (damaged, truncated, foreign)."""


def atomic_save(obj, path: str | os.PathLike) -> Path:
    """``torch.save(obj, path)`` that leaves either the old file or the complete new one."""
    return _atomic_write(path, "wb", lambda handle: torch.save(obj, handle))


def save_checkpoint(obj, path: str | os.PathLike) -> Path:
    """Atomically write ``obj`` (plain containers, numbers, strings, tensors) with its checksum."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    payload = buffer.getbuffer()
    digest = hashlib.sha256(payload).hexdigest().encode()

    def write(handle):
        handle.write(MAGIC)
        handle.write(digest + b"\n")
        handle.write(payload)

    return _atomic_write(path, "wb", write)


def atomic_write_text(text: str, path: str | os.PathLike) -> Path:
    """Write a small text file (JSON results, configuration) with the same guarantee."""
    return _atomic_write(path, "w", lambda handle: handle.write(text))


def atomic_write(path: str | os.PathLike, mode: str, write) -> Path:
    """``write(handle)`` into a temporary file that is then renamed to ``path``: the file appears
    whole or not at all (for writers that stream, e.g. CSV or Parquet in batches)."""
    return _atomic_write(path, mode, write)


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
    """Load a checkpoint written by :func:`save_checkpoint`, verifying its checksum.

    Only plain containers, numbers, strings and tensors are stored, so the safe ``weights_only``
    loader suffices. Files of older versions (a bare ``torch.save``, no checksum) still load, with a
    warning. Anything else raises :class:`CheckpointError` in one line.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    data = path.read_bytes()
    if data.startswith(MAGIC):
        header_end = len(MAGIC) + _DIGEST_LINE
        expected, payload = data[len(MAGIC):header_end - 1], memoryview(data)[header_end:]
        if hashlib.sha256(payload).hexdigest().encode() != expected:
            raise CheckpointError(f"{path}: the checksum does not match: the file is damaged or truncated "
                                  f"and is not used (restore it from a copy, or train again)")
        return _safe_load(io.BytesIO(payload), path, map_location)
    if data.startswith(b"PK"):  # a zip: torch.save of a version before checksums
        log.warning("%s has no checksum (written by an older interestevo); it is loaded unverified", path)
        return _safe_load(io.BytesIO(data), path, map_location)
    raise CheckpointError(f"{path} is not a checkpoint this program wrote (empty, truncated or another kind "
                          f"of file)")


def _safe_load(source, path: Path, map_location):
    try:
        return torch.load(source, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        # torch's message suggests weights_only=False, i.e. running the file's code: never.
        raise CheckpointError(f"{path} is not a checkpoint this program wrote: it holds objects other than "
                              f"tensors and plain values, so it is refused") from None
    except (RuntimeError, EOFError, KeyError, ValueError, zipfile.BadZipFile, OSError) as err:
        raise CheckpointError(f"{path} is not a checkpoint this program wrote, or it is truncated "
                              f"({type(err).__name__})") from None


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
