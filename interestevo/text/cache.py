"""Text vectors cached on disk, keyed by the encoder's fingerprint and each text's hash.

One file per encoder fingerprint holds (text hash, vector) rows. A changed text has a new hash
and a different model (or model version) a different file, so a stale vector is never reused;
new rows are merged in and the file is replaced atomically.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..checkpoint import atomic_save
from .encoder import TextEncoder

log = logging.getLogger("interestevo.text")


@dataclass
class CachedEncoding:
    vectors: np.ndarray  # (len(texts), dimension) float32
    encoded: int  # distinct texts encoded now
    reused: int  # distinct texts read from the cache
    cache_file: Path


def default_cache_dir() -> Path:
    """``$INTERESTEVO_CACHE/text``, else ``$XDG_CACHE_HOME/interestevo/text`` (``~/.cache``)."""
    if os.environ.get("INTERESTEVO_CACHE"):
        return Path(os.environ["INTERESTEVO_CACHE"]) / "text"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "interestevo" / "text"


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def cache_file(encoder: TextEncoder, cache_dir: str | os.PathLike) -> Path:
    slug = re.sub(r"[^a-z0-9._-]+", "_", (Path(encoder.name).name or encoder.name).lower())[:64]
    return Path(cache_dir) / f"{slug}-{encoder.fingerprint[:16]}.pt"


def encode_with_cache(texts: Sequence[str], encoder: TextEncoder, cache_dir: str | os.PathLike | None = None,
                      batch_size: int = 256, progress: bool = True) -> CachedEncoding:
    """Vectors of ``texts``: cached ones are read, the rest encoded (each distinct text once)."""
    path = cache_file(encoder, cache_dir if cache_dir is not None else default_cache_dir())
    keys = [text_key(t) for t in texts]
    cached = _read(path, encoder)
    distinct = {key: text for key, text in zip(keys, texts)}
    missing = [key for key in distinct if key not in cached]
    if missing:
        fresh = encoder.encode([distinct[k] for k in missing], batch_size=batch_size, progress=progress)
        cached.update(zip(missing, fresh))
        try:
            _write(path, encoder, cached)
        except OSError as err:  # the vectors are still right; only the next run pays again
            log.warning("could not write the text cache %s (%s); the vectors were not cached", path, err)
    vectors = np.stack([cached[k] for k in keys]) if keys else np.zeros((0, encoder.dimension), np.float32)
    return CachedEncoding(vectors.astype(np.float32, copy=False), len(missing), len(distinct) - len(missing), path)


def _read(path: Path, encoder: TextEncoder) -> dict[str, np.ndarray]:
    if not path.is_file():
        return {}
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        fits = (saved.get("fingerprint") == encoder.fingerprint
                and tuple(saved["vectors"].shape) == (len(saved["keys"]), encoder.dimension))
    except Exception as err:  # a damaged file is rebuilt, not trusted
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        log.warning("text cache %s is unreadable (%s); re-encoding", path, reason)
        return {}
    if not fits:
        log.warning("text cache %s belongs to another model or version; re-encoding", path)
        return {}
    return dict(zip(saved["keys"], saved["vectors"].numpy()))


def _write(path: Path, encoder: TextEncoder, vectors: dict[str, np.ndarray]) -> None:
    keys = list(vectors)
    atomic_save({"model": encoder.name, "fingerprint": encoder.fingerprint, "keys": keys,
                 "vectors": torch.from_numpy(np.stack([vectors[k] for k in keys]).astype(np.float32))}, path)
