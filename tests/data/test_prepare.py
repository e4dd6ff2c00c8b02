"""Cleaning, id mapping, ordering and Δt of prepare_interactions."""
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from interestevo.data import CleaningReport, Interactions, prepare_interactions


def frame(rows, columns=("user_id", "item_id", "timestamp")):
    return pd.DataFrame(rows, columns=list(columns))


def test_cleaning_counts_by_hand():
    raw = frame([
        ["u1", "a", "100", 4.0],      # kept
        ["u1", "b", "2020-01-01T00:00:00Z", 3.0],  # kept, ISO datetime
        [None, "a", "100", 4.0],      # missing user
        ["u2", "a", None, 4.0],       # missing timestamp
        ["u2", "b", "", 1.0],         # blank timestamp counts as missing
        ["u2", "a", "soon", 4.0],     # unparsable timestamp
        ["u2", "a", "300", "x"],      # unparsable rating
        ["u2", "c", "300.7", 5.0],    # kept, float seconds are floored
        ["u1", "a", "100", 4.0],      # duplicate of the first row
        ["u2", "c", "300", 5.0],      # duplicate once 300.7 is floored
    ], ["user_id", "item_id", "timestamp", "rating"])
    data = prepare_interactions(raw)
    report = data.report
    assert (report.rows_read, report.dropped_missing, report.dropped_unparsable,
            report.duplicates_removed, report.events) == (10, 3, 2, 2, 3)
    assert report.missing_by_column["timestamp"] == 2
    assert (report.users, report.items) == (2, 3)
    assert data.source_row.tolist() == [0, 1, 7]
    assert data.timestamp.tolist() == [100, 1577836800, 300]
    text = str(report)
    assert "\n" not in text and "3 with missing values" in text and "2 exact duplicates" in text


def test_k_core_is_iterative():
    # k=2. Item z has one event -> dropped; then user c has one event left -> dropped;
    # then item y has one event left -> dropped; then user b is below 2 -> dropped.
    raw = frame([
        ["a", "x", 1], ["a", "x", 2], ["a", "w", 3], ["a", "w", 4],
        ["b", "x", 5], ["b", "y", 6],
        ["c", "y", 7], ["c", "z", 8],
    ])
    data = prepare_interactions(raw, k_core=2)
    assert data.report.kcore_removed_events == 4
    assert data.user_ids[1:].tolist() == ["a"]
    assert data.item_ids[1:].tolist() == ["w", "x"]
    assert "2-core filtering removed 4 events" in str(data.report)


def test_ids_are_contiguous_sorted_with_padding_placeholder():
    raw = frame([[30, 7, 1], [10, 5, 2], [30, 5, 3], [None, 9, 4]])  # the gap makes the ids float
    data = prepare_interactions(raw)
    assert data.user_ids.tolist() == [-1, 10, 30] and data.user_ids.dtype == np.int64
    assert data.item_ids.tolist() == [-1, 5, 7]
    assert data.user.tolist() == [1, 2, 2] and data.item.tolist() == [1, 2, 1]
    assert data.user_index([30, "10"]).tolist() == [2, 1]
    assert data.item_index(np.array([[7]])).tolist() == [[2]]
    with pytest.raises(KeyError, match="never seen.*99"):
        data.user_index([10, 99])


def test_string_ids_lookup():
    data = prepare_interactions(frame([["b", "x", 1], ["a", "y", 2]]))
    assert data.user_ids.tolist() == ["<pad>", "a", "b"]
    assert data.user_index("b").tolist() == 2
    with pytest.raises(KeyError):
        data.item_index(["nope"])


def test_sort_is_stable_for_equal_timestamps():
    raw = frame([[2, "p", 50], [1, "c", 10], [1, "a", 10], [1, "b", 5], [1, "d", 10]])
    data = prepare_interactions(raw)
    assert data.item_ids[data.item].tolist() == ["b", "c", "a", "d", "p"]
    assert data.source_row.tolist() == [3, 1, 2, 4, 0]


@pytest.mark.parametrize("unit,scale", [("seconds", 1), ("minutes", 60), ("hours", 3600), ("days", 86400)])
def test_dt_units_and_first_event_zero(unit, scale):
    raw = frame([[1, 1, 0], [1, 2, 90], [1, 3, 90 + 86400], [2, 1, 7200], [2, 2, 10800]])
    data = prepare_interactions(raw, dt_unit=unit)
    assert data.dt.dtype == np.float32 and data.dt_unit == unit
    np.testing.assert_allclose(data.dt, np.array([0, 90, 86400, 0, 3600]) / scale, rtol=1e-6)


