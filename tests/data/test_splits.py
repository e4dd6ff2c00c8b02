"""Leave-one-out and temporal splits: roles, targets, and that no target leaks into its history."""
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from interestevo.data import (TEST, TRAIN, VALID, DataFormatError, leave_one_out_split,
                              prepare_interactions, temporal_split)


def interactions(rows):
    return prepare_interactions(pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]))


# users with 1, 2, 3 and 5 events; times chosen so the temporal split has clear boundaries
ROWS = ([["a", 1, 10]]
        + [["b", 1, 10], ["b", 2, 20]]
        + [["c", 1, 10], ["c", 2, 50], ["c", 3, 90]]
        + [["d", 1, 10], ["d", 2, 20], ["d", 3, 50], ["d", 4, 60], ["d", 5, 90]])


def test_leave_one_out_roles():
    split = leave_one_out_split(interactions(ROWS))
    T, V, X = TRAIN, VALID, TEST
    assert split.role.dtype == np.int8
    assert split.role.tolist() == [T, T, T, T, V, X, T, T, T, V, X]  # a, b stay in train (< 3 events)
    assert split.targets(TRAIN).tolist() == [2, 7, 8]  # first events are never targets
    assert split.targets(VALID).tolist() == [4, 9]
    assert split.targets(TEST).tolist() == [5, 10]
    assert split.train_end.tolist() == [0, 1, 3, 4, 9]
    assert split.valid_end.tolist() == [0, 1, 3, 5, 10]
    assert "test 2" in str(split)


def test_temporal_roles_with_timestamps_and_rolling_history():
    data = interactions(ROWS)
    split = temporal_split(data, t1=50, t2=90)
    T, V, X = TRAIN, VALID, TEST
    assert split.role.tolist() == [T, T, T, T, V, X, T, T, V, V, X]
    assert split.targets(VALID).tolist() == [4, 8, 9]
    assert split.targets(TEST).tolist() == [5, 10]
    # rolling: user d's test event sees both of its validation events
    assert split.history_start[10] == 6 and split.role[8:10].tolist() == [V, V]


def test_temporal_quantiles_and_datetimes():
    data = interactions(ROWS)
    times = np.sort(data.timestamp)
    split = temporal_split(data)  # 0.8 / 0.9 quantiles of all 11 event times
    start, stop = np.quantile(times, 0.8, method="lower"), np.quantile(times, 0.9, method="lower")
    assert split.name == f"temporal(t1={start}, t2={stop})"
    same = temporal_split(data, t1=int(start), t2=int(stop))
    assert np.array_equal(split.role, same.role)
    stamp = temporal_split(data, t1="1970-01-01T00:00:50Z", t2=pd.Timestamp(90, unit="s"))
    assert np.array_equal(stamp.role, temporal_split(data, t1=50, t2=90).role)


def test_first_event_in_test_period_is_not_a_target():
    data = interactions([["old", 1, 0], ["old", 2, 100], ["new", 1, 100]])
    split = temporal_split(data, t1=50, t2=50)
    assert data.user_ids[data.user].tolist() == ["new", "old", "old"]
    assert split.role.tolist() == [TEST, TRAIN, TEST]
    assert split.targets(TEST).tolist() == [2]  # "new"'s only event has no history


random_logs = st.lists(
    st.tuples(st.integers(0, 5), st.integers(0, 8), st.integers(0, 40)), min_size=1, max_size=80)


@settings(max_examples=60, deadline=None)
@given(random_logs, st.floats(0.05, 0.95), st.floats(0.05, 0.95))
def test_no_target_leaks_into_its_history(rows, q1, q2):
    data = interactions(rows)
    for split in (leave_one_out_split(data), temporal_split(data, min(q1, q2), max(q1, q2))):
        for role in (TRAIN, VALID, TEST):
            for j in split.targets(role):
                start = split.history_start[j]
                assert start < j  # at least one earlier event, never the target itself
                assert np.all(data.user[start:j + 1] == data.user[j])
                assert np.all(data.timestamp[start:j] <= data.timestamp[j])
                assert split.role[j] == role
        # every user's roles are a prefix structure: train, then valid, then test
        for u in range(1, data.num_users + 1):
            roles = split.role[data.user_offsets[u]:data.user_offsets[u + 1]]
            assert np.all(np.diff(roles) >= 0)
            assert split.train_end[u] - data.user_offsets[u] == np.sum(roles == TRAIN)
            assert split.valid_end[u] - data.user_offsets[u] == np.sum(roles <= VALID)
        all_targets = np.concatenate([split.targets(r) for r in (TRAIN, VALID, TEST)])
        assert sorted(all_targets.tolist()) == np.flatnonzero(data.position_in_user > 0).tolist()


def test_bad_split_arguments():
    data = interactions(ROWS)
    with pytest.raises(DataFormatError, match="t1.*must not be after t2"):
        temporal_split(data, t1=0.9, t2=0.5)
    with pytest.raises(DataFormatError, match="t2 None is no time.*or a fraction in"):
        temporal_split(data, t2=None)
    with pytest.raises(DataFormatError, match="role=5"):
        leave_one_out_split(data).targets(5)
