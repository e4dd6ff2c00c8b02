"""Cleaning a raw interaction frame: parse, drop bad rows, drop duplicates, k-core; and the report.

Everything is vectorised (pandas/numpy); nothing loops over rows in Python.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .errors import DataFormatError
from .timestamps import EPOCH_UNITS, epoch_unit, out_of_range, parse_seconds

REQUIRED = ("user_id", "item_id", "timestamp")


# Why rows are dropped, in the order a row is judged (it counts under the first reason it meets).
BLANK, NUL, MISSING, OUT_OF_RANGE = "blank line", "NUL byte", "missing value", "timestamp out of range"
BAD_TIME, BAD_RATING, DUPLICATE = "unparsable timestamp", "unparsable rating", "exact duplicate"
REASONS = (BLANK, NUL, MISSING, OUT_OF_RANGE, BAD_TIME, BAD_RATING, DUPLICATE)
EXAMPLES = 5  # example line numbers kept per reason


@dataclass
class CleaningReport:
    """What cleaning did, in counts. ``str(report)`` is a one-paragraph summary; ``to_dict()`` is
    what the run directory's ``data_report.json`` holds."""

    rows_read: int = 0
    dropped_missing: int = 0  # rows with an absent value in a used column
    dropped_unparsable: int = 0  # rows (with all values present) whose timestamp/rating did not parse
    duplicates_removed: int = 0  # exact repeats of an earlier row (after parsing)
    kcore_removed_events: int = 0
    users: int = 0
    items: int = 0
    events: int = 0
    k_core: int = 0
    missing_by_column: dict = field(default_factory=dict)  # a row may count under several columns
    unparsable_by_column: dict = field(default_factory=dict)
    source: str = ""
    timestamp_unit: str = "seconds"  # as read; milliseconds/microseconds are converted to seconds
    unlogged_items: int = 0  # items of the item file without events, kept in the catalogue
    dropped: dict = field(default_factory=dict)  # reason -> rows (each row under one reason)
    examples: dict = field(default_factory=dict)  # reason -> first line numbers (or row numbers)
    first_line: int | None = None  # file line of the first data row; None: examples are row numbers

    @property
    def dropped_fraction(self) -> float:
        """Rows dropped for bad or repeated values (not blank lines, not k-core) per row read."""
        data_rows = self.rows_read - self.dropped.get(BLANK, 0)
        lost = sum(n for reason, n in self.dropped.items() if reason != BLANK)
        return lost / data_rows if data_rows else 0.0

    def line_numbers(self, rows: np.ndarray) -> list[int]:
        """File lines (or 1-based row numbers) of input rows, as the examples show them."""
        return [int(r) + (self.first_line if self.first_line is not None else 1) for r in rows]

    def summary_of_drops(self) -> str:
        """``unparsable timestamp: 545 rows (lines 3, 9, ...); exact duplicate: 2 rows (line 7)``."""
        where = "line" if self.first_line is not None else "row"
        parts = []
        for reason, n in self.dropped.items():
            if n:
                examples = self.examples.get(reason, [])
                listed = ", ".join(map(str, examples)) + (", ..." if n > len(examples) else "")
                parts.append(f"{reason}: {n:,} row{'s' if n > 1 else ''} "
                             f"({where}{'s' if len(examples) > 1 else ''} {listed})")
        return "; ".join(parts) if parts else "nothing dropped"

    def to_dict(self) -> dict:
        return {"source": self.source, "rows_read": self.rows_read, "events_kept": self.events,
                "users": self.users, "items": self.items, "timestamp_unit": self.timestamp_unit,
                "timestamps_converted_to_seconds": self.timestamp_unit != "seconds",
                "dropped_fraction": self.dropped_fraction,
                "dropped": {reason: {"rows": n, "examples": self.examples.get(reason, [])}
                            for reason, n in self.dropped.items() if n},
                "examples_are": "line numbers" if self.first_line is not None else "row numbers (from 1)",
                "missing_by_column": self.missing_by_column, "unparsable_by_column": self.unparsable_by_column,
                "k_core": self.k_core, "kcore_removed_events": self.kcore_removed_events,
                "unlogged_items": self.unlogged_items}

    def __str__(self) -> str:
        where = f" from {self.source}" if self.source else ""
        parts = [f"Read {self.rows_read:,} rows{where}"]
        if self.timestamp_unit != "seconds":
            parts.append(f"read timestamps as {self.timestamp_unit} and converted them to seconds")
        if self.dropped.get(BLANK):
            parts.append(f"skipped {self.dropped[BLANK]:,} blank lines")
        if self.dropped.get(NUL):
            parts.append(f"dropped {self.dropped[NUL]:,} with NUL bytes")
        if self.dropped_missing:
            parts.append(f"dropped {self.dropped_missing:,} with missing values"
                         f"{_by_column(self.missing_by_column)}")
        if self.dropped_unparsable:
            parts.append(f"dropped {self.dropped_unparsable:,} unparsable"
                         f"{_by_column(self.unparsable_by_column)}")
        if self.duplicates_removed:
            parts.append(f"removed {self.duplicates_removed:,} exact duplicates")
        if self.k_core:
            parts.append(f"{self.k_core}-core filtering removed {self.kcore_removed_events:,} events")
        unlogged = f" (plus {self.unlogged_items:,} items from the item file without events)" \
            if self.unlogged_items else ""
        examples = f" Dropped: {self.summary_of_drops()}." if any(self.dropped.values()) else ""
        return (", ".join(parts) + f"; kept {self.events:,} events of {self.users:,} users "
                f"on {self.items:,} items{unlogged}.{examples}")

    def _count(self, reason: str, rows: np.ndarray) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + len(rows)
        self.examples[reason] = (self.examples.get(reason, []) + self.line_numbers(rows[:EXAMPLES]))[:EXAMPLES]


