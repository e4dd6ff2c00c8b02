"""Timestamps as int64 seconds, and time gaps in a chosen unit.

Timestamps never pass through float32: at today's epoch values (~1.7e9 s) float32 steps are
128 s apart, which merges and reorders events.
"""
from __future__ import annotations

import math
from datetime import datetime, timezone

import numpy as np
import pandas as pd

from .errors import DataFormatError

SECONDS_PER = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}
_INT64_SAFE = 2.0 ** 62  # floats beyond this cannot be seconds we can store


def parse_seconds(values: pd.Series, what: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parse int/float seconds or datetime strings into int64 seconds (floored).

    Returns ``(seconds, missing, unparsable)``: boolean masks mark rows whose value is absent or
    could not be read; their ``seconds`` are 0. Naive datetimes count as UTC. A column in which no
    present value parses is an error (``what`` names it in the message).
    """
    missing = values.isna().to_numpy()
    if pd.api.types.is_datetime64_any_dtype(values):
        return _datetime_seconds(values), missing, np.zeros(len(values), bool)
    if pd.api.types.is_bool_dtype(values):
        raise DataFormatError(f"{what} holds booleans; expected int/float seconds or datetime strings")
    if pd.api.types.is_numeric_dtype(values):
        if pd.api.types.is_integer_dtype(values) and not missing.any():
            return values.to_numpy(dtype=np.int64), missing, np.zeros(len(values), bool)
        # float64 holds whole seconds exactly up to 2**53, far beyond any real timestamp
        return _float_seconds(values.to_numpy(dtype=np.float64, na_value=np.nan), missing)
    return _text_seconds(values, missing, what)


# Epoch values this large are not seconds (1e11 s is the year 5138): logs such as RetailRocket's
# count milliseconds. Converting beats silently stretching every gap a thousandfold.
EPOCH_UNITS = (("microseconds", 1e14, 1_000_000), ("milliseconds", 1e11, 1_000), ("seconds", 0.0, 1))


def epoch_unit(values: np.ndarray) -> np.ndarray:
    """Per value, the epoch unit its magnitude says (an index into EPOCH_UNITS)."""
    magnitude = np.abs(np.asarray(values, dtype=np.float64))
    unit = np.full(magnitude.shape, len(EPOCH_UNITS) - 1, np.int64)
    for index in reversed(range(len(EPOCH_UNITS) - 1)):
        unit[magnitude >= EPOCH_UNITS[index][1]] = index
    return unit


def out_of_range(values: pd.Series) -> np.ndarray:
    """Present values that are numbers but no storable time: infinite, or beyond int64 seconds."""
    if pd.api.types.is_datetime64_any_dtype(values) or pd.api.types.is_bool_dtype(values):
        return np.zeros(len(values), bool)
    numbers = pd.to_numeric(pd.Series(values, dtype=object) if not pd.api.types.is_numeric_dtype(values)
                            else values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    with np.errstate(invalid="ignore"):
        return np.isinf(numbers) | (np.abs(numbers) >= _INT64_SAFE)


def _text_seconds(values: pd.Series, missing: np.ndarray, what: str):
    """Strings: numbers of seconds or ISO datetimes, row by row (vectorised)."""
    text = values.where(~missing, None).astype("str")  # pandas' string dtype: vectorised .str
    missing = missing | text.str.strip().eq("").fillna(False).to_numpy(dtype=bool)
    present = np.flatnonzero(~missing)
    # Try the parser that fits a sample first; the other only sees what the first could not read.
    looks_numeric = pd.to_numeric(text.iloc[present[:200]], errors="coerce").notna().mean() >= 0.5
    parsers = (_number_seconds, _date_seconds) if looks_numeric else (_date_seconds, _number_seconds)
    seconds = np.zeros(len(text), np.int64)
    unparsable = ~missing
    for parse in parsers:
        rows = np.flatnonzero(unparsable)
        if len(rows) == 0:
            break
        parsed, ok = parse(text.iloc[rows])
        seconds[rows[ok]] = parsed[ok]
        unparsable[rows[ok]] = False
    if len(present) and unparsable.sum() == len(present):
        example = text.iloc[np.flatnonzero(unparsable)[0]]
        raise DataFormatError(
            f"{what} holds neither numbers nor datetimes (e.g. {example!r}); expected int/float "
            f"seconds or ISO datetime strings")
    return seconds, missing, unparsable


def _number_seconds(text: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    numbers = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    seconds, _, bad = _float_seconds(numbers, np.isnan(numbers))
    return seconds, ~bad & ~np.isnan(numbers)


def _date_seconds(text: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    dates = pd.to_datetime(text, format="ISO8601", errors="coerce", utc=True)
    return _datetime_seconds(dates), dates.notna().to_numpy()


def _float_seconds(numbers: np.ndarray, missing: np.ndarray):
    finite = np.isfinite(numbers) & (np.abs(np.nan_to_num(numbers)) < _INT64_SAFE)
    unparsable = ~finite & ~missing
    seconds = np.zeros(len(numbers), np.int64)
    seconds[finite] = np.floor(numbers[finite]).astype(np.int64)
    return seconds, missing, unparsable


def _datetime_seconds(values: pd.Series) -> np.ndarray:
    """Whole seconds since the epoch (UTC) of datetime values, NaT as 0."""
    values = pd.Series(values)
    if values.dt.tz is not None:
        values = values.dt.tz_convert("UTC").dt.tz_localize(None)
    nat = values.isna().to_numpy()
    seconds = values.to_numpy().astype("datetime64[s]").astype(np.int64)
    seconds[nat] = 0
    return seconds


def datetime_seconds(value) -> int:
    """Whole seconds since the epoch of one datetime (ISO string, Timestamp, datetime64); naive
    datetimes count as UTC, like the columns parse_seconds reads. Raises ValueError if unreadable."""
    stamp = pd.Timestamp(value)
    if stamp is pd.NaT:
        raise ValueError(f"{value!r} is not a datetime")
    stamp = stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo else stamp
    return (stamp - pd.Timestamp(0)) // pd.Timedelta(seconds=1)  # exact, unlike .timestamp()


def parse_time(text: str) -> tuple[int, str]:
    """One time as a log's timestamp column would read it: unix seconds, milliseconds or
    microseconds (told apart by magnitude, like the columns) or an ISO date (naive = UTC).
    Returns ``(seconds, how it was read)``; ValueError says why a value is no time.
    """
    text = str(text).strip()
    try:
        number = int(text)
    except ValueError:
        try:
            number = float(text)
        except ValueError:
            number = None
    if number is None:
        try:
            return datetime_seconds(text), "an ISO date"
        except pd.errors.OutOfBoundsDatetime:
            raise ValueError(f"{text!r} is a date outside the years {pd.Timestamp.min.year + 1}-"
                             f"{pd.Timestamp.max.year - 1} that can be stored") from None
        except (ValueError, OverflowError):
            raise ValueError(f"{text!r} is neither unix time (seconds, ms or µs) nor an ISO date") from None
    if not math.isfinite(number) or abs(number) >= _INT64_SAFE:
        raise ValueError(f"{text!r} is no time that can be stored (expected finite unix time below 2**62)")
    unit, _, per_second = EPOCH_UNITS[int(epoch_unit(np.array([number]))[0])]
    seconds = number // per_second if isinstance(number, int) else math.floor(number / per_second)
    return int(seconds), f"unix {unit}"


def iso_utc(seconds: int) -> str:
    """``2023-11-14T22:13:20Z``; out-of-calendar values as ``<seconds> s``."""
    try:
        return datetime.fromtimestamp(seconds, timezone.utc).isoformat().replace("+00:00", "Z")
    except (OverflowError, OSError, ValueError):
        return f"{seconds} s since the epoch"


def gaps(timestamp: np.ndarray, first_of_user: np.ndarray, unit: str) -> np.ndarray:
    """float32 time since the same user's previous event in ``unit``; 0 at each first event.

    The difference is taken in int64 and only then scaled, so large epochs lose no precision.
    """
    scale = unit_seconds(unit)
    diff = np.zeros(len(timestamp), np.int64)
    diff[1:] = np.diff(timestamp)
    diff[first_of_user] = 0
    return (diff / scale).astype(np.float32)


def unit_seconds(unit: str) -> int:
    if unit not in SECONDS_PER:
        raise DataFormatError(f"dt_unit={unit!r} is not one of {', '.join(SECONDS_PER)}")
    return SECONDS_PER[unit]
