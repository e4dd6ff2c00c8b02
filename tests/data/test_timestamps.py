"""The one clock: request and event times read as log columns read them, refused in one message."""
import re
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from interestevo.data import DataFormatError, prepare_interactions
from interestevo.data.timestamps import (MAX_SECONDS, MIN_SECONDS, TIME_FORMS, elapsed, gaps, parse_time,
                                         parse_times, read_time)

T0 = 1_700_000_000  # 2023-11-14T22:13:20Z


@pytest.mark.parametrize("value", [
    T0, "1700000000", T0 + 0.9, 1_700_000_000_000, "1700000000000", 1_700_000_000_999.9, 1_700_000_000_000_000,
    "1700000000000000", np.int64(T0), "2023-11-14T22:13:20Z", "2023-11-14T22:13:20",
    "2023-11-14T23:13:20+01:00", " 2023-11-14T22:13:20.999z ", datetime(2023, 11, 14, 22, 13, 20),
    datetime(2023, 11, 14, 23, 13, 20, tzinfo=timezone(timedelta(hours=1))),
])
def test_every_form_of_one_time_reads_as_the_same_seconds(value):
    assert parse_time(value) == T0


@pytest.mark.parametrize("value", [
    T0, 99_999_999_999, 100_000_000_000, 1_700_000_000_123, 1_700_000_000_123_456, T0 + 0.5,
    "1700000000000", "2023-11-14T23:13:20+01:00", "2023-11-14",
])
def test_a_time_reads_as_a_log_column_reads_it(value):
    column = prepare_interactions(pd.DataFrame({"user_id": [1], "item_id": [1], "timestamp": [value]})).timestamp
    assert parse_time(value) == column[0]


def test_how_a_time_was_read_is_said():
    assert read_time("1700000000") == (T0, "unix seconds")
    assert read_time("1700000000000") == (T0, "unix milliseconds")
    assert read_time(1_700_000_000_000_000) == (T0, "unix microseconds")
    assert read_time("2023-11-14T22:13:20Z") == (T0, "an ISO date")


def test_fractions_are_floored_before_the_epoch_too():
    assert parse_time(-0.5) == -1 and parse_time("-1.5") == -2 and parse_time(-1_700_000_000_000.5) == -T0 - 1


def test_years_1_to_9999_are_the_bounds():
    assert parse_time("0001-01-01T00:00:00Z") == MIN_SECONDS
    assert parse_time("9999-12-31T23:59:59") == MAX_SECONDS
    assert parse_time((MAX_SECONDS + 1) * 1_000_000 - 1) == MAX_SECONDS  # the largest microseconds


@pytest.mark.parametrize("value, readable", [
    ("next tuesday", False), ("01/02/2024", False), ("2024-13-01", False), ("2024-11-14T23:00:00 02:00", False),
    (True, False), (None, False), ([T0], False), (float("nan"), True), ("inf", True), (1e30, True),
    (2 ** 64, True), (np.uint64(2 ** 63), True), ("0001-01-01T00:00:00+01:00", True),
    ((MAX_SECONDS + 1) * 1_000_000, True),
])
def test_what_is_no_time_is_refused_naming_the_argument_and_the_forms(value, readable):
    with pytest.raises(DataFormatError) as refused:
        parse_time(value, "at")
    message = str(refused.value)
    assert message.startswith("at ") and message.endswith(f": expected {TIME_FORMS}")
    assert ("that can be stored" in message) == readable


def test_a_huge_value_is_quoted_briefly():
    with pytest.raises(DataFormatError) as refused:
        parse_time("x" * 100_000, "time")
    assert len(str(refused.value)) < 400 and "100000 characters" in str(refused.value)


def test_arrays_read_each_value_as_the_scalar_does():
    values = [T0, -1, 99_999_999_999, 100_000_000_000, 1_700_000_000_123, 1_700_000_000_123_456, -10**13]
    expected = [parse_time(v) for v in values]
    assert parse_times(values).tolist() == expected
    assert parse_times(np.array(values, np.float64)).tolist() == [parse_time(float(v)) for v in values]
    assert parse_times(np.array(values[2:6], np.uint64)).tolist() == expected[2:6]
    assert parse_times(["2023-11-14T22:13:20Z", T0, "1700000000000"]).tolist() == [T0] * 3
    assert parse_times(np.array(["2023-11-14T22:13:20"], "datetime64[ns]")).tolist() == [T0]
    assert parse_times(T0, n=3).tolist() == [T0] * 3 and parse_times(np.array(T0), n=2).tolist() == [T0] * 2
    assert parse_times([]).dtype == np.int64


@pytest.mark.parametrize("values, where", [
    ([T0, float("inf")], "times[1] inf"), (np.array([T0, 2 ** 63], np.uint64), "times[1] 9223372036854775808"),
    ([T0, "soon"], "times[1] 'soon'"), ([True], "times[0] True"), ([T0, True], "times[1] True"),
    ((T0, np.True_), "times[1] True"),
])
def test_an_array_refusal_names_the_position(values, where):
    with pytest.raises(DataFormatError, match="^" + re.escape(where) + " is no time"):
        parse_times(values, "times")


def test_one_time_given_for_many_keeps_the_plain_name():
    with pytest.raises(DataFormatError, match=r"^at 'soon' is no time"):
        parse_times("soon", "at", n=4)


def test_gaps_are_int64_differences_scaled_once():
    times = np.array([T0, T0 + 1, T0 + 7201, 5, 5 + 86_400], np.int64)
    first = np.array([True, False, False, True, False])
    assert gaps(times, first, "hours").tolist() == pytest.approx([0, 1 / 3600, 2, 0, 24])
    assert elapsed(times[1:], times[:-1], ~first[1:], 3600).tolist() == gaps(times, first, "hours")[1:].tolist()
    # large epochs lose nothing: float32 of the epoch itself would be 128 s apart
    assert gaps(np.array([2 ** 40, 2 ** 40 + 1]), np.array([True, False]), "seconds").tolist() == [0, 1]
