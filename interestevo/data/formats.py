"""Which format a file is in, and reading plain tables (CSV, TSV, Parquet) with clear errors.

Format-specific layouts live in ``movielens.py`` and ``recbole.py``; ``readers.py`` dispatches.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd

from .errors import DataFormatError

FORMATS = ("csv", "tsv", "parquet", "movielens", "recbole")

# Names MovieLens ships under; each has its own layout (see movielens.py).
MOVIELENS_FILES = ("u.data", "ratings.dat", "ratings.csv", "u.item", "movies.dat", "movies.csv")

_COMPRESSIONS = (".gz", ".bz2", ".zip", ".xz", ".zst")
_BY_SUFFIX = {
    ".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".parquet": "parquet", ".pq": "parquet",
    ".inter": "recbole", ".item": "recbole", ".user": "recbole", ".dat": "movielens",
}


def existing_file(path) -> Path:
    """``path`` as a Path, or a DataFormatError saying why it cannot be read."""
    path = Path(path)
    if not path.exists():
        raise DataFormatError(f"{path}: file not found")
    if not path.is_file():
        raise DataFormatError(f"{path}: not a file (a directory?); pass the file itself")
    return path


def plain_name(path: Path) -> str:
    """Lower-case file name without a compression suffix: ``ratings.csv.gz`` -> ``ratings.csv``."""
    name = path.name.lower()
    for suffix in _COMPRESSIONS:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def detect_format(path: Path, format: str | None, sep: str | None = None) -> str:
    """The explicit ``format`` if given (checked), else one guessed from the file name."""
    if format is not None:
        fmt = str(format).lower()
        if fmt not in FORMATS:
            raise DataFormatError(f"format={format!r} is not one of {', '.join(FORMATS)}")
        return fmt
    name = plain_name(path)
    if name in MOVIELENS_FILES:
        return "movielens"
    fmt = _BY_SUFFIX.get(Path(name).suffix)
    if fmt is not None:
        return fmt
    if sep is not None:  # a custom separator only makes sense for a delimited text file
        return "csv"
    raise DataFormatError(
        f"{path}: cannot tell the format from the file name; pass format= one of {', '.join(FORMATS)}")


def read_table(path: Path, fmt: str, sep: str | None = None, **read_csv_args) -> pd.DataFrame:
    """Read a CSV/TSV/Parquet file, turning every parser failure into a DataFormatError.

    With ``skip_blank_lines=False`` (interaction logs) blank lines stay as empty rows, so that
    ``attrs["first_line"]`` (the file line of row 0) turns row numbers into line numbers.
    """
    try:
        if fmt == "parquet":
            return pd.read_parquet(path)
        if sep is None:
            sep = "\t" if fmt == "tsv" else ","
        try:
            frame = pd.read_csv(path, sep=sep, **read_csv_args)
        except UnicodeDecodeError:  # older MovieLens and many exports are latin-1, which always decodes
            frame = pd.read_csv(path, sep=sep, **{**read_csv_args, "encoding": "latin-1"})
        if read_csv_args.get("skip_blank_lines") is False and "skiprows" not in read_csv_args:
            frame.attrs["first_line"] = 1 if read_csv_args.get("header", "infer") is None else 2
        return frame
    except pd.errors.EmptyDataError:
        raise DataFormatError(f"{path}: file is empty") from None
    except (ValueError, OSError, UnicodeDecodeError) as err:  # ParserError and ArrowInvalid are ValueErrors
        raise DataFormatError(f"{path}: cannot read as {fmt}: {first_line(err)}") from err


def first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def find_column(columns: Sequence[str], wanted: str | None, default: str | None,
                aliases: Sequence[str], role: str, arg: str, path, required: bool = True) -> str | None:
    """Resolve which column holds ``role`` (e.g. "user"); ``arg`` is the argument that names it.

    An explicit name other than the default must exist. The default name (or None) falls back to
    common aliases, compared case-insensitively, because real files say ``userId``, ``UserID``...
    """
    columns = [str(c) for c in columns]
    if wanted is not None and wanted != default:
        if wanted in columns:
            return wanted
        raise DataFormatError(
            f"{path}: no {role} column {wanted!r}; columns are: {', '.join(columns)}")
    by_lower = {c.lower(): c for c in reversed(columns)}  # first occurrence wins
    for candidate in ([default] if default else []) + list(aliases):
        if candidate in columns:
            return candidate
        if candidate.lower() in by_lower:
            return by_lower[candidate.lower()]
    if not required:
        return None
    tried = ", ".join(([default] if default else []) + list(aliases))
    raise DataFormatError(
        f"{path}: no {role} column (tried {tried}); columns are: {', '.join(columns)}; "
        f"name it with {arg}= (--{arg.replace('_', '-')} on the command line)")