def to_seconds(timestamp: np.ndarray, valid: np.ndarray, report: CleaningReport,
               where: str = "") -> tuple[np.ndarray, str]:
    """Detects millisecond/microsecond epoch timestamps by magnitude, per value, and floors them to
    seconds; a column whose values disagree on the unit is refused (no guess moves rows to 1970)."""
    if not valid.any():
        return timestamp, "seconds"
    unit = epoch_unit(timestamp[valid])
    counts = np.bincount(unit, minlength=len(EPOCH_UNITS))
    if (counts > 0).sum() > 1:
        majority = int(np.argmax(counts))
        odd = np.flatnonzero(valid)[unit != majority]
        told = ", ".join(f"{n:,} look like {EPOCH_UNITS[u][0]}" for u, n in enumerate(counts) if n)
        where_odd = "lines" if report.first_line is not None else "rows"
        raise DataFormatError(
            f"{where}the timestamp column mixes units: {told} ({len(odd):,} rows disagree with the majority, "
            f"e.g. {where_odd} {', '.join(map(str, report.line_numbers(odd[:EXAMPLES])))}); convert the log to "
            f"one unit")
    name, _, per_second = EPOCH_UNITS[int(unit[0])]
    return (timestamp // per_second if per_second > 1 else timestamp), name


def _by_column(counts: dict) -> str:
    shown = ", ".join(f"{name} {count:,}" for name, count in counts.items() if count)
    return f" ({shown})" if shown else ""


@dataclass
class CleanEvents:
    """Parsed, filtered events in input order; ids still original (int64 or str objects)."""

    user: np.ndarray
    item: np.ndarray
    timestamp: np.ndarray  # int64 seconds
    rating: np.ndarray | None  # float32
    behavior: np.ndarray | None  # str objects
    source_row: np.ndarray  # int64 row of the input frame

    def take(self, keep: np.ndarray) -> "CleanEvents":
        if keep.dtype == bool and keep.all():
            return self

        def pick(values):
            return None if values is None else values[keep]

        return CleanEvents(pick(self.user), pick(self.item), pick(self.timestamp), pick(self.rating),
                           pick(self.behavior), pick(self.source_row))


def clean_events(frame: pd.DataFrame, k_core: int = 0) -> tuple[CleanEvents, CleaningReport]:
    """Parse and filter ``frame`` (columns as ``read_interactions`` returns them)."""
    source = str(frame.attrs.get("source", ""))
    where = f"{source}: " if source else ""
    absent = [c for c in REQUIRED if c not in frame.columns]
    if absent:
        raise DataFormatError(f"{where}interaction frame lacks column(s) {', '.join(absent)}; "
                              f"columns are: {', '.join(map(str, frame.columns))}")
    if len(frame) == 0:
        raise DataFormatError(f"{where}no interactions (the frame is empty)")
    if not isinstance(k_core, (int, np.integer)) or k_core < 0:
        raise DataFormatError(f"k_core={k_core!r} must be a non-negative integer")
    report = CleaningReport(rows_read=len(frame), k_core=int(k_core), source=source,
                            first_line=frame.attrs.get("first_line"))
    events = _parse_and_drop(frame, where, report)
    events = _drop_duplicates(events, report)
    if k_core > 1:
        keep = k_core_mask(events.user, events.item, k_core)
        report.kcore_removed_events = int((~keep).sum())
        events = events.take(keep)
    if len(events.user) == 0:
        raise DataFormatError(f"{where}no interactions left after cleaning: {report}")
    return events, report


def _parse_and_drop(frame: pd.DataFrame, where: str, report: CleaningReport) -> CleanEvents:
    used = [c for c in ("user_id", "item_id", "timestamp", "rating", "behavior") if c in frame.columns]
    blank = frame[used].isna().all(axis=1).to_numpy()
    nul = np.logical_or.reduce([_has_nul(frame[c]) for c in used])
    user, user_missing = normalise_ids(frame["user_id"])
    item, item_missing = normalise_ids(frame["item_id"])
    timestamp, time_missing, time_bad = parse_seconds(frame["timestamp"], f"{where}timestamp column")
    huge = out_of_range(frame["timestamp"]) & time_bad
    timestamp, report.timestamp_unit = to_seconds(timestamp, ~(time_missing | time_bad | nul | blank), report,
                                                  where)
    missing = {"user_id": user_missing, "item_id": item_missing, "timestamp": time_missing}
    bad = {"timestamp": time_bad}
    rating = behavior = None
    rating_bad = np.zeros(len(frame), bool)
    if "rating" in frame.columns:
        rating, missing["rating"], rating_bad = parse_ratings(frame["rating"])
        bad["rating"] = rating_bad
    if "behavior" in frame.columns:
        behavior, missing["behavior"] = normalise_ids(frame["behavior"])
        behavior = behavior.astype(str).astype(object)
    judged_apart = nul | blank
    any_missing = np.logical_or.reduce(list(missing.values())) & ~judged_apart
    any_bad = np.logical_or.reduce(list(bad.values())) & ~any_missing & ~judged_apart
    report.dropped_missing = int(any_missing.sum())
    report.dropped_unparsable = int(any_bad.sum())
    report.missing_by_column = {name: int((mask & ~judged_apart).sum()) for name, mask in missing.items()}
    report.unparsable_by_column = {name: int((mask & ~judged_apart).sum()) for name, mask in bad.items()}
    judged = np.zeros(len(frame), bool)
    for reason, mask in ((BLANK, blank), (NUL, nul), (MISSING, any_missing), (OUT_OF_RANGE, huge & any_bad),
                         (BAD_TIME, time_bad & any_bad), (BAD_RATING, rating_bad & any_bad)):
        rows = np.flatnonzero(mask & ~judged)
        judged[rows] = True
        report._count(reason, rows)
    events = CleanEvents(user, item, timestamp, rating, behavior, np.arange(len(frame), dtype=np.int64))
    return events.take(~(any_missing | any_bad | judged_apart))


def _has_nul(values: pd.Series) -> np.ndarray:
    """Text values holding a NUL byte: a damaged file (the id "3\\x00" would be a new item)."""
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_datetime64_any_dtype(values):
        return np.zeros(len(values), bool)
    try:
        found = pd.Series(values, dtype=object).str.contains("\x00", regex=False)
    except AttributeError:  # no strings at all
        return np.zeros(len(values), bool)
    return found.fillna(False).to_numpy(dtype=bool)


def _drop_duplicates(events: CleanEvents, report: CleaningReport) -> CleanEvents:
    columns = {"u": events.user, "i": events.item, "t": events.timestamp}
    if events.rating is not None:
        columns["r"] = events.rating
    if events.behavior is not None:
        columns["b"] = events.behavior
    repeat = pd.DataFrame(columns).duplicated(keep="first").to_numpy()
    report.duplicates_removed = int(repeat.sum())
    report._count(DUPLICATE, events.source_row[repeat])
    return events.take(~repeat)


def normalise_ids(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Ids as int64 when they are all whole numbers, else as strings; plus the missing mask.

    A numeric column with gaps is read as float (``3.0``); turning it back into integers keeps the
    original ids. Blank strings count as missing. Missing entries hold a placeholder.
    """
    missing = values.isna().to_numpy()
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        numbers = values.to_numpy(dtype=np.float64, na_value=np.nan)
        present = numbers[~missing]
        if pd.api.types.is_integer_dtype(values) and not missing.any():
            return values.to_numpy(dtype=np.int64), missing
        if np.all(np.isfinite(present)) and np.all(present == np.floor(present)):
            return np.where(missing, 0, numbers).astype(np.int64), missing
    text = values.astype(object).where(~missing, "").astype(str)
    missing = missing | text.str.strip().eq("").to_numpy(dtype=bool)
    return text.to_numpy(dtype=object), missing


def parse_ratings(values: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """float32 ratings, the missing mask and the mask of present values that are not numbers."""
    missing = values.isna().to_numpy()
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    unparsable = ~np.isfinite(numbers) & ~missing
    return np.where(np.isfinite(numbers), numbers, 0.0).astype(np.float32), missing, unparsable


def k_core_mask(user: np.ndarray, item: np.ndarray, k: int) -> np.ndarray:
    """Events kept by iterative k-core filtering: repeat until every kept user and item has >= k.

    Dropping a sparse item can push a user below k and vice versa, hence the loop; each pass is a
    pair of bincounts over the surviving events.
    """
    if len(user) == 0:
        return np.ones(0, bool)
    user_code = pd.factorize(user)[0]
    item_code = pd.factorize(item)[0]
    keep = np.ones(len(user_code), bool)
    while True:
        user_count = np.bincount(user_code[keep], minlength=user_code.max() + 1)
        item_count = np.bincount(item_code[keep], minlength=item_code.max() + 1)
        sparse = keep & ((user_count[user_code] < k) | (item_count[item_code] < k))
        if not sparse.any():
            return keep
        keep &= ~sparse
