"""``Interactions``: a cleaned log as aligned numpy arrays, and ``prepare_interactions`` that builds it.

Events are sorted by (user, time), users and items are numbered 1..n (0 is padding), and each
user's events are one contiguous run, ``user_offsets[u]:user_offsets[u + 1]``.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Sequence

import numpy as np
import pandas as pd

from .categories import comparable_ids, category_matrix
from .cleaning import CleaningReport, clean_events, normalise_ids
from .errors import DataFormatError
from .timestamps import gaps, unit_seconds

INT_PAD = -1  # placeholder at position 0 of integer id maps; never a looked-up id
STR_PAD = "<pad>"


@dataclass(frozen=True, eq=False, repr=False)
class Interactions:
    """A cleaned interaction log; every per-event array has length N and the same order.

    >>> data = prepare_interactions(read_interactions("ml-100k/u.data"))    # doctest: +SKIP
    >>> u = data.user_index([196])[0]                                       # doctest: +SKIP
    >>> data.item_ids[data.item[data.user_offsets[u]:data.user_offsets[u + 1]]]  # doctest: +SKIP
    """

    user: np.ndarray  # int64, 1..num_users
    item: np.ndarray  # int64, 1..num_items
    timestamp: np.ndarray  # int64 seconds
    dt: np.ndarray  # float32, time since the user's previous event in dt_unit; 0 at the first
    dt_unit: str
    user_ids: np.ndarray  # original id of each user index (position 0: placeholder)
    item_ids: np.ndarray  # original id of each item index (position 0: placeholder)
    user_offsets: np.ndarray  # int64 (num_users + 2,): events of user u are [offsets[u], offsets[u+1])
    source_row: np.ndarray  # int64, row of the input frame each event came from
    report: CleaningReport
    rating: np.ndarray | None = None  # float32
    behavior: np.ndarray | None = None  # int64, 1..len(behavior_names) - 1 (0 is padding)
    behavior_names: list[str] | None = None  # position 0: placeholder
    item_categories: np.ndarray | None = None  # float32 (num_items + 1, C), rows sum to 1 or 0
    category_names: list[str] | None = None
    item_text: np.ndarray | None = None  # object (num_items + 1,): str, or None for no text/padding

    @property
    def num_users(self) -> int:
        return len(self.user_ids) - 1

    @property
    def num_items(self) -> int:
        return len(self.item_ids) - 1

    @property
    def num_categories(self) -> int:
        return 0 if self.category_names is None else len(self.category_names)

    def __len__(self) -> int:
        return len(self.user)

    def __repr__(self) -> str:
        return (f"Interactions(events={len(self)}, users={self.num_users}, items={self.num_items}, "
                f"categories={self.num_categories}, dt_unit={self.dt_unit!r})")

    @cached_property
    def position_in_user(self) -> np.ndarray:
        """int64 (N,): how many earlier events the same user has (0 at each first event)."""
        return np.arange(len(self), dtype=np.int64) - self.user_offsets[self.user]

    def user_index(self, original_ids) -> np.ndarray:
        """Contiguous indices (1..num_users) of original user ids; KeyError names unknown ids."""
        return _lookup(self._user_lookup, original_ids, "user")

    def item_index(self, original_ids) -> np.ndarray:
        """Contiguous indices (1..num_items) of original item ids; KeyError names unknown ids."""
        return _lookup(self._item_lookup, original_ids, "item")

    @cached_property
    def _user_lookup(self) -> pd.Index:
        return pd.Index(self.user_ids[1:])

    @cached_property
    def _item_lookup(self) -> pd.Index:
        return pd.Index(self.item_ids[1:])

    def to_frame(self) -> pd.DataFrame:
        """The cleaned events with original ids, in (user, time) order; handy for inspection."""
        columns = {"user_id": self.user_ids[self.user], "item_id": self.item_ids[self.item],
                   "timestamp": self.timestamp, "dt": self.dt}
        if self.rating is not None:
            columns["rating"] = self.rating
        if self.behavior is not None:
            columns["behavior"] = np.asarray(self.behavior_names, dtype=object)[self.behavior]
        return pd.DataFrame(columns)


def _lookup(index: pd.Index, original_ids, kind: str) -> np.ndarray:
    query = np.asarray(original_ids)
    flat = query.reshape(-1)
    if index.dtype.kind in "iu":
        # "196" and 196.0 name the same integer id; anything that is not a whole number is unknown.
        numbers = pd.to_numeric(pd.Series(flat, dtype=object), errors="coerce").to_numpy(np.float64)
        whole = np.isfinite(numbers) & (numbers == np.floor(numbers))
        found = np.full(len(flat), -1, np.int64)
        found[whole] = index.get_indexer(numbers[whole].astype(np.int64))
    else:
        found = index.get_indexer(pd.Series(flat, dtype=object).astype(str))
    if (found < 0).any():
        unknown = flat[found < 0]
        shown = ", ".join(map(repr, unknown[:5].tolist())) + (", ..." if len(unknown) > 5 else "")
        raise KeyError(f"{len(unknown)} {kind} id(s) never seen in the interactions: {shown}")
    return (found + 1).reshape(query.shape)


def prepare_interactions(frame: pd.DataFrame, item_categories: pd.DataFrame | None = None,
                         k_core: int = 0, dt_unit: str = "hours",
                         category_names: Sequence[str] | None = None,
                         keep_unlogged_items: bool = False) -> Interactions:
    """Clean a raw log (as ``read_interactions`` returns it) into ``Interactions``.

    Drops rows with missing or unparsable values and exact duplicates, applies iterative k-core
    filtering when ``k_core > 1``, numbers users and items 1..n in sorted order of their original
    ids, sorts events by (user, timestamp) stably (ties keep file order) and computes Δt per user
    in ``dt_unit`` (seconds, minutes, hours or days). ``item_categories`` (from
    ``read_item_categories``) becomes a row-normalised multi-hot matrix whose columns follow
    ``category_names`` (default: all categories, sorted); its optional ``text`` column (from
    ``read_items``) becomes ``item_text``. With ``keep_unlogged_items``, items of the item table
    that no kept event mentions are numbered too, so text features can recommend them.
    ``interactions.report`` says what was done.
    """
    unit_seconds(dt_unit)  # reject a bad unit before doing any work
    events, report = clean_events(frame, k_core)
    user_code, user_uniques = pd.factorize(events.user, sort=True)
    item_code, item_uniques = pd.factorize(events.item, sort=True)
    logged_items = len(item_uniques)
    table = None if item_categories is None else _normalised_items(item_categories)
    if table is not None:
        _check_items_match(table["item_id"].to_numpy(), np.asarray(item_uniques))
    if keep_unlogged_items and table is not None:
        # Items the log has but cleaning removed (k-core, bad rows) stay out: they were judged.
        raw_items, missing = normalise_ids(frame["item_id"])
        raw_items = raw_items[~missing]
        item_uniques, item_code = _with_table_items(events.item, table["item_id"].to_numpy(), raw_items)
    user, item = user_code.astype(np.int64) + 1, item_code.astype(np.int64) + 1
    order = np.lexsort((events.timestamp, user))  # lexsort is stable: equal times keep input order
    user, item, events = user[order], item[order], events.take(order)
    counts = np.bincount(user, minlength=len(user_uniques) + 1)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    first = np.zeros(len(user), bool)
    first[offsets[1:-1]] = True  # every numbered user has at least one event
    item_ids = _with_placeholder(item_uniques)
    behavior, behavior_names = _behavior_codes(events.behavior)
    matrix = names = texts = None
    if table is not None:
        matrix, names = category_matrix(table, item_ids, category_names)
        if not names:  # an item file with texts but no categories
            matrix = names = None
        if "text" in table.columns:
            texts = _per_item(table["item_id"].to_numpy(), table["text"].to_numpy(), item_ids)
    report.users, report.items, report.events = len(user_uniques), logged_items, len(user)
    report.unlogged_items = len(item_uniques) - logged_items
    return Interactions(
        user=user, item=item, timestamp=events.timestamp, dt=gaps(events.timestamp, first, dt_unit),
        dt_unit=dt_unit, user_ids=_with_placeholder(user_uniques), item_ids=item_ids,
        user_offsets=offsets, source_row=events.source_row, report=report, rating=events.rating,
        behavior=behavior, behavior_names=behavior_names, item_categories=matrix,
        category_names=names, item_text=texts)


def _check_items_match(table_items: np.ndarray, logged_items: np.ndarray) -> None:
    """An item file none of whose ids occur in the log is the wrong file or the wrong column: every
    category and text would be silently missing."""
    if len(table_items) == 0 or len(logged_items) == 0:
        return
    listed = comparable_ids(table_items, logged_items)
    if np.isin(comparable_ids(logged_items, table_items), listed).any():
        return
    raise DataFormatError(
        f"none of the item file's {len(table_items):,} item ids occurs in the log (e.g. {table_items[0]!r} in "
        f"the item file, {logged_items[0]!r} in the log); check the file, or name its item column with "
        f"--item-col")


def _with_placeholder(uniques) -> np.ndarray:
    uniques = np.asarray(uniques)
    if uniques.dtype.kind in "iu":
        return np.concatenate([[INT_PAD], uniques]).astype(np.int64)
    return np.concatenate([np.array([STR_PAD], dtype=object), uniques.astype(object)])


def _behavior_codes(behavior: np.ndarray | None):
    if behavior is None:
        return None, None
    code, names = pd.factorize(behavior, sort=True)
    return code.astype(np.int64) + 1, [STR_PAD] + [str(n) for n in names]


def _with_table_items(event_items: np.ndarray, table_items: np.ndarray,
                      raw_items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted union of the kept events' ids and the item-table ids absent from the raw log, and
    each event's code in it."""
    logged, listed = comparable_ids(np.asarray(event_items), table_items), comparable_ids(table_items, event_items)
    listed = listed[~np.isin(listed, comparable_ids(np.asarray(raw_items), listed))]
    uniques = np.unique(np.concatenate([pd.unique(logged), pd.unique(listed)]))
    return uniques, pd.Index(uniques).get_indexer(logged)


