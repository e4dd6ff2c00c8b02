"""The stores' contract, below the engine and HTTP, the same for the three stores (memory, SQLite,
Redis): atomic transactions, idempotent event ids, seen items, delete, recent events."""
from __future__ import annotations

import multiprocessing
import threading
import time

import pytest

from interestevo.serving.store import (Changes, MemoryStore, RedisStore, SQLiteStore, StoredEvent, UserRecord,
                                       open_store)


def open_kind(kind: str, request, tmp_path):
    if kind == "memory":
        return open_store("memory://")
    if kind == "sqlite":
        return open_store(f"sqlite:///{tmp_path / 'store.db'}")
    return open_store(request.getfixturevalue("redis_server").url)


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store(request, tmp_path):
    """Each of the three stores, empty."""
    opened = open_kind(request.param, request, tmp_path)
    yield opened
    opened.close()


@pytest.fixture(params=["sqlite", "redis"])
def durable(request, tmp_path):
    """(store, reopen): the stores whose data outlive the object (reopen: the same data, anew)."""
    opened = [open_kind(request.param, request, tmp_path)]

    def reopen():
        opened[-1].close()
        opened.append(open_kind(request.param, request, tmp_path))
        return opened[-1]

    yield opened[0], reopen
    opened[-1].close()


def test_urls_open_the_three_stores(tmp_path, redis_server):
    assert isinstance(open_store("memory://"), MemoryStore)
    assert open_store("memory://").records(["u"]) == {}  # each memory:// is a store of its own
    sqlite = open_store(f"sqlite:///{tmp_path / 's.db'}")
    assert isinstance(sqlite, SQLiteStore)
    sqlite.close()
    redis = open_store(redis_server.url)
    assert isinstance(redis, RedisStore)
    redis.close()
    default = open_store(None, default_path=tmp_path / "default.db")
    assert isinstance(default, SQLiteStore) and default.path == tmp_path / "default.db"
    default.close()
    for url, message in (("sqlite:///", "needs a file path"), ("postgres://x", "expected sqlite"),
                         (f"sqlite:///{tmp_path}/no/such/dir/s.db", "does not exist"), ("memory", "expected sqlite")):
        with pytest.raises(ValueError, match=message):
            open_store(url)


def append(store, events: dict[str, list[StoredEvent]]):
    ids = {user: [e.id for e in evs if e.id is not None] for user, evs in events.items()}

    def compute(snapshot):  # as the engine does: appends only the events not applied yet
        changes = Changes()
        for user, evs in events.items():
            fresh = [e for e in evs if e.id not in snapshot.known_ids.get(user, set())]
            before = snapshot.records[user].num_events if user in snapshot.records else 0
            changes.events[user] = fresh
            changes.records[user] = UserRecord(b"state", "weights", evs[-1].time, before + len(fresh))
        return changes, snapshot.known_ids

    return store.transact(list(events), ids, compute)


def test_known_event_ids_are_found_per_user_across_many_users(store):
    # 300 users x 2 ids: more pairs than one SQLite query takes
    first = {f"u{n}": [StoredEvent("i1", 10, f"e{n}"), StoredEvent("i2", 11, "shared")] for n in range(300)}
    assert append(store, first) == {user: set() for user in first}
    again = {f"u{n}": [StoredEvent("i3", 12, f"e{n}" if n % 3 else f"new{n}"), StoredEvent("i3", 12, "shared"),
                       StoredEvent("i3", 13, f"e{n + 1}")] for n in range(301)}
    known = append(store, again)
    for n in range(300):
        expected = {"shared"} | ({f"e{n}"} if n % 3 else set())
        assert known[f"u{n}"] == expected, n  # another user's e{n+1} is not this user's
    assert known["u300"] == set()


def _write_without_pause(path: str, user: str, seconds: float, results) -> None:
    store = open_store(f"sqlite:///{path}")
    worst, count, end = 0.0, 0, time.monotonic() + seconds
    while time.monotonic() < end:
        start = time.monotonic()
        store.transact([user], {}, lambda snapshot: (Changes(records={user: UserRecord(b"s", "w", count, 0)}), None))
        worst, count = max(worst, time.monotonic() - start), count + 1
    store.close()
    results.put((user, count, worst))


