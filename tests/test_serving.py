"""The one engine (InterestTracker over a store), in Python: events in O(1) each, recommendations at a
request time, the rules every surface (Python, command line, HTTP) shares."""
import functools
import logging

import numpy as np
import pytest
import torch

from interestevo.data.timestamps import iso_utc
from interestevo.models import ModelConfig, build_model
from interestevo.serving import (InterestTracker, MemoryStore, NoEventsError, OutOfOrderError, ServedModel,
                                 TooEarlyError, UnknownItemError, UserStore)
from interestevo.serving import steps
from interestevo.serving import tracker as tracker_module
from interestevo.serving.store import SQLiteStore

from .tiny_data import tiny_dataset

CONFIG = ModelConfig(embedding_size=8, hidden_size=12, num_layers=2, dropout=0.0)


def served_for(name="timelstm", seed=0) -> ServedModel:
    _, inter, _ = tiny_dataset()
    torch.manual_seed(seed)
    model = build_model(name, inter.num_items, CONFIG, torch.from_numpy(inter.item_categories))
    if name == "pop":
        model.fit(torch.from_numpy(inter.item))
    return ServedModel.from_model(model, inter.item_ids, dt_unit=inter.dt_unit, name=name, inter=inter)


def tracker_for(name="timelstm", store: UserStore | None = None):
    _, inter, _ = tiny_dataset()
    return inter, InterestTracker(served_for(name), MemoryStore() if store is None else store)


def stored_states(tracker: InterestTracker, users) -> tuple:
    """The (layers, B, hidden) states the tracker's store holds for ``users``, decoded."""
    records = tracker.store.records(users)
    assert records.keys() == set(users)
    return tracker.served.decode([records[u].state for u in users])


def user_events(inter, u: int):
    """Original item ids and times of user index ``u``'s logged events."""
    span = slice(inter.user_offsets[u], inter.user_offsets[u + 1])
    return inter.item_ids[inter.item[span]], inter.timestamp[span]


def log_users(inter) -> list[str]:
    return [str(u) for u in inter.user_ids[1:]]