def _per_item(table_items: np.ndarray, values: np.ndarray, item_ids: np.ndarray) -> np.ndarray:
    """``values`` of the item table aligned with ``item_ids`` (None where an item is not listed)."""
    first = ~pd.Series(comparable_ids(table_items, item_ids[1:])).duplicated().to_numpy()
    table_items, values = table_items[first], values[first]
    position = pd.Index(comparable_ids(table_items, item_ids[1:])).get_indexer(
        comparable_ids(np.asarray(item_ids[1:]), table_items))
    out = np.full(len(item_ids), None, dtype=object)
    found = position >= 0
    out[1:][found] = [v if isinstance(v, str) else None for v in values[position[found]]]
    return out


def _normalised_items(item_categories: pd.DataFrame) -> pd.DataFrame:
    """Item ids of the category table normalised like interaction ids, so 5, 5.0 and "5" meet."""
    absent = {"item_id", "categories"} - set(item_categories.columns)
    if absent:
        raise DataFormatError(
            f"item_categories lacks column(s) {', '.join(sorted(absent))}; expected item_id, "
            f"categories as read_item_categories returns; got {', '.join(map(str, item_categories.columns))}")
    ids, missing = normalise_ids(item_categories["item_id"])
    return item_categories[~missing].drop(columns="item_id").assign(item_id=ids[~missing]).reset_index(drop=True)