def test_two_sqlite_writers_take_turns(tmp_path):
    """SQLite's busy handler sleeps up to 100 ms between tries, so without a queue of its own one
    process writing without pause kept another's transaction waiting for 4.6 s."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    writers = [context.Process(target=_write_without_pause, args=(str(tmp_path / "s.db"), f"u{n}", 3.0, results))
               for n in range(2)]
    for writer in writers:
        writer.start()
    outcomes = [results.get(timeout=60) for _ in writers]
    for writer in writers:
        writer.join(timeout=10)
    for user, count, worst in outcomes:
        assert worst < 1.0, f"{user} waited {worst:.2f} s for one transaction ({count} written)"
    written = open_store(f"sqlite:///{tmp_path / 's.db'}")
    assert written.records(["u0", "u1"]).keys() == {"u0", "u1"}
    written.close()


def test_sqlite_checkpoints_in_the_background_and_stops_on_close(tmp_path):
    path = tmp_path / "store.db"
    store = open_store(f"sqlite:///{path}")
    before = path.stat().st_size
    # far fewer pages than SQLite's own checkpoint waits for: only the background one copies them
    append(store, {f"u{n}": [StoredEvent("i1", 10, f"e{n}")] for n in range(2000)})
    deadline = time.monotonic() + 10
    while path.stat().st_size == before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert path.stat().st_size > before, "the WAL was not checkpointed into the database file"
    store.close()
    assert not store._checkpointer.is_alive()
    reopened = open_store(f"sqlite:///{path}")
    assert reopened.records(["u0", "u1999"]).keys() == {"u0", "u1999"}
    reopened.close()


def test_reads_do_not_wait_for_a_transaction_and_see_the_last_commit(durable):
    # Recommendations read on the service's event loop while events are being written: a read must
    # answer at once, with the committed state, not wait for the writer.
    store, _ = durable
    append(store, {"u": [StoredEvent("i1", 10, "e1")]})
    inside, release = threading.Event(), threading.Event()

    def slow_compute(snapshot):
        inside.set()
        release.wait(10)
        return Changes(records={"u": UserRecord(b"new", "weights", 20, 2)},
                       events={"u": [StoredEvent("i2", 20, "e2")]}), None

    writer = threading.Thread(target=store.transact, args=(["u"], {}, slow_compute))
    writer.start()
    try:
        assert inside.wait(10)
        start = time.monotonic()
        assert store.records(["u"])["u"].state == b"state"
        assert [e.id for e in store.events("u")] == ["e1"]
        assert store.seen_items(["u"]) == {"u": {"i1": 10}}
        assert time.monotonic() - start < 1
    finally:
        release.set()
        writer.join()
    assert store.records(["u"])["u"].state == b"new"
    assert [e.id for e in store.events("u")] == ["e1", "e2"]


# ------------------------------------------------------------------- the contract, every store
def record(time: int, num_events: int, state: bytes = b"state") -> UserRecord:
    return UserRecord(state, "weights", time, num_events)


def test_a_transaction_writes_all_of_its_changes_or_none(store):
    append(store, {"a": [StoredEvent("i1", 10, "a1")], "b": [StoredEvent("i1", 10, "b1")]})
    before = store.records(["a", "b"]), store.events("a"), store.events("b")
    seen = []

    def compute(snapshot):
        seen.append(sorted(snapshot.records))
        assert snapshot.records["a"].num_events == 1 and "new" not in snapshot.records  # no record: absent
        assert [e.id for e in snapshot.read_events("a")] == ["a1"]
        raise RuntimeError("the model failed half way")

    with pytest.raises(RuntimeError, match="half way"):
        store.transact(["a", "b", "new"], {"a": ["a2"]}, compute)
    assert seen == [["a", "b"]]
    assert (store.records(["a", "b", "new"]), store.events("a"), store.events("b")) == before
    assert store.events("new") == [] and sorted(store.user_ids()) == ["a", "b"] and store.count_users() == 2
    # A transaction's result is compute's; its changes to several users land together.
    result = store.transact(["a", "new"], {}, lambda snapshot: (Changes(
        records={"a": record(20, 2, b"a2"), "new": record(30, 1, b"n1")},
        events={"a": [StoredEvent("i2", 20, "a2")], "new": [StoredEvent("i3", 30, None)]}), "done"))
    assert result == "done"
    assert store.records(["a", "new"]) == {"a": record(20, 2, b"a2"), "new": record(30, 1, b"n1")}
    assert store.events("a") == [StoredEvent("i1", 10, "a1"), StoredEvent("i2", 20, "a2")]
    assert store.events("new") == [StoredEvent("i3", 30, None)]
    assert sorted(store.user_ids()) == ["a", "b", "new"] and store.count_users() == 3


def test_concurrent_transactions_lose_no_update(store):
    # Each transaction reads the user's count and writes count + 1 (what an event does to a user's
    # state): serialised, none is lost, whichever thread runs when.
    def add_one(n: int):
        def compute(snapshot):
            before = snapshot.records["u"].num_events if "u" in snapshot.records else 0
            time.sleep(0.001)  # widen the window between read and write
            return Changes(records={"u": record(n, before + 1)}, events={"u": [StoredEvent("i", n, f"e{n}")]}), None
        store.transact(["u"], {"u": [f"e{n}"]}, compute)

    threads = [threading.Thread(target=lambda k=k: [add_one(100 * k + j) for j in range(15)]) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.records(["u"])["u"].num_events == 60
    assert sorted(e.id for e in store.events("u")) == sorted(f"e{100 * k + j}" for k in range(4) for j in range(15))


def test_event_ids_make_a_retry_idempotent(store):
    assert append(store, {"u": [StoredEvent("i1", 10, "e1"), StoredEvent("i2", 20, None)]}) == {"u": set()}
    # the retry: e1 is known, whatever its item and time; an event without id is always new
    assert append(store, {"u": [StoredEvent("other", 5, "e1"), StoredEvent("i3", 30, "e2")]}) == {"u": {"e1"}}
    assert [(e.item, e.time, e.id) for e in store.events("u")] == [("i1", 10, "e1"), ("i2", 20, None),
                                                                   ("i3", 30, "e2")]
    assert store.records(["u"])["u"].num_events == 3
    assert append(store, {"u": [StoredEvent("i3", 30, "e2")], "v": [StoredEvent("i1", 10, "e2")]}) == \
        {"u": {"e2"}, "v": set()}  # an id belongs to its user
    assert [e.id for e in store.events("v")] == ["e2"]


def test_seen_items_are_each_users_items_with_their_latest_time(store):
    append(store, {"u": [StoredEvent("i1", 10, None), StoredEvent("i2", 20, None), StoredEvent("i1", 30, None),
                         StoredEvent("i3", 30, None)],
                   "v": [StoredEvent("i2", 5, None)]})
    assert store.seen_items(["u", "v", "nobody"]) == {"u": {"i1": 30, "i2": 20, "i3": 30}, "v": {"i2": 5},
                                                      "nobody": {}}
    assert store.seen_items([]) == {}
    many = {f"m{n}": [StoredEvent(f"i{n % 7}", n, None)] for n in range(600)}  # beyond one SQLite query
    append(store, many)
    seen = store.seen_items(list(many))
    assert seen == {f"m{n}": {f"i{n % 7}": n} for n in range(600)}


def test_delete_erases_only_that_user(store):
    append(store, {"gone": [StoredEvent("i1", 10, "e1"), StoredEvent("i2", 20, "e2")],
                   "kept": [StoredEvent("i1", 10, "e1")]})
    assert store.count_users() == 2
    assert store.delete("gone") is True
    assert store.records(["gone", "kept"]).keys() == {"kept"}
    assert store.events("gone") == [] and store.events("gone", last=1) == []
    assert store.seen_items(["gone"]) == {"gone": {}}
    assert list(store.user_ids()) == ["kept"] and store.count_users() == 1
    assert [e.id for e in store.events("kept")] == ["e1"] and store.seen_items(["kept"]) == {"kept": {"i1": 10}}
    assert store.delete("gone") is False and store.delete("never") is False
    # Its event ids went with it: the same ids are new events of a new user of that name.
    assert append(store, {"gone": [StoredEvent("i3", 30, "e1")]}) == {"gone": set()}
    assert [(e.item, e.id) for e in store.events("gone")] == [("i3", "e1")]
    assert store.records(["gone"])["gone"].num_events == 1


@pytest.mark.parametrize("last", [0, 1, 3, 5, 9, None])
def test_events_last_n_are_the_newest_in_order(store, last):
    events = [StoredEvent(f"i{n}", 10 * n, f"e{n}") for n in range(5)]
    append(store, {"u": events[:2]})
    append(store, {"u": events[2:]})
    expected = events if last is None else events[len(events) - min(last, len(events)):]
    assert store.events("u", last=last) == expected
    assert store.events("nobody", last=last) == []


def test_user_ids_are_the_users_with_a_record(store):
    append(store, {f"u{n}": [StoredEvent("i", n, None)] for n in (3, 1, 2)})
    store.transact(["events-only?"], {}, lambda snapshot: (Changes(), None))  # nothing written
    assert sorted(store.user_ids()) == ["u1", "u2", "u3"] and store.count_users() == 3
    assert store.size_bytes() > 0
    store.ping()


def test_what_a_durable_store_wrote_outlives_it(durable):
    store, reopen = durable
    append(store, {"u": [StoredEvent("i1", 10, "e1"), StoredEvent("i2", 20, "e2")], "v": [StoredEvent("i1", 5, "x")]})
    store.delete("v")
    again = reopen()
    assert again.records(["u", "v"]) == {"u": record(20, 2)}
    assert again.events("u") == [StoredEvent("i1", 10, "e1"), StoredEvent("i2", 20, "e2")]
    assert append(again, {"u": [StoredEvent("i2", 20, "e2")]}) == {"u": {"e2"}}  # the ids too
    assert again.events("v") == [] and list(again.user_ids()) == ["u"]


def test_a_forgotten_users_bytes_leave_the_sqlite_files(tmp_path):
    # secure_delete overwrites the rows, and the write-ahead log's copies are checkpointed away.
    path = tmp_path / "store.db"
    store = open_store(f"sqlite:///{path}")
    secret = b"SECRET-STATE-" * 8
    store.transact(["gone"], {}, lambda snapshot: (Changes(
        records={"gone": UserRecord(secret, "weights", 10, 1)},
        events={"gone": [StoredEvent("ITEM-OF-GONE-USER", 10, "EVENT-ID-OF-GONE")]}), None))
    append(store, {"kept": [StoredEvent("i1", 10, "e1")]})
    files = lambda: b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("store.db"))
    assert secret in files()
    assert store.delete("gone")
    for needle in (secret, b"ITEM-OF-GONE-USER", b"EVENT-ID-OF-GONE", b"gone"):
        assert needle not in files(), needle
    store.close()
