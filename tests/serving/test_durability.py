"""kill -9 of the server while clients post events: every acknowledged event survives, exactly once,
and the states equal those of an uninterrupted run bitwise."""
from __future__ import annotations

import sqlite3
import threading
import time

import httpx
import pytest

from .conftest import Server
from .test_http import T0, catalogue

USERS = [f"user-{n}" for n in range(6)]


def requests_of(user: int, items: list) -> list[list[dict]]:
    """One user's events in requests of 1 to 3 events, each with an id (so a retry is safe)."""
    events = [{"user": USERS[user], "item": items[(5 * user + 3 * j) % len(items)], "time": T0 + 300 * j + user,
               "id": f"{USERS[user]}-{j}"} for j in range(36)]
    sizes = [1 + (user + j) % 3 for j in range(len(events))]
    out, start = [], 0
    for size in sizes:
        if start >= len(events):
            break
        out.append(events[start:start + size])
        start += size
    return out


def post_all(url: str, requests: list[list[dict]], acknowledged: list[int], start: int = 0) -> int:
    """Post requests in order from ``start``; returns where it stopped (len(requests): all done)."""
    with httpx.Client(base_url=url, timeout=30) as client:
        for n in range(start, len(requests)):
            try:
                answer = client.post("/v1/events", json={"events": requests[n]})
            except httpx.TransportError:
                return n  # the server died during this request: it may or may not have been applied
            assert answer.status_code == 200, answer.text
            acknowledged.append(n)
    return len(requests)


def stored(path) -> tuple[dict, dict]:
    with sqlite3.connect(path) as db:
        users = {u: (state, last, num) for u, state, last, num in
                 db.execute("SELECT user, state, last_time, num_events FROM users")}
        events = {}
        for user, event_id in db.execute("SELECT user, event_id FROM events ORDER BY user, seq"):
            events.setdefault(user, []).append(event_id)
    return users, events


def test_kill_9_while_posting_loses_no_acknowledged_event_and_applies_each_once(small_run, tmp_path):
    items = catalogue(small_run)
    plans = [requests_of(u, items) for u in range(len(USERS))]
    total = sum(map(len, plans))
    crashed_store = tmp_path / "crashed.db"
    server = Server(small_run, store=f"sqlite:///{crashed_store}")
    acknowledged = [[] for _ in USERS]
    stopped_at = [0] * len(USERS)

    def client(u):
        stopped_at[u] = post_all(server.url, plans[u], acknowledged[u])

    threads = [threading.Thread(target=client, args=(u,)) for u in range(len(USERS))]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 300
    while sum(map(len, acknowledged)) < total * 0.4 and time.monotonic() < deadline:
        time.sleep(0.01)
    server.kill()
    for thread in threads:
        thread.join()
    done_before = sum(map(len, acknowledged))
    assert 0 < done_before < total, "the kill came too late to test anything"
    # What was acknowledged is there, and nothing half-written is.
    _, events_after_crash = stored(crashed_store)
    for u, user in enumerate(USERS):
        ids = [e["id"] for n in acknowledged[u] for e in plans[u][n]]
        assert events_after_crash.get(user, [])[:len(ids)] == ids

    restarted = Server(small_run, store=f"sqlite:///{crashed_store}")
    try:
        for u in range(len(USERS)):  # each client retries its unanswered request, then goes on
            assert post_all(restarted.url, plans[u], acknowledged[u], stopped_at[u]) == len(plans[u])
    finally:
        restarted.stop()

    calm_store = tmp_path / "uninterrupted.db"
    calm = Server(small_run, store=f"sqlite:///{calm_store}")
    try:
        for u in range(len(USERS)):
            post_all(calm.url, plans[u], [])
    finally:
        calm.stop()
    crashed_users, crashed_events = stored(crashed_store)
    calm_users, calm_events = stored(calm_store)
    for u, user in enumerate(USERS):
        assert crashed_events[user] == [e["id"] for r in plans[u] for e in r]  # every event exactly once
    assert crashed_events == calm_events
    assert crashed_users == calm_users  # states as bytes: bitwise equal


@pytest.mark.parametrize("store", ["sqlite", "redis"])
def test_state_survives_a_restart(store, small_run, tmp_path, request):
    url = f"sqlite:///{tmp_path / 's.db'}" if store == "sqlite" else request.getfixturevalue("redis_server").url
    items = catalogue(small_run)
    first = Server(small_run, store=url)
    first.client.post("/v1/events", json={"events": [{"user": "s", "item": items[2], "time": T0, "id": "a"},
                                                     {"user": "s", "item": items[4], "time": T0 + 60}]})
    before = first.client.get("/v1/users/s/recommendations", params={"at": T0 + 3600}).json()
    first.kill()
    second = Server(small_run, store=url)
    try:
        assert second.client.get("/v1/users/s/recommendations", params={"at": T0 + 3600}).json() == before
        again = second.client.post("/v1/events", json={"events": [{"user": "s", "item": items[2], "time": T0,
                                                                   "id": "a"}]})
        assert again.json()["duplicates"] == 1
    finally:
        second.stop()
