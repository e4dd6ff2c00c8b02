"""The one clock: every time a user gives (log columns, ``--at``, HTTP bodies and queries, the
Python API) becomes int64 unix seconds here, read the same way on each, and every gap between
two times is computed here.

Timestamps never pass through float32: at today's epoch values (~1.7e9 s) float32 steps are
128 s apart, which merges and reorders events.
"""
from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

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


#: the unix seconds a time may be: years 1 to 9999 (UTC), so int64 arithmetic on them (gaps,
#: sums) never wraps and every time has an ISO 8601 form
MIN_SECONDS, MAX_SECONDS = -62_135_596_800, 253_402_300_799

#: what a request or event time may be, as every refusal says
TIME_FORMS = ("finite unix seconds, milliseconds or microseconds (told apart by magnitude) or an ISO 8601 "
              "date, between the years 1 and 9999")

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def parse_time(value, what: str = "time") -> int:
    """Unix seconds of one request or event time, read the same on every surface (``--at``, HTTP
    bodies and queries, the Python API):

    >>> parse_time(1_700_000_000), parse_time("1700000000000"), parse_time("2023-11-14T22:13:20Z")
    (1700000000, 1700000000, 1700000000)

    A number (or its text) is unix seconds, milliseconds or microseconds, told apart by magnitude
    as in log columns, fractions floored; other text is an ISO 8601 date; a ``datetime`` is taken
    as it is; naive times are UTC. Anything else raises DataFormatError naming ``what``.
    """
    return read_time(value, what)[0]


def read_time(value, what: str = "time") -> tuple[int, str]:
    """:func:`parse_time`, and how the value was read ("unix milliseconds", "an ISO date"), to
    echo a time as it was understood."""
    if type(value) is int and MIN_SECONDS <= value < EPOCH_UNITS[1][1]:  # the common case, cheaply
        return value, "unix seconds"
    if isinstance(value, datetime):
        return _utc_seconds(value, what, value), "a datetime"
    if isinstance(value, str):
        number = _number(value)
        return (_iso_seconds(value, what), "an ISO date") if number is None else _epoch_seconds(number, what, value)
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return _epoch_seconds(value.item() if isinstance(value, np.generic) else value, what, value)
    raise _refused(what, value)  # booleans, None, lists...


def _epoch_seconds(number: int | float, what: str, given) -> tuple[int, str]:
    """Unix seconds, milliseconds or microseconds by magnitude, as log columns are read."""
    if isinstance(number, float) and not math.isfinite(number):
        raise _refused(what, given, readable=True)
    unit, _, per_second = next(u for u in EPOCH_UNITS if abs(number) >= u[1])
    seconds = number // per_second if isinstance(number, int) else math.floor(number / per_second)
    if not MIN_SECONDS <= seconds <= MAX_SECONDS:
        raise _refused(what, given, readable=True)
    return int(seconds), f"unix {unit}"


def parse_times(values, what: str = "times", n: int | None = None) -> np.ndarray:
    """(n,) int64 unix seconds: :func:`parse_time` of each value (vectorised for numeric arrays),
    or of one value repeated ``n`` times. A refusal names the position: ``times[3]``."""
    array = _as_array(values)
    if array.ndim == 0:
        one = parse_time(array.item() if isinstance(values, np.ndarray) else values, what)
        return np.full(1 if n is None else n, one, np.int64)
    array = array.reshape(-1)
    if array.dtype.kind in "iuf":
        return _numeric_seconds(array, what)
    if array.dtype.kind == "M":  # numpy datetimes: as datetime objects, never as raw ns counts
        array = array.astype("datetime64[us]").astype(object)
    return np.array([parse_time(value, f"{what}[{i}]") for i, value in enumerate(array.tolist())], np.int64)


def _as_array(values) -> np.ndarray:
    """numpy reads [10, True] as [10, 1]: a list's booleans stay booleans, to be refused."""
    if isinstance(values, (list, tuple)) and any(isinstance(v, (bool, np.bool_)) for v in values):
        return np.asarray(values, dtype=object)
    return np.asarray(values)


