"""Per-item text vectors for a catalogue, as models consume them."""
from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass

import numpy as np

from .cache import encode_with_cache
from .encoder import TextEncoder, load_text_encoder

log = logging.getLogger("interestevo.text")


@dataclass
class TextFeatures:
    """Text vectors aligned with item indices; row 0 (padding) and items without text are zero
    and ``has_text`` is False there (models give them a learned fallback vector)."""

    vectors: np.ndarray  # float32 (num_items + 1, dimension)
    has_text: np.ndarray  # bool (num_items + 1,)
    model: str
    fingerprint: str = ""  # of the encoder and every item's text: equal fingerprints, equal vectors
    encoded: int = 0  # distinct texts encoded now
    reused: int = 0  # distinct texts read from the cache

    @property
    def num_items(self) -> int:
        return len(self.has_text) - 1

    @property
    def without_text(self) -> int:
        return int(self.num_items - self.has_text[1:].sum())

    def summary(self) -> dict:
        return {"model": self.model, "items": self.num_items, "with_text": self.num_items - self.without_text,
                "without_text": self.without_text, "encoded": self.encoded, "from_cache": self.reused,
                "dimension": int(self.vectors.shape[1])}

    def __str__(self) -> str:
        return (f"text features ({self.model}): {self.num_items - self.without_text:,} of {self.num_items:,} "
                f"items have text, {self.without_text:,} use the learned fallback vector; "
                f"{self.encoded:,} texts encoded, {self.reused:,} from the cache")


def item_text_features(item_text: np.ndarray, encoder: TextEncoder | str | None = None,
                       cache_dir: str | os.PathLike | None = None, progress: bool = True,
                       device: str | None = None) -> TextFeatures:
    """Encode ``item_text`` (object (num_items + 1,), str or None per item; ``Interactions.item_text``)
    with ``encoder`` (a loaded encoder, or a model name/path loaded on ``device``, by default the
    GPU when there is one; default model all-MiniLM-L6-v2)."""
    if not isinstance(encoder, TextEncoder):
        encoder = load_text_encoder(encoder, device=device)
    texts = np.asarray(item_text, dtype=object)
    has_text = np.array([isinstance(t, str) and bool(t.strip()) for t in texts])
    has_text[0] = False  # padding
    rows = np.flatnonzero(has_text)
    result = encode_with_cache([texts[i] for i in rows], encoder, cache_dir, progress=progress)
    vectors = np.zeros((len(texts), encoder.dimension), np.float32)
    vectors[rows] = result.vectors
    digest = hashlib.sha256(encoder.fingerprint.encode())
    for text in texts:
        digest.update(b"\x00" + (text.encode("utf-8") if isinstance(text, str) else b"\x01"))
    features = TextFeatures(vectors, has_text, encoder.name, digest.hexdigest(), result.encoded, result.reused)
    log.info("%s", features)
    return features
