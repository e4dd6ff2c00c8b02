"""Item categories: per-item lists of names, and the row-normalised multi-hot matrix models use."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd


def lists_from_pairs(items, categories, all_items=None) -> pd.DataFrame:
    """``item_id, categories`` (list[str]) from long-form (item, category) pairs.

    Items keep the order they first appear in (``all_items`` if given, so items without any
    category are listed too, with an empty list); missing or blank categories are skipped and a
    category repeated for one item is kept once.
    """
    pairs = pd.DataFrame({"item_id": np.asarray(items, dtype=object),
                          "category": np.asarray(categories, dtype=object)})
    pairs = pairs[pairs["item_id"].notna()]
    order = pd.unique(pairs["item_id"] if all_items is None else pd.Series(all_items).dropna())
    named = pairs[pairs["category"].notna()].astype({"category": str})
    named = named[named["category"].str.strip() != ""].drop_duplicates()
    lists = named.groupby("item_id", sort=False)["category"].agg(list).reindex(order)
    return pd.DataFrame({
        "item_id": order,
        "categories": [c if isinstance(c, list) else [] for c in lists.to_numpy()],
    })


def lists_from_strings(items: pd.Series, values: pd.Series, sep: str | None) -> pd.DataFrame:
    """Category lists from ``"Action|Comedy"``-style strings split on ``sep`` (None: one per value).

    Values that are already lists (a Parquet list column) are taken as they are.
    """
    present = values.dropna()
    if len(present) and isinstance(present.iloc[0], (list, tuple, np.ndarray)):
        split = values
    elif sep is None:
        split = values.astype(object)
    else:
        split = values.astype(object).where(values.notna(), "").astype(str).str.split(sep)
    long = pd.DataFrame({"item_id": items.to_numpy(), "category": split.to_numpy()}).explode("category")
    cats = long["category"]
    cats = cats.where(cats.isna(), cats.astype(str).str.strip())
    return lists_from_pairs(long["item_id"], cats, all_items=items)


def lists_from_flags(items: pd.Series, flags: np.ndarray, names: Sequence[str]) -> pd.DataFrame:
    """Category lists from a 0/1 matrix of genre flags (one column per name), as in ``u.item``."""
    rows, cols = np.nonzero(np.asarray(flags) != 0)
    item_values = items.to_numpy()
    return lists_from_pairs(item_values[rows], np.asarray(names, dtype=object)[cols], all_items=item_values)


def category_matrix(item_categories: pd.DataFrame, item_ids: np.ndarray,
                    names: Sequence[str] | None = None) -> tuple[np.ndarray, list[str]]:
    """Row-normalised multi-hot matrix (len(item_ids), C) float32 and the category names.

    Row i belongs to ``item_ids[i]``; row 0 (padding) and items missing from ``item_categories``
    are rows of zeros. ``names`` fixes the column order; by default it is the sorted set of all
    categories in the table, so the columns do not depend on which items survived cleaning.
    """
    long = item_categories[["item_id", "categories"]].explode("categories").dropna()
    long_items = long["item_id"].to_numpy()
    long_cats = long["categories"].astype(str).to_numpy()
    names = sorted(set(long_cats)) if names is None else [str(n) for n in names]
    col = pd.Index(names).get_indexer(long_cats)
    known = comparable_ids(np.asarray(item_ids[1:]), long_items)
    row = pd.Index(known).get_indexer(comparable_ids(long_items, known)) + 1
    keep = (col >= 0) & (row >= 1)  # categories outside ``names`` and items never seen are ignored
    matrix = np.zeros((len(item_ids), len(names)), np.float32)
    matrix[row[keep], col[keep]] = 1.0
    totals = matrix.sum(axis=1, keepdims=True)
    np.divide(matrix, totals, out=matrix, where=totals > 0)
    return matrix, names


def comparable_ids(values: np.ndarray, other: np.ndarray) -> np.ndarray:
    """``values`` as keys that can match ``other``: integers if both sides are, else strings."""
    values, other = np.asarray(values), np.asarray(other)
    if values.dtype.kind in "iu" and other.dtype.kind in "iu":
        return values
    return pd.Series(values, dtype=object).astype(str).to_numpy(dtype=object)
