"""`interestevo serve --workers N`: several processes on one port share the store and reload together."""
from __future__ import annotations

import shutil
import time

import httpx
import numpy as np

from .conftest import Server
from .test_http import T0, _samples, catalogue, event


def pids(server, connections: int = 200) -> set[int]:
    """The processes that answer: each request on a new connection, so the kernel picks one."""
    seen = set()
    for _ in range(connections):
        seen.add(httpx.get(f"{server.url}/healthz").json()["pid"])
        if len(seen) == 2:
            break
    return seen


def test_two_processes_share_users_and_reload_the_newest_checkpoint(small_run, other_run, tmp_path,
                                                                     empty_tracker):
    run = tmp_path / "run"
    shutil.copytree(small_run, run, ignore=shutil.ignore_patterns("serving.db*"))
    server = Server(run, "--workers", "2", store=f"sqlite:///{tmp_path / 'store.db'}")
    try:
        before = pids(server)
        assert len(before) == 2
        items = catalogue(small_run)
        events = [event(u, items[(5 * n) % len(items)], T0 + 60 * n, id=f"e{n}")
                  for n, u in enumerate(["a", "b", "a", "c", "b", "a"])]
        for e in events + events[:2]:  # each on a new connection: both processes write; retries apply once
            assert httpx.post(f"{server.url}/v1/events", json={"events": [e]}).status_code == 200

        def check(tracker):
            for user in ("a", "b", "c"):
                for _ in range(4):  # answered by either process
                    got = httpx.get(f"{server.url}/v1/users/{user}/recommendations",
                                    params={"at": T0 + 9999, "k": 5}).json()
                    expected = tracker.recommend(user, at=T0 + 9999, k=5)[0]["items"]
                    assert [x["item"] for x in got["items"]] == [x["item"] for x in expected]
                    np.testing.assert_allclose([x["score"] for x in got["items"]], [x["score"] for x in expected],
                                               atol=1e-5)

        tracker = empty_tracker(small_run)
        tracker.update([e["user"] for e in events], [e["item"] for e in events], [e["time"] for e in events])
        check(tracker)

        assert server.client.post("/v1/admin/reload", json={"run": str(other_run)}).status_code == 422
        old = server.client.get("/healthz").json()["fingerprint"]
        shutil.copy(other_run / "checkpoints" / "timelstm" / "best.pt", run / "checkpoints" / "timelstm" / "best.pt")
        answer = server.client.post("/v1/admin/reload")
        assert answer.status_code == 202 and answer.json()["previous_fingerprint"] == old
        again = server.client.post("/v1/admin/reload")  # the client's connection: the same, old process
        assert again.status_code == 202 and again.json()["already_requested"] is True
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and pids(server) & before:
            time.sleep(0.5)
        assert not pids(server) & before, "every process is replaced"
        assert {httpx.get(f"{server.url}/healthz").json()["fingerprint"] for _ in range(20)} != {old}
        new = empty_tracker(other_run)  # the new weights over the same stored events
        new.update([e["user"] for e in events], [e["item"] for e in events], [e["time"] for e in events])
        check(new)
    finally:
        server.stop()


def test_metrics_add_up_every_process(small_run, tmp_path):
    server = Server(small_run, "--workers", "2", store=f"sqlite:///{tmp_path / 'store.db'}")
    try:
        items = catalogue(small_run)
        answered = set()
        for n in range(20):  # each on a new connection: both processes apply some
            answer = httpx.post(f"{server.url}/v1/events", json={"events": [event(f"m{n}", items[n], T0)]})
            assert answer.status_code == 200
            answered.add(httpx.get(f"{server.url}/healthz").json()["pid"])
        assert len(answered) == 2
        for _ in range(6):  # whichever process answers the scrape
            metrics = _samples(httpx.get(f"{server.url}/metrics").text)
            assert metrics["interestevo_events_applied_total"] == 20
            assert metrics['interestevo_http_requests_total{method="POST",route="/v1/events",status="200"}'] == 20
            assert metrics["interestevo_users"] == 20
    finally:
        server.stop()