def assert_same_answers(got: list[dict], expected: list[dict]) -> None:
    """Equal answers: the same items in the same order, the same fields; scores to float32 rounding
    (a batch of other users may change the last bits of a matrix product)."""
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        assert {**a, "items": None} == {**b, "items": None}
        assert [{**x, "score": None} for x in a["items"]] == [{**x, "score": None} for x in b["items"]]
        np.testing.assert_allclose([x["score"] for x in a["items"]], [x["score"] for x in b["items"]],
                                   rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("window", [7, steps.WINDOW])
@pytest.mark.parametrize("name", ["timelstm", "lstm", "gru", "timelstm-no-dt"])
def test_event_by_event_equals_the_whole_sequence(name, window, monkeypatch):
    # window 7: histories of 8 to 30 events run in several windows, each from the state the last left
    monkeypatch.setattr(tracker_module, "run_sequences", functools.partial(steps.run_sequences, window=window))
    inter, batched = tracker_for(name)
    assert batched.import_log(inter) == (inter.num_users, len(inter))
    streamed = InterestTracker(batched.served, MemoryStore())
    # Interleave users the way a live system sees them: in global time order.
    order = np.argsort(inter.timestamp, kind="stable")
    for chunk in np.array_split(order, 25):
        answer = streamed.update(inter.user_ids[inter.user[chunk]], inter.item_ids[inter.item[chunk]],
                                 inter.timestamp[chunk])
        assert answer == {"applied": len(chunk), "duplicates": 0, "unknown_items": []}
    users = log_users(inter)
    assert sorted(streamed.user_ids()) == sorted(batched.user_ids()) == sorted(users)
    for part, (full, live) in enumerate(zip(stored_states(batched, users), stored_states(streamed, users))):
        # (timelstm's recent events keep float32 hours relative to the last event, summed per call:
        # they agree to a fraction of a second. In one 64-step window a time near the last event is
        # the difference of two sums of ~3000 hours, so it is exact to one float32 ulp of 3000 h,
        # 2.4e-4 h or 0.9 s; the recurrent state and the other parts stay within 1e-4.)
        times = name == "timelstm" and part == 3 and window != 7
        torch.testing.assert_close(live, full, atol=5e-4 if times else 1e-4, rtol=1e-5)
    a, b = batched.store.records(users), streamed.store.records(users)
    for u, user in enumerate(users, start=1):
        items, times = user_events(inter, u)
        assert a[user].last_time == b[user].last_time == times[-1] == batched.last_event_time(user)
        assert a[user].num_events == b[user].num_events == len(items)
        assert a[user].fingerprint == b[user].fingerprint == batched.served.fingerprint
        for tracker in (batched, streamed):
            assert [(e.item, e.time) for e in tracker.store.events(user)] == \
                [(str(i), int(t)) for i, t in zip(items, times)]


def test_importing_a_log_keeps_the_users_the_store_has():
    inter, tracker = tracker_for()
    user = str(inter.user_ids[2])
    tracker.update([user], [inter.item_ids[1]], [1_000])
    own = inter.user_offsets[3] - inter.user_offsets[2]  # that user's logged events
    assert tracker.import_log(inter) == (inter.num_users - 1, len(inter) - own)
    assert tracker.last_event_time(user) == 1_000 and len(tracker.store.events(user)) == 1
    assert tracker.import_log(inter) == (0, 0)  # a second import finds every user stored


def test_many_events_of_one_user_in_one_call_apply_in_order():
    inter, one_call = tracker_for()
    step_by_step = InterestTracker(one_call.served, MemoryStore())
    user = inter.user_ids[1]
    items, times = user_events(inter, 1)
    assert one_call.update([user] * len(items), items, times)["applied"] == len(items)
    for item, t in zip(items, times):
        step_by_step.update([user], [item], [t])
    for a, b in zip(stored_states(one_call, [str(user)]), stored_states(step_by_step, [str(user)])):
        # one call runs the events as a sequence: timelstm's recent-event times (float32 hours,
        # summed per call) agree to a fraction of a second, everything else to float rounding
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-5)
    assert [(e.item, e.time) for e in one_call.store.events(str(user))] == \
        [(e.item, e.time) for e in step_by_step.store.events(str(user))] == \
        [(str(i), int(t)) for i, t in zip(items, times)]


def test_out_of_order_event_is_rejected_and_nothing_applied():
    inter, tracker = tracker_for()
    assert issubclass(OutOfOrderError, ValueError)
    tracker.update(["u1", "u2"], [inter.item_ids[1], inter.item_ids[2]], [1000, 1000])
    before = tracker.store.records(["u1", "u2"])
    with pytest.raises(OutOfOrderError, match=rf"user 'u1' at {iso_utc(999)} is older than that user's last "
                                              rf"event at {iso_utc(1000)}.*nothing was applied"):
        tracker.update(["u2", "u1"], [inter.item_ids[3], inter.item_ids[3]], [2000, 999])
    # u2's valid event in the same call was not applied either
    assert tracker.store.records(["u1", "u2"]) == before
    assert [e.time for e in tracker.store.events("u2")] == [1000]
    assert tracker.last_event_time("u1") == tracker.last_event_time("u2") == 1000
    with pytest.raises(OutOfOrderError, match="older"):  # also within one call
        tracker.update(["u3", "u3"], [inter.item_ids[1]] * 2, [50, 40])
    assert "u3" not in tracker.user_ids() and tracker.store.events("u3") == []
    with pytest.raises(OutOfOrderError):  # and through apply_events
        tracker.apply_events([tracker_module.Event("u1", str(inter.item_ids[1]), 500)])
    assert tracker.store.records(["u1"]) == {"u1": before["u1"]}
    # An event at the same second as the last one is in order.
    assert tracker.update(["u1"], [inter.item_ids[4]], [1000])["applied"] == 1


