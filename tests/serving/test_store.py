"""The stores' transaction contract, below HTTP: which of the asked event ids are already applied."""
from __future__ import annotations

import multiprocessing
import threading
import time

import pytest

from interestevo.serving.store import Changes, StoredEvent, UserRecord, open_store


@pytest.fixture(params=["sqlite", "redis"])
def store(request, tmp_path):
    if request.param == "sqlite":
        opened = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    else:
        opened = open_store(request.getfixturevalue("redis_server").url)
    yield opened
    opened.close()


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


def test_reads_do_not_wait_for_a_transaction_and_see_the_last_commit(store):
    # Recommendations read on the service's event loop while events are being written: a read must
    # answer at once, with the committed state, not wait for the writer.
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
