import numpy as np
import pytest
import torch

from interestevo.models import ModelConfig, build_model
from interestevo.serving import InterestTracker, UnknownUserError

from .tiny_data import tiny_dataset

CONFIG = ModelConfig(embedding_size=8, hidden_size=12, num_layers=2, dropout=0.0)


def tracker_for(name="timelstm"):
    _, inter, _ = tiny_dataset()
    torch.manual_seed(0)
    model = build_model(name, inter.num_items, CONFIG, torch.from_numpy(inter.item_categories))
    if name == "pop":
        model.fit(torch.from_numpy(inter.item))
    return inter, InterestTracker(model, inter.item_ids, dt_unit=inter.dt_unit, model_name=name,
                                  model_config=CONFIG)


@pytest.mark.parametrize("name", ["timelstm", "lstm", "gru", "timelstm-no-dt"])
def test_event_by_event_equals_the_whole_sequence(name):
    inter, batched = tracker_for(name)
    batched.observe_history(inter, window=7)  # windows of 7 events with carried state
    streamed = InterestTracker(batched.model, inter.item_ids, dt_unit=inter.dt_unit)
    # Interleave users the way a live system sees them: in global time order.
    order = np.argsort(inter.timestamp, kind="stable")
    for chunk in np.array_split(order, 25):
        streamed.update(inter.user_ids[inter.user[chunk]], inter.item_ids[inter.item[chunk]],
                        inter.timestamp[chunk])
    slots = [streamed._user_slot[str(u)] for u in batched.user_ids]
    for full, live in zip(batched.state, streamed.state):
        # (timelstm's recent events keep float32 hours relative to the last event, summed per call:
        # they agree to a fraction of a second)
        torch.testing.assert_close(live[:, slots], full, atol=1e-4, rtol=1e-5)
    assert np.array_equal(streamed.last_time[slots], batched.last_time)


def test_many_events_of_one_user_in_one_call_apply_in_order():
    inter, one_call = tracker_for()
    step_by_step = InterestTracker(one_call.model, inter.item_ids)
    user, events = inter.user_ids[1], slice(inter.user_offsets[1], inter.user_offsets[2])
    items, times = inter.item_ids[inter.item[events]], inter.timestamp[events]
    one_call.update([user] * len(items), items, times)
    for item, t in zip(items, times):
        step_by_step.update([user], [item], [t])
    for a, b in zip(one_call.state, step_by_step.state):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)


def test_out_of_order_event_is_rejected_and_nothing_applied():
    inter, tracker = tracker_for()
    tracker.update(["u1", "u2"], [inter.item_ids[1], inter.item_ids[2]], [1000, 1000])
    before = tuple(s.clone() for s in tracker.state)
    with pytest.raises(ValueError, match=r"user 'u1' at time 999 is older than .* last event at 1000"):
        tracker.update(["u2", "u1"], [inter.item_ids[3], inter.item_ids[3]], [2000, 999])
    for a, b in zip(before, tracker.state):
        assert torch.equal(a, b)  # u2's valid event in the same call was not applied either
    assert tracker.last_time.tolist() == [1000, 1000]
    with pytest.raises(ValueError, match="older"):  # also within one call
        tracker.update(["u3", "u3"], [inter.item_ids[1]] * 2, [50, 40])
    assert "u3" not in tracker.user_ids


def test_unknown_items_are_reported_not_applied():
    inter, tracker = tracker_for()
    with pytest.warns(UserWarning, match="1 event"):
        unknown = tracker.update(["a", "a"], [inter.item_ids[1], "no-such-item"], [10, 20])
    assert [(u.user, u.item, u.time) for u in unknown] == [("a", "no-such-item", 20)]
    assert tracker.last_time.tolist() == [10]


def test_recommendations_depend_on_the_request_time():
    inter, tracker = tracker_for()
    tracker.observe_history(inter)
    users = list(inter.user_ids[1:6])
    last = tracker.last_time[:5]
    hour = tracker.recommend(users, at=last + 3600, k=10)
    month = tracker.recommend(users, at=last + 30 * 86400, k=10)
    assert hour.items.shape == (5, 10)
    assert not torch.allclose(hour.scores, month.scores)
    assert not torch.allclose(tracker.forecast(users, at=last + 3600), tracker.forecast(users, at=last + 30 * 86400))
    assert set(hour.items.ravel()) <= set(inter.item_ids[1:])  # original ids, never the padding