def test_unknown_items_are_reported_not_applied(caplog):
    inter, tracker = tracker_for()
    with caplog.at_level(logging.WARNING, logger="interestevo.serving"):
        answer = tracker.update(["a", "a", "a"], [inter.item_ids[1], "no-such-item", "no-such-item"], [10, 20, 30])
    assert answer == {"applied": 1, "duplicates": 0, "unknown_items": ["no-such-item"]}
    assert "skipped 2 event(s)" in caplog.text and "no-such-item" in caplog.text
    assert tracker.last_event_time("a") == 10
    assert [(e.item, e.time) for e in tracker.store.events("a")] == [(str(inter.item_ids[1]), 10)]
    # A user whose only events are of unknown items is not created.
    assert tracker.update(["b"], ["no-such-item"], [5]) == {"applied": 0, "duplicates": 0,
                                                            "unknown_items": ["no-such-item"]}
    assert tracker.user_ids() == ["a"]


def test_a_retried_event_id_is_a_duplicate_even_after_later_events():
    inter, tracker = tracker_for()
    items = [str(i) for i in inter.item_ids[1:5]]
    assert tracker.update(["r", "r"], items[:2], [100, 200], ids=["e1", "e2"])["applied"] == 2
    before = tracker.store.records(["r"])
    # e1 is older than r's last event, yet recognised by its id before any order check
    assert tracker.update(["r", "r"], items[:2], [100, 200], ids=["e1", "e2"]) == \
        {"applied": 0, "duplicates": 2, "unknown_items": []}
    assert tracker.store.records(["r"]) == before
    assert tracker.update(["r", "r", "r"], [items[0], items[2], items[2]], [100, 300, 300], ids=["e1", "e3", "e3"]) == \
        {"applied": 1, "duplicates": 2, "unknown_items": []}
    assert [e.id for e in tracker.store.events("r")] == ["e1", "e2", "e3"]
    # ids belong to their user: another user's e1 is new
    assert tracker.update(["s"], [items[0]], [50], ids=["e1"])["applied"] == 1


def test_recommendations_depend_on_the_request_time():
    inter, tracker = tracker_for()
    tracker.import_log(inter)
    users = log_users(inter)[:5]
    last = np.array([tracker.last_event_time(u) for u in users])
    hour = tracker.recommend(users, at=last + 3600, k=10)
    month = tracker.recommend(users, at=last + 30 * 86400, k=10)
    assert [a["user"] for a in hour] == users
    for h, m, t in zip(hour, month, last):
        assert h["cold_start"] is False and h["model"] == "timelstm"
        assert h["at"] == t + 3600 and h["hours_since_last_event"] == pytest.approx(1.0)
        assert m["hours_since_last_event"] == pytest.approx(720.0)
        assert len(h["items"]) == len(m["items"]) == 10
        for entry in h["items"]:  # original ids (integers stay integers), never the padding
            assert type(entry["item"]) is int and entry["item"] in set(inter.item_ids[1:].tolist())
            assert entry["categories"] and set(entry["categories"]) <= set(inter.category_names)
    scores = lambda answers: np.array([[x["score"] for x in a["items"]] for a in answers])
    assert not np.allclose(scores(hour), scores(month))
    soon = [tracker.interest(u, int(t) + 3600)["interest"] for u, t in zip(users, last)]
    later = [tracker.interest(u, int(t) + 30 * 86400)["interest"] for u, t in zip(users, last)]
    assert all(sum(f.values()) == pytest.approx(1.0, abs=1e-4) for f in soon + later)
    assert not np.allclose([list(f.values()) for f in soon], [list(f.values()) for f in later])
    # One time for all users, or one each; ids given as text or as integers find the same user.
    one = tracker.recommend(users[0], at=int(last[0]) + 3600, k=10)
    assert_same_answers(one, hour[:1])
    assert tracker.recommend([int(users[0])], at=[int(last[0]) + 3600], k=10) == one


