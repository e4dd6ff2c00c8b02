"""The stores' transaction contract, below HTTP: which of the asked event ids are already applied."""
from __future__ import annotations

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