def test_exclude_seen_and_request_before_last_event():
    inter, tracker = tracker_for()
    tracker.observe_history(inter)
    user = inter.user_ids[1]
    seen = set(inter.item_ids[inter.item[inter.user_offsets[1]:inter.user_offsets[2]]])
    recs = tracker.recommend([user], at=tracker.last_time[0] + 60, k=10, exclude_seen=True)
    assert not seen & set(recs.items[0])
    with pytest.raises(ValueError, match="before that user's last event"):
        tracker.recommend([user], at=tracker.last_time[0] - 1)
    with pytest.raises(UnknownUserError, match="unknown user id 'nobody'"):
        tracker.recommend(["nobody"], at=0)


def test_save_and_load_round_trip(tmp_path):
    inter, tracker = tracker_for()
    tracker.observe_history(inter)
    tracker.update(["new user"], [inter.item_ids[4]], [2_000_000_000])
    path = tracker.save(tmp_path / "tracker.pt")
    loaded = InterestTracker.load(path)
    users, at = ["new user", inter.user_ids[3]], [2_000_003_600, 2_000_003_600]
    a, b = tracker.recommend(users, at=at, exclude_seen=True), loaded.recommend(users, at=at, exclude_seen=True)
    assert np.array_equal(a.items, b.items)
    torch.testing.assert_close(a.scores, b.scores)
    # Ids given as text find integer ids, as on a command line.
    again = loaded.recommend([str(inter.user_ids[3])], at=at[:1], exclude_seen=True)
    assert np.array_equal(again.items, b.items[1:])


# ------------------------------------------------------------- input checks (issue 12, item 12)
@pytest.mark.parametrize("bad_time, message", [
    (1e30, "between"), (np.uint64(2 ** 63), "between"), (2 ** 64, "between"), (float("nan"), "finite"),
    (float("inf"), "finite"), (-1e13, "between"), ("soon", "numbers"),
])
def test_times_that_would_wrap_are_refused_and_nothing_is_stored(bad_time, message):
    inter, tracker = tracker_for()
    with pytest.raises(ValueError, match=message):
        tracker.update(["a"], [inter.item_ids[1]], np.array([bad_time]) if isinstance(bad_time, np.generic)
                       else [bad_time])
    assert tracker.num_users == 0 and len(tracker.last_time) == 0
    tracker.update(["a"], [inter.item_ids[1]], [1_000])
    with pytest.raises(ValueError, match="at must be"):
        tracker.recommend(["a"], at=[bad_time] if not isinstance(bad_time, np.generic) else np.array([bad_time]))


def test_the_largest_accepted_times_do_not_overflow():
    inter, tracker = tracker_for()
    tracker.update(["a", "a"], [inter.item_ids[1]] * 2, [-62_135_596_800, 253_402_300_799])
    assert tracker.last_time.tolist() == [253_402_300_799]
    assert np.isfinite(tracker.recommend(["a"], at=253_402_300_799).scores.numpy()).all()


@pytest.mark.parametrize("k", [-1, 0, 2.5, True, "3", None])
def test_k_must_be_a_positive_integer(k):
    inter, tracker = tracker_for()
    tracker.update(["a"], [inter.item_ids[1]], [10])
    with pytest.raises(ValueError, match=r"k must be a positive integer"):
        tracker.recommend(["a"], at=20, k=k)


def test_empty_requests_get_empty_answers():
    inter, tracker = tracker_for()
    tracker.update(["a"], [inter.item_ids[1]], [10])
    recs = tracker.recommend([], at=[], k=5)
    assert recs.items.shape == (0, 5) and recs.scores.shape == (0, 5)
    assert tracker.forecast([], at=[]).shape == (0, inter.item_categories.shape[1])
    assert tracker.update([], [], []) == [] and tracker.num_users == 1


@pytest.mark.parametrize("user", [None, float("nan"), np.float64("nan")])
def test_none_and_nan_user_ids_are_refused(user):
    inter, tracker = tracker_for()
    with pytest.raises(ValueError, match=r"users\[1\] is .*user ids must be strings or integers"):
        tracker.update(["ok", user], [inter.item_ids[1]] * 2, [10, 20])
    assert tracker.num_users == 0
    tracker.update(["ok"], [inter.item_ids[1]], [10])
    with pytest.raises(ValueError, match="user ids must be"):
        tracker.recommend([user], at=20)


def test_forget_removes_only_that_user(tmp_path):
    inter, tracker = tracker_for()
    tracker.observe_history(inter)
    users = list(inter.user_ids[1:4])
    at = tracker.last_time[:3] + 60
    before = tracker.recommend(users[1:], at=at[1:])
    assert tracker.forget(users[0]) and not tracker.forget(users[0])
    with pytest.raises(UnknownUserError):
        tracker.recommend([users[0]], at=at[:1])
    loaded = InterestTracker.load(tracker.save(tmp_path / "t.pt"))
    after = loaded.recommend(users[1:], at=at[1:])
    assert np.array_equal(before.items, after.items)
    assert users[0] not in loaded.user_ids and loaded.num_users == inter.num_users - 1