def test_exclude_seen_and_request_before_last_event():
    inter, tracker = tracker_for()
    tracker.import_log(inter)
    user = inter.user_ids[1]
    items, times = user_events(inter, 1)
    seen = set(items.tolist())
    last = int(times[-1])
    recs = tracker.recommend([user], at=last + 60, k=10, exclude_seen=True)[0]
    assert len(recs["items"]) == 10 and not seen & {x["item"] for x in recs["items"]}
    plain = tracker.recommend([user], at=last + 60, k=len(seen) + 10)[0]
    assert seen & {x["item"] for x in plain["items"]}  # without the flag, seen items are candidates
    assert tracker.recommend([user], at=last, k=3)[0]["hours_since_last_event"] == 0
    assert issubclass(TooEarlyError, ValueError)
    with pytest.raises(TooEarlyError, match=rf"at={iso_utc(last - 1)} is before the last event of user "
                                            rf"'{user}', at {iso_utc(last)}"):
        tracker.recommend([user], at=last - 1)
    with pytest.raises(TooEarlyError):  # also among other users' valid requests
        tracker.recommend([inter.user_ids[2], user], at=[last + 10 ** 8, last - 1])
    with pytest.raises(TooEarlyError):
        tracker.interest(str(user), last - 1)
    # The service's call answers each request: the early one is its error, the others answered.
    answers = tracker.answer([tracker_module.RecommendRequest(str(user), last - 1, 5),
                              tracker_module.RecommendRequest(str(user), last + 1, 5)])
    assert isinstance(answers[0], TooEarlyError) and answers[1]["items"]


def test_an_unknown_user_gets_the_items_most_popular_before_the_request_time():
    inter, tracker = tracker_for()
    tracker.import_log(inter)
    at = int(np.quantile(inter.timestamp, 0.3))
    counts = np.bincount(inter.item[inter.timestamp < at], minlength=inter.num_items + 1)
    answer = tracker.recommend("nobody", at=at, k=5)[0]
    assert answer["cold_start"] is True and answer["hours_since_last_event"] is None
    assert answer["user"] == "nobody" and answer["at"] == at
    got = [x["score"] for x in answer["items"]]
    assert got == sorted(counts[1:], reverse=True)[:5]
    index = {item: i for i, item in enumerate(inter.item_ids.tolist())}
    assert [counts[index[x["item"]]] for x in answer["items"]] == got
    assert tracker.recommend("x", at=0)[0]["items"] == []  # before the log: nothing was popular yet
    # Mixed with known users in one call; nothing is stored for the unknown one.
    known = log_users(inter)[0]
    both = tracker.recommend([known, "nobody"], at=int(inter.timestamp.max()) + 60, k=5)
    assert [a["cold_start"] for a in both] == [False, True]
    assert "nobody" not in tracker.user_ids()
    forecast = tracker.interest("nobody", at)
    assert forecast["cold_start"] is True
    np.testing.assert_allclose(list(forecast["interest"].values()),
                               counts @ inter.item_categories / counts.sum(), rtol=1e-5)
    # A model given in Python without a log knows no popularity: its cold starts get no items.
    _, without_log = tracker_for()
    without_log.served = ServedModel.from_model(without_log.served.model, inter.item_ids, dt_unit=inter.dt_unit)
    assert without_log.recommend("nobody", at=at, k=5)[0]["items"] == []


def test_other_weights_recompute_the_stored_states_they_did_not_compute():
    # What a reload does: the stored states carry the fingerprint of the weights that computed them.
    inter, tracker = tracker_for()
    tracker.import_log(inter)
    other = served_for(seed=1)
    assert other.fingerprint != tracker.served.fingerprint
    fresh = InterestTracker(other, MemoryStore())
    fresh.import_log(inter)
    users = log_users(inter)[:4]
    at = [tracker.last_event_time(u) + 600 for u in users]
    tracker.swap(other)
    assert_same_answers(tracker.recommend(users, at=at), fresh.recommend(users, at=at))  # replayed when read
    tracker.update([users[0]], [inter.item_ids[3]], [at[0]])  # a stale state is replayed before an event
    fresh.update([users[0]], [inter.item_ids[3]], [at[0]])
    torch.testing.assert_close(stored_states(tracker, users[:1]), stored_states(fresh, users[:1]), atol=1e-6,
                               rtol=1e-6)
    assert tracker.recompute(log_users(inter)) == (inter.num_users - 1, 0)
    for full, replayed in zip(stored_states(fresh, log_users(inter)), stored_states(tracker, log_users(inter))):
        torch.testing.assert_close(replayed, full, atol=1e-6, rtol=1e-6)
    assert tracker.recompute(log_users(inter)) == (0, 0)


