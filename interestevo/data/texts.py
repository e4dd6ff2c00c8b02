"""Item texts for language-model features: a chosen column, or the title, categories and
description joined into one sentence-like string."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

TITLE_ALIASES = ("title", "name", "movie_title", "item_name", "product_name", "product_title")
DESCRIPTION_ALIASES = ("description", "desc", "overview", "summary", "plot", "text")


def compose_texts(titles: Sequence | None, categories: Sequence[list] | None,
                  descriptions: Sequence | None, count: int) -> list[str | None]:
    """``"Title. Genre A, Genre B. Description"`` per item, skipping missing parts; None when an
    item has none of them (it then gets the model's learned fallback vector)."""
    parts = [clean_texts(titles, count), _joined(categories, count), clean_texts(descriptions, count)]
    texts = []
    for pieces in zip(*parts):
        present = [p for p in pieces if p]
        texts.append(". ".join(present) if present else None)
    return texts


def clean_texts(values: Sequence | None, count: int) -> list[str | None]:
    """A text column as strings with whitespace collapsed; missing and blank values (or no
    column: ``values`` None) become None."""
    if values is None:
        return [None] * count
    out = []
    for value in values:
        text = None if _missing(value) else " ".join(str(value).split())
        out.append(text or None)
    return out


def _joined(lists, count: int) -> list[str | None]:
    if lists is None:
        return [None] * count
    return [", ".join(str(c) for c in cats) if isinstance(cats, (list, tuple, np.ndarray)) and len(cats) else None
            for cats in lists]


def _missing(value) -> bool:
    return value is None or (not isinstance(value, (list, tuple, np.ndarray)) and bool(pd.isna(value)))