def _numeric_seconds(numbers: np.ndarray, what: str) -> np.ndarray:
    """parse_time of every number, in a few array operations."""
    per_second = np.array([unit[2] for unit in EPOCH_UNITS], np.int64)[epoch_unit(numbers)]
    if numbers.dtype.kind == "f":
        finite = np.isfinite(numbers)
        with np.errstate(invalid="ignore"):
            seconds = np.floor(numbers / per_second)
    else:  # exact (float64 rounds microseconds beyond 2**53); the clip keeps uint64 from wrapping
        finite = np.ones(len(numbers), bool)
        seconds = np.minimum(numbers, (MAX_SECONDS + 1) * 1_000_000).astype(np.int64) // per_second
    bad = ~finite | (seconds < MIN_SECONDS) | (seconds > MAX_SECONDS)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise _refused(f"{what}[{first}]", numbers[first].item(), readable=True)
    return seconds.astype(np.int64)


def _number(text: str) -> int | float | None:
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return None


def _iso_seconds(text: str, what: str) -> int:
    """Only ISO 8601: a lenient parser reads "01/02/2024" or "1 2 3" as some date, and a "+02:00"
    sent unencoded in a URL arrives as " 02:00", which must be refused, not read as another time."""
    stripped = text.strip()
    try:  # Python 3.10's fromisoformat does not know "Z"
        when = datetime.fromisoformat(stripped[:-1] + "+00:00" if stripped.endswith(("Z", "z")) else stripped)
    except ValueError:
        raise _refused(what, text) from None
    return _utc_seconds(when, what, text)


def _utc_seconds(when: datetime, what: str, given) -> int:
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    seconds = (when - _EPOCH) // timedelta(seconds=1)
    if not MIN_SECONDS <= seconds <= MAX_SECONDS:  # an offset can move year 1 or 9999 out of range
        raise _refused(what, given, readable=True)
    return seconds


def _refused(what: str, value, readable: bool = False) -> DataFormatError:
    return DataFormatError(f"{what} {_shown(value)} is no time{' that can be stored' if readable else ''}: "
                           f"expected {TIME_FORMS}")


def _shown(value, limit: int = 40) -> str:
    """A refused value as a message quotes it: enough to recognise, never the whole of a huge one."""
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]!r}... ({len(value)} characters)"
    text = repr(value.item() if isinstance(value, np.generic) else value)
    return text if len(text) <= limit else f"{text[:limit]}..."


def iso_utc(seconds: int) -> str:
    """``2023-11-14T22:13:20Z``; out-of-calendar values as ``<seconds> s``."""
    try:
        return datetime.fromtimestamp(seconds, timezone.utc).isoformat().replace("+00:00", "Z")
    except (OverflowError, OSError, ValueError):
        return f"{seconds} s since the epoch"


def elapsed(times, since, known, scale: int) -> np.ndarray:
    """float32 time from ``since`` to ``times`` in units of ``scale`` seconds, 0 where ``known``
    is False. The difference is taken in int64 and only then scaled, so large epochs lose no
    precision: the one gap computation of the data layer and the tracker."""
    diff = np.asarray(times, np.int64) - np.asarray(since, np.int64)
    diff[~np.asarray(known, bool)] = 0
    return (diff / scale).astype(np.float32)


def gaps(timestamp: np.ndarray, first_of_user: np.ndarray, unit: str) -> np.ndarray:
    """float32 time since the same user's previous event in ``unit``; 0 at each first event
    (``first_of_user``: a boolean mask)."""
    timestamp = np.asarray(timestamp, np.int64)
    out = np.zeros(len(timestamp), np.float32)
    out[1:] = elapsed(timestamp[1:], timestamp[:-1], ~np.asarray(first_of_user, bool)[1:], unit_seconds(unit))
    return out


def unit_seconds(unit: str) -> int:
    if unit not in SECONDS_PER:
        raise DataFormatError(f"dt_unit={unit!r} is not one of {', '.join(SECONDS_PER)}")
    return SECONDS_PER[unit]