def test_state_round_trips_through_a_durable_store(tmp_path):
    inter, tracker = tracker_for(store=SQLiteStore(tmp_path / "serving.db"))
    tracker.import_log(inter)
    tracker.update(["new user"], [inter.item_ids[4]], [2_000_000_000])
    users, at = ["new user", str(inter.user_ids[3])], [2_000_003_600, 2_000_003_600]
    before = tracker.recommend(users, at=at, exclude_seen=True)
    tracker.store.close()
    reopened = InterestTracker(served_for(), SQLiteStore(tmp_path / "serving.db"))
    try:
        assert reopened.recommend(users, at=at, exclude_seen=True) == before
        # Ids given as text find integer ids, as on a command line.
        assert_same_answers(reopened.recommend([int(inter.user_ids[3])], at=at[:1], exclude_seen=True), before[1:])
    finally:
        reopened.store.close()


def score_of(tracker: InterestTracker, user, item, at) -> float:
    """``item``'s score for ``user`` at ``at``, from a recommendation over the whole catalogue."""
    answer = tracker.recommend(user, at=at, k=tracker.served.model.num_items)[0]
    return next(x["score"] for x in answer["items"] if str(x["item"]) == str(item))


def test_an_explanation_is_the_score_without_each_recent_event():
    inter, tracker = tracker_for()
    items = inter.item_ids[1:]
    history = [(items[(7 * j) % len(items)], 1_700_000_000 + 1800 * j) for j in range(55)]  # 5 beyond the 50
    tracker.update(["x"] * 55, [i for i, _ in history], [t for _, t in history])
    at, target = history[-1][1] + 86400, items[3]
    answer = tracker.explain("x", str(target), at)
    assert answer["item"] == target and answer["at"] == at and answer["model"] == "timelstm"
    assert [(e["item"], e["time"]) for e in answer["events"]] == history[-50:]

    def scored(events, when):  # by a tracker that saw only ``events``
        fresh = InterestTracker(tracker.served, MemoryStore())
        fresh.update(["x"] * len(events), [i for i, _ in events], [t for _, t in events])
        return score_of(fresh, "x", target, when)

    full = score_of(tracker, "x", target, at)
    assert answer["score"] == pytest.approx(full, abs=1e-5)
    for j in (0, 31, 49):
        without = history[:5 + j] + history[5 + j + 1:]
        assert answer["events"][j]["contribution"] == pytest.approx(full - scored(without, at), abs=1e-4)
    assert answer["elapsed_time_effect"] == pytest.approx(full - scored(history, history[-1][1]), abs=1e-5)
    with pytest.raises(NoEventsError, match="user 'nobody' has no events"):
        tracker.explain("nobody", str(target), at)
    with pytest.raises(UnknownItemError, match="no-such"):
        tracker.explain("x", "no-such", at)
    with pytest.raises(TooEarlyError):
        tracker.explain("x", str(target), history[-1][1] - 1)


def test_interest_and_explanations_read_ids_and_times_as_recommendations_do():
    # One rule for ids (an integer id finds the user or item stored as text) and one clock
    # (seconds, ms or µs by magnitude, ISO 8601) on every method of the Python API.
    inter, tracker = tracker_for()
    tracker.import_log(inter)
    user = inter.user_ids[1]
    last = tracker.last_event_time(user)
    iso = iso_utc(last + 3600)
    expected = tracker.interest(str(user), last + 3600)
    assert expected["cold_start"] is False
    for who, when in ((int(user), last + 3600), (user, last + 3600), (str(user), iso),
                      (str(user), (last + 3600) * 1000)):
        got = tracker.interest(who, when)
        assert got["user"] == str(user) and got["at"] == last + 3600 and got == expected
    explained = tracker.explain(str(user), str(inter.item_ids[2]), last + 3600)
    for who, item, when in ((int(user), int(inter.item_ids[2]), last + 3600), (user, inter.item_ids[2], iso)):
        assert tracker.explain(who, item, when) == explained
    with pytest.raises(ValueError, match="is no time"):
        tracker.interest(str(user), "soon")


