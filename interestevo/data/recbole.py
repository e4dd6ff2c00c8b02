"""RecBole atomic files (``.inter``, ``.item``): tab-separated, a ``name:type`` header.

Types are ``token`` (an id, kept as a string), ``token_seq`` (space-separated tokens), ``float``
and ``float_seq``. Columns come back under their bare names (``user_id:token`` -> ``user_id``).
"""
from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

from .errors import DataFormatError
from .formats import read_table

TYPES = ("token", "token_seq", "float", "float_seq")


def read_atomic(path: Path) -> tuple[pd.DataFrame, dict[str, str]]:
    """The table with bare column names, and each column's RecBole type."""
    with open(path, encoding="utf-8", errors="replace") as handle:
        header = handle.readline().rstrip("\r\n")
    if not header:
        raise DataFormatError(f"{path}: file is empty; expected a RecBole header like 'user_id:token'")
    types = {}
    for field in header.split("\t"):
        name, _, kind = field.rpartition(":")
        if not name or kind not in TYPES:
            raise DataFormatError(
                f"{path}: header field {field!r} is not 'name:type' with type one of {', '.join(TYPES)}")
        types[name] = kind
    # Tokens are strings in RecBole; reading them as such keeps ids like "007" intact.
    dtypes = {name: str for name, kind in types.items() if kind.startswith("token")}
    frame = read_table(path, "tsv", header=None, skiprows=1, names=list(types), dtype=dtypes,
                       quoting=csv.QUOTE_NONE)
    return frame, types