def test_large_timestamps_keep_order_and_exact_gaps():
    # Past 2**24 seconds float32 cannot tell consecutive seconds apart; int64 must.
    base = 1_700_000_000
    times = base + np.array([3, 0, 2, 1, 5, 4])
    assert np.float32(base + 1) == np.float32(base)  # the trap
    raw = pd.DataFrame({"user_id": 1, "item_id": np.arange(6), "timestamp": times})
    data = prepare_interactions(raw, dt_unit="seconds")
    assert data.timestamp.dtype == np.int64
    assert data.timestamp.tolist() == (base + np.arange(6)).tolist()
    assert data.item_ids[data.item].tolist() == [1, 3, 2, 0, 5, 4]
    assert data.dt.tolist() == [0, 1, 1, 1, 1, 1]


def test_offsets_positions_and_behavior():
    raw = pd.DataFrame({"user_id": [2, 1, 2, 2], "item_id": [1, 1, 2, 3], "timestamp": [1, 1, 2, 3],
                        "behavior": ["click", "buy", "click", "cart"]})
    data = prepare_interactions(raw)
    assert data.user_offsets.tolist() == [0, 0, 1, 4]
    assert data.position_in_user.tolist() == [0, 0, 1, 2]
    assert data.behavior_names == ["<pad>", "buy", "cart", "click"]
    assert data.behavior.tolist() == [1, 3, 3, 2]
    assert len(data) == 4 and data.num_users == 2 and data.num_items == 3 and data.num_categories == 0
    assert data.to_frame()["behavior"].tolist() == ["buy", "click", "click", "cart"]


log_rows = st.lists(
    st.tuples(st.integers(0, 6), st.sampled_from("abcde"), st.integers(1_600_000_000, 1_600_000_050)),
    min_size=1, max_size=60)


@settings(max_examples=60, deadline=None)
@given(log_rows)
def test_invariants_on_random_logs(rows):
    raw = frame(rows)
    data = prepare_interactions(raw, dt_unit="seconds")
    n = len(data)
    assert n == len(raw.drop_duplicates())
    assert data.user.min() >= 1 and data.user.max() == data.num_users
    key = data.user * 10**10 + (data.timestamp - 1_600_000_000)
    assert np.all(np.diff(key) >= 0)  # sorted by (user, time)
    assert data.user_offsets[0] == data.user_offsets[1] == 0 and data.user_offsets[-1] == n
    for u in range(1, data.num_users + 1):
        assert np.all(data.user[data.user_offsets[u]:data.user_offsets[u + 1]] == u)
    first = data.position_in_user == 0
    assert np.all(data.dt[first] == 0) and np.all(data.dt >= 0)
    np.testing.assert_array_equal(data.dt[~first], np.diff(data.timestamp)[~first[1:]])
    # source_row points back at the input row each event came from
    back = raw.iloc[data.source_row]
    assert back["user_id"].tolist() == data.user_ids[data.user].tolist()
    assert back["item_id"].tolist() == data.item_ids[data.item].tolist()
    assert back["timestamp"].tolist() == data.timestamp.tolist()


def test_report_and_interactions_types():
    data = prepare_interactions(frame([[1, 1, 1]]))
    assert isinstance(data, Interactions) and isinstance(data.report, CleaningReport)
    assert "kept 1 events of 1 users on 1 items" in str(data.report)
    assert repr(data).startswith("Interactions(events=1")


@pytest.mark.parametrize("values,expected", [
    ([1600000000, 1600000001], [1600000000, 1600000001]),                       # int seconds
    ([1600000000.9, 1600000001.2], [1600000000, 1600000001]),                   # float seconds
    (["2020-09-13T12:26:40Z", "2020-09-13 14:26:41+02:00"], [1600000000, 1600000001]),  # ISO, offsets
    (["2020-09-13T12:26:40", "1600000001"], [1600000000, 1600000001]),          # mixed, naive = UTC
    (pd.to_datetime([1600000000, 1600000001], unit="s", utc=True), [1600000000, 1600000001]),
])
def test_timestamp_kinds_become_int64_seconds(values, expected):
    data = prepare_interactions(pd.DataFrame({"user_id": [1, 2], "item_id": [1, 1], "timestamp": values}))
    assert data.timestamp.dtype == np.int64 and data.timestamp.tolist() == expected


def test_millisecond_timestamps_are_detected_and_converted():
    frame = pd.DataFrame({"user_id": [1, 1, 1], "item_id": [5, 6, 7],
                          "timestamp": [1_433_221_332_117, 1_433_224_214_164, 1_433_231_532_003]})
    inter = prepare_interactions(frame)
    assert inter.timestamp.tolist() == [1_433_221_332, 1_433_224_214, 1_433_231_532]
    assert inter.report.timestamp_unit == "milliseconds"
    assert "read timestamps as milliseconds" in str(inter.report)
    assert abs(inter.dt[1] - (1_433_224_214 - 1_433_221_332) / 3600) < 1e-4