# ------------------------------------------------------------- input checks (issue 12, item 12)
# Times are read as on every surface (data/timestamps.py, issue 24 "one clock"): unix seconds,
# milliseconds or microseconds by magnitude, or ISO 8601; years 1 to 9999, so nothing can wrap.
@pytest.mark.parametrize("bad_time, message", [
    (1e30, "can be stored"), (np.uint64(2 ** 63), "can be stored"), (2 ** 64, "can be stored"),
    (float("nan"), "can be stored"), (float("inf"), "can be stored"), (-1e18, "can be stored"),
    (253_402_300_800_000_000, "can be stored"),  # one microsecond-second past the year 9999
    ("soon", "is no time"), ("01/02/2024", "is no time"), (None, "is no time"),
])
def test_times_that_would_wrap_are_refused_and_nothing_is_stored(bad_time, message):
    inter, tracker = tracker_for()
    expected = "expected finite unix seconds, milliseconds or microseconds .* between the years 1 and 9999"
    alone = np.array([bad_time]) if isinstance(bad_time, np.generic) else [bad_time]
    with pytest.raises(ValueError, match=rf"times\[0\] .*{message}.*{expected}"):
        tracker.update(["a"], [inter.item_ids[1]], alone)
    with pytest.raises(ValueError, match=rf"times\[1\] .*{message}.*{expected}"):  # after a valid time
        tracker.update(["a", "a"], [inter.item_ids[1]] * 2,
                       np.array([10, bad_time]) if isinstance(bad_time, np.generic) else [10, bad_time])
    assert tracker.user_ids() == [] and tracker.store.count_users() == 0
    tracker.update(["a"], [inter.item_ids[1]], [1_000])
    with pytest.raises(ValueError, match=rf"at\b.*{message}.*{expected}"):
        tracker.recommend(["a"], at=alone)
    assert tracker.last_event_time("a") == 1_000


def test_a_boolean_is_no_time_even_among_numbers():
    # HTTP refuses a boolean time (issue 24: every surface refuses the same forms); so does the
    # Python API, alone or after a valid time: True must not become 1970-01-01T00:00:01Z.
    inter, tracker = tracker_for()
    for times in ([True], [10, True], np.array([10, True], dtype=object)):
        with pytest.raises(ValueError, match="True is no time"):
            tracker.update(["a"] * len(times), [inter.item_ids[1]] * len(times), times)
        assert tracker.user_ids() == []
    tracker.update(["a"], [inter.item_ids[1]], [1_000])
    for at in (True, [True], [1_000, True]):
        with pytest.raises(ValueError, match="True is no time"):
            tracker.recommend(["a"] * (len(at) if isinstance(at, list) else 1), at=at)


def test_times_are_read_as_on_every_surface():
    inter, tracker = tracker_for()
    t0 = 1_700_000_000
    tracker.update(["a", "a", "a"], [inter.item_ids[1]] * 3, [t0, (t0 + 60) * 1000, "2023-11-14T22:15:00Z"])
    assert [e.time for e in tracker.store.events("a")] == [t0, t0 + 60, t0 + 100]
    at = [t0 + 3700, (t0 + 3700) * 1_000_000, "2023-11-14T23:15:00+00:00", t0 + 3700.9]
    answers = tracker.recommend(["a"] * 4, at=at)
    assert [a["at"] for a in answers] == [t0 + 3700] * 4  # fractions floored
    assert all(a["hours_since_last_event"] == 1.0 for a in answers)


def test_the_largest_accepted_times_do_not_overflow():
    inter, tracker = tracker_for()
    # the first second of the year 1 (as seconds) and the last of 9999 (as ISO and as microseconds)
    tracker.update(["a", "a", "a"], [inter.item_ids[1]] * 3,
                   [-62_135_596_800, "9999-12-31T23:59:59Z", 253_402_300_799_000_000])
    assert [e.time for e in tracker.store.events("a")] == [-62_135_596_800, 253_402_300_799, 253_402_300_799]
    assert tracker.last_event_time("a") == 253_402_300_799
    answer = tracker.recommend(["a"], at="9999-12-31T23:59:59Z")[0]
    assert answer["at"] == 253_402_300_799 and answer["hours_since_last_event"] == 0
    assert len(answer["items"]) == 10 and np.isfinite([x["score"] for x in answer["items"]]).all()


@pytest.mark.parametrize("k", [-1, 0, 2.5, True, "3", None])
def test_k_must_be_a_positive_integer(k):
    inter, tracker = tracker_for()
    tracker.update(["a"], [inter.item_ids[1]], [10])
    with pytest.raises(ValueError, match=r"k must be a positive integer"):
        tracker.recommend(["a"], at=20, k=k)
    with pytest.raises(ValueError, match=r"k must be a positive integer"):  # cold starts too
        tracker.recommend(["nobody"], at=20, k=k)


def test_empty_requests_get_empty_answers():
    inter, tracker = tracker_for()
    tracker.update(["a"], [inter.item_ids[1]], [10])
    assert tracker.recommend([], at=[], k=5) == []
    assert tracker.answer([]) == []
    assert tracker.update([], [], []) == {"applied": 0, "duplicates": 0, "unknown_items": []}
    assert tracker.apply_events([]) == {"applied": 0, "duplicates": 0, "unknown_items": []}
    assert tracker.user_ids() == ["a"]


def test_mismatched_lengths_are_refused():
    inter, tracker = tracker_for()
    with pytest.raises(ValueError, match="same length"):
        tracker.update(["a", "b"], [inter.item_ids[1]], [10, 20])
    with pytest.raises(ValueError, match="same length"):
        tracker.update(["a"], [inter.item_ids[1]], [10], ids=["x", "y"])
    assert tracker.user_ids() == []


@pytest.mark.parametrize("user", [None, float("nan"), np.float64("nan")])
def test_none_and_nan_user_ids_are_refused(user):
    inter, tracker = tracker_for()
    with pytest.raises(ValueError, match=r"users\[1\] is .*user ids must be strings or integers"):
        tracker.update(["ok", user], [inter.item_ids[1]] * 2, [10, 20])
    assert tracker.user_ids() == []
    tracker.update(["ok"], [inter.item_ids[1]], [10])
    with pytest.raises(ValueError, match="user ids must be"):
        tracker.recommend([user], at=20)
    assert tracker.user_ids() == ["ok"]


def test_forget_removes_only_that_user():
    inter, tracker = tracker_for()
    tracker.import_log(inter)
    users = log_users(inter)[:3]
    at = [tracker.last_event_time(u) + 60 for u in users]
    before = tracker.recommend(users[1:], at=at[1:])
    assert tracker.forget(users[0]) and not tracker.forget(users[0])
    assert tracker.store.records([users[0]]) == {} and tracker.store.events(users[0]) == []
    assert tracker.store.seen_items([users[0]]) == {users[0]: {}}
    assert tracker.last_event_time(users[0]) is None
    assert tracker.recommend([users[0]], at=at[:1])[0]["cold_start"] is True  # a forgotten user is unknown
    assert tracker.recommend(users[1:], at=at[1:]) == before
    assert users[0] not in tracker.user_ids() and len(tracker.user_ids()) == inter.num_users - 1
    assert tracker.forget(inter.user_ids[2])  # the integer id finds the user stored as text
    assert users[1] not in tracker.user_ids() and len(tracker.user_ids()) == inter.num_users - 2
