"""Black-box tests of `interestevo serve`: a real uvicorn process on a loopback port, real HTTP."""
from __future__ import annotations

import signal
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

from interestevo.checkpoint import load_checkpoint
from interestevo.run import ExperimentConfig, load_dataset

from .conftest import Server

T0 = 1_700_000_000


def assert_same_items(got: dict, expected: dict) -> None:
    """An HTTP answer and the Python API's: the same items, the same scores (to float32 rounding:
    the service scores a request in a batch with others)."""
    assert [x["item"] for x in got["items"]] == [x["item"] for x in expected["items"]]
    np.testing.assert_allclose([x["score"] for x in got["items"]], [x["score"] for x in expected["items"]],
                               rtol=1e-5, atol=1e-6)


def catalogue(run) -> list:
    return load_checkpoint(run / "checkpoints" / "timelstm" / "best.pt")["item_ids"][1:]


def post(server, events, **headers):
    return server.client.post("/v1/events", json={"events": events}, headers=headers)


def event(user, item, t, id=None):
    return {"user": user, "item": item, "time": t, **({"id": id} if id else {})}


@pytest.fixture(scope="module")
def shared(small_run, tmp_path_factory):
    """One server for the tests that each use their own user ids (a server start costs seconds)."""
    server = Server(small_run, store=f"sqlite:///{tmp_path_factory.mktemp('shared') / 'store.db'}")
    yield server
    server.stop()


@pytest.fixture
def server(serve, small_run, tmp_path):
    """A server of the test's own, for tests that count, reload or inspect the store."""
    return serve(small_run, store=f"sqlite:///{tmp_path / 'store.db'}")


def test_recommendations_equal_the_tracker_for_the_same_events(shared, small_run, empty_tracker):
    items = catalogue(small_run)
    rng = np.random.default_rng(0)
    tracker = empty_tracker(small_run)
    requests = []
    for r in range(6):  # requests mixing users, several events of one user per request
        users = rng.choice(["ann", "bob", "cy", 7], size=5)
        requests.append([event(str(u), items[int(rng.integers(len(items)))], T0 + 600 * r + 10 * j)
                         for j, u in enumerate(users)])
    for events in requests:
        assert post(shared, events).status_code == 200
        tracker.update([e["user"] for e in events], [e["item"] for e in events], [e["time"] for e in events])
    for user, at, exclude in (("ann", T0 + 7200, False), ("bob", T0 + 86400 * 9, True), ("7", T0 + 5000, True)):
        answer = shared.client.get(f"/v1/users/{user}/recommendations",
                                   params={"k": 7, "at": at, "exclude_seen": exclude}).json()
        expected = tracker.recommend(user, at=at, k=7, exclude_seen=exclude)[0]
        assert answer["cold_start"] is False and answer["model"] == "timelstm" and answer["at"] == at
        assert_same_items(answer, expected)
        last = tracker.last_event_time(user)
        assert answer["hours_since_last_event"] == pytest.approx((at - last) / 3600)
    many = shared.client.post("/v1/recommendations", json={"users": ["ann", "cy", "nobody"], "k": 3,
                                                           "at": T0 + 90000}).json()["results"]
    for got, expected in zip(many, tracker.recommend(["ann", "cy"], at=T0 + 90000, k=3)):
        assert_same_items(got, expected)
    assert many[2]["cold_start"] is True


def test_iso_times_and_the_time_dependence(shared, small_run):
    items = catalogue(small_run)
    assert post(shared, [event("u", items[0], "2023-11-14T22:13:20Z")]).json()["applied"] == 1
    hour = shared.client.get("/v1/users/u/recommendations", params={"at": "2023-11-14T23:13:20+00:00"}).json()
    assert hour["at"] == T0 + 3600 and hour["hours_since_last_event"] == pytest.approx(1.0)
    month = shared.client.get("/v1/users/u/recommendations", params={"at": T0 + 30 * 86400}).json()
    assert [x["score"] for x in hour["items"]] != [x["score"] for x in month["items"]]


def test_cold_start_is_the_logs_popularity_before_the_request_time(shared, small_run):
    dataset = load_dataset(ExperimentConfig.load(small_run / "config.json").data)
    inter = dataset.inter
    at = int(np.quantile(inter.timestamp, 0.3))
    counts = np.bincount(inter.item[inter.timestamp < at], minlength=inter.num_items + 1)
    answer = shared.client.get("/v1/users/never-seen/recommendations", params={"k": 5, "at": at}).json()
    assert answer["cold_start"] is True and answer["hours_since_last_event"] is None
    got = [x["score"] for x in answer["items"]]
    assert got == sorted(counts[1:], reverse=True)[:5]
    index = {item: i for i, item in enumerate(inter.item_ids)}
    assert [counts[index[x["item"]]] for x in answer["items"]] == got
    before_everything = shared.client.get("/v1/users/x/recommendations", params={"at": 0}).json()
    assert before_everything["cold_start"] is True and before_everything["items"] == []


def test_a_retried_event_is_applied_once_even_after_later_events(shared, small_run, empty_tracker):
    items = catalogue(small_run)
    first = post(shared, [event("r", items[1], T0, "e-1"), event("r", "no-such-item", T0 + 1, "e-x")])
    assert first.json() == {"applied": 1, "duplicates": 0, "unknown_items": ["no-such-item"]}
    assert post(shared, [event("r", items[2], T0 + 100, "e-2")]).json()["applied"] == 1
    retry = post(shared, [event("r", items[1], T0, "e-1"), event("r", items[3], T0 + 200, "e-3"),
                          event("r", items[3], T0 + 200, "e-3")])
    assert retry.status_code == 200  # the old retried event does not trip the order check
    assert retry.json() == {"applied": 1, "duplicates": 2, "unknown_items": []}
    tracker = empty_tracker(small_run)
    tracker.update(["r"] * 3, [items[1], items[2], items[3]], [T0, T0 + 100, T0 + 200])
    answer = shared.client.get("/v1/users/r/recommendations", params={"at": T0 + 999, "k": 4}).json()
    assert_same_items(answer, tracker.recommend("r", at=T0 + 999, k=4)[0])


def test_an_out_of_order_event_is_409_and_nothing_of_the_request_is_applied(shared, small_run):
    items = catalogue(small_run)
    assert post(shared, [event("o", items[0], T0 + 100)]).status_code == 200
    before = shared.client.get("/v1/users/o/recommendations", params={"at": T0 + 500}).json()
    refused = post(shared, [event("p", items[1], T0), event("o", items[2], T0 + 99)])
    assert refused.status_code == 409
    assert "older than that user's last event" in refused.json()["detail"]
    assert shared.client.get("/v1/users/p/recommendations", params={"at": T0 + 500}).json()["cold_start"]
    assert shared.client.get("/v1/users/o/recommendations", params={"at": T0 + 500}).json() == before
    early = shared.client.get("/v1/users/o/recommendations", params={"at": T0 + 99})
    assert early.status_code == 422 and "before" in early.json()["detail"] and "'o'" in early.json()["detail"]


@pytest.mark.parametrize("body, field", [
    ({"events": [{"item": 1, "time": T0}]}, ["body", "events", 0, "user"]),
    ({"events": [{"user": "a", "item": 1, "time": "yesterday-ish"}]}, ["body", "events", 0, "time"]),
    ({"events": [{"user": "a", "item": 1, "time": 1e30}]}, ["body", "events", 0, "time"]),
    ({"events": [{"user": "a", "item": 1, "time": 2 ** 64}]}, ["body", "events", 0, "time"]),
    ({"events": [{"user": None, "item": 1, "time": T0}]}, ["body", "events", 0, "user"]),
    ({"events": [{"user": "a", "item": 1, "time": T0, "colour": "red"}]}, ["body", "events", 0, "colour"]),
    ({"events": []}, ["body", "events"]),
    ({"evnts": []}, ["body", "events"]),
])
def test_malformed_bodies_are_422_naming_the_field(shared, body, field):
    answer = shared.client.post("/v1/events", json=body)
    assert answer.status_code == 422
    assert field in [error["loc"] for error in answer.json()["detail"]]


def test_malformed_queries_are_422(shared):
    for params, name in (({"k": 0}, "k"), ({"k": "ten"}, "k"), ({"at": "soon"}, "at"), ({"at": "inf"}, "at")):
        answer = shared.client.get("/v1/users/a/recommendations", params=params)
        assert answer.status_code == 422
        assert ["query", name] in [error["loc"] for error in answer.json()["detail"]]
    assert shared.client.post("/v1/events", content=b"{not json").status_code == 422


def test_interest_is_a_distribution_over_the_categories(shared, small_run, empty_tracker):
    items = catalogue(small_run)
    post(shared, [event("i", items[0], T0), event("i", items[5], T0 + 60)])
    answer = shared.client.get("/v1/users/i/interest", params={"at": T0 + 3600}).json()
    names = ExperimentConfig.load(small_run / "config.json")
    assert len(answer["interest"]) == names.data.synthetic.num_categories
    assert sum(answer["interest"].values()) == pytest.approx(1.0, abs=1e-4)
    tracker = empty_tracker(small_run)
    tracker.update(["i", "i"], [items[0], items[5]], [T0, T0 + 60])
    np.testing.assert_allclose(list(answer["interest"].values()),
                               list(tracker.interest("i", T0 + 3600)["interest"].values()), rtol=1e-5, atol=1e-6)
    cold = shared.client.get("/v1/users/nobody/interest", params={"at": T0}).json()
    assert cold["cold_start"] is True and sum(cold["interest"].values()) == pytest.approx(1.0, abs=1e-4)


def test_explanation_contributions_are_the_score_without_each_event(shared, small_run, empty_tracker):
    items = catalogue(small_run)
    history = [(items[(7 * j) % len(items)], T0 + 1800 * j) for j in range(55)]  # more than the 50 explained
    assert post(shared, [event("x", i, t) for i, t in history]).status_code == 200
    at, target = T0 + 200_000, items[3]
    answer = shared.client.get("/v1/users/x/explanation", params={"item": target, "at": at}).json()
    assert [(e["item"], e["time"]) for e in answer["events"]] == history[-50:]

    def score(events, when):  # of a tracker that saw only ``events``
        tracker = empty_tracker(small_run)
        tracker.update(["x"] * len(events), [i for i, _ in events], [t for _, t in events])
        return tracker.explain("x", str(target), when)["score"]

    full = score(history, at)
    assert answer["score"] == pytest.approx(full, abs=1e-5)
    for j in (0, 17, 49):  # dropping the j-th explained event (the 6th, 23rd and last of the history)
        without = history[:5 + j] + history[5 + j + 1:]
        assert answer["events"][j]["contribution"] == pytest.approx(full - score(without, at), abs=1e-4)
    assert answer["elapsed_time_effect"] == pytest.approx(full - score(history, history[-1][1]), abs=1e-5)
    assert shared.client.get("/v1/users/nobody/explanation", params={"item": target}).status_code == 404
    assert shared.client.get("/v1/users/x/explanation", params={"item": "no-such"}).status_code == 422


def test_forget_erases_the_user_durably(server, small_run, tmp_path):
    items = catalogue(small_run)
    post(server, [event("forget-me-please", items[0], T0, "secret-event-id")])
    post(server, [event("keep", items[0], T0)])
    assert server.client.delete("/v1/users/forget-me-please").json() == {"user": "forget-me-please",
                                                                         "forgotten": True}
    assert server.client.get("/v1/users/forget-me-please/recommendations").json()["cold_start"] is True
    assert server.client.delete("/v1/users/forget-me-please").json()["forgotten"] is False
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("store.db*"))
    assert b"forget-me-please" not in raw and b"secret-event-id" not in raw  # nor in the WAL
    assert b"keep" in raw
    with sqlite3.connect(tmp_path / "store.db") as db:
        assert db.execute("SELECT user FROM users").fetchall() == [("keep",)]
    # The same id again is a new event now: nothing of the old one is left to match it.
    assert post(server, [event("forget-me-please", items[0], T0 - 5, "secret-event-id")]).json()["applied"] == 1


def test_reload_serves_new_weights_and_recomputes_every_state(server, small_run, other_run, empty_tracker):
    items = catalogue(small_run)
    events = [event(u, items[(3 * n) % len(items)], T0 + 60 * n) for n, u in enumerate(["a", "b", "a", "c", "b"])]
    post(server, events)
    old = server.client.get("/healthz").json()["fingerprint"]
    answer = server.client.post("/v1/admin/reload", json={"run": str(other_run)})
    assert answer.status_code == 200
    result = answer.json()
    assert result["previous_fingerprint"] == old and result["fingerprint"] != old
    assert result["users"] == 3 and result["recomputed"] == 3
    assert server.client.get("/healthz").json()["fingerprint"] == result["fingerprint"]
    tracker = empty_tracker(other_run)  # the new weights over the same events
    tracker.update([e["user"] for e in events], [e["item"] for e in events], [e["time"] for e in events])
    for user in ("a", "b", "c"):
        got = server.client.get(f"/v1/users/{user}/recommendations", params={"at": T0 + 9999, "k": 5}).json()
        assert_same_items(got, tracker.recommend(user, at=T0 + 9999, k=5)[0])
    # Events after the reload continue from the recomputed states.
    post(server, [event("a", items[9], T0 + 10_000)])
    tracker.update(["a"], [items[9]], [T0 + 10_000])
    got = server.client.get("/v1/users/a/recommendations", params={"at": T0 + 20_000, "k": 5}).json()
    assert_same_items(got, tracker.recommend("a", at=T0 + 20_000, k=5)[0])
    assert server.client.post("/v1/admin/reload", json={"run": "/no/such/run"}).status_code == 422


def test_requests_keep_being_answered_during_a_reload_and_sighup_reloads(server, small_run):
    items = catalogue(small_run)
    post(server, [event(f"u{n}", items[n % len(items)], T0 + n) for n in range(30)])
    with ThreadPoolExecutor(4) as pool:
        reload = pool.submit(server.client.post, "/v1/admin/reload")
        answers = [pool.submit(httpx.get, f"{server.url}/v1/users/u{n}/recommendations", params={"at": T0 + 99})
                   for n in range(40)]
        assert reload.result().status_code == 200
        assert [a.result().status_code for a in answers] == [200] * 40
    server.process.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        metrics = server.client.get("/metrics").text
        if "interestevo_reloads_total 2.0" in metrics:
            break
        time.sleep(0.2)
    assert "interestevo_reloads_total 2.0" in metrics


def test_concurrent_recommendations_share_model_calls(server, small_run):
    items = catalogue(small_run)
    post(server, [event(f"c{n}", items[n], T0 + n) for n in range(32)])
    with ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(lambda n: httpx.get(f"{server.url}/v1/users/c{n}/recommendations",
                                                    params={"at": T0 + 999}), range(32 * 4)))
    assert all(a.status_code == 200 for a in answers)
    metrics = _samples(server.client.get("/metrics").text)
    assert metrics["interestevo_recommendation_batch_size_sum"] == 32 * 4
    assert metrics["interestevo_recommendation_batch_size_count"] < 32 * 4  # fewer model calls than requests


def _samples(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def test_metrics_count_requests_by_route_and_status(server, small_run):
    items = catalogue(small_run)
    post(server, [event("m", items[0], T0)])
    server.client.get("/v1/users/m/recommendations", params={"k": 0})
    metrics = _samples(server.client.get("/metrics").text)
    assert metrics['interestevo_http_requests_total{method="POST",route="/v1/events",status="200"}'] == 1
    assert metrics['interestevo_http_requests_total{method="GET",route="/v1/users/{user}/recommendations",'
                   'status="422"}'] == 1
    assert metrics['interestevo_http_request_duration_seconds_count{route="/v1/events"}'] == 1
    assert metrics["interestevo_events_applied_total"] == 1
    assert metrics["interestevo_users"] == 1 and metrics["interestevo_store_bytes"] > 0


def test_bodies_over_the_limit_are_413(serve, small_run, tmp_path):
    server = serve(small_run, "--max-body-bytes", "2000", store=f"sqlite:///{tmp_path / 's.db'}")
    items = catalogue(small_run)
    big = [event("b", items[0], T0 + n) for n in range(100)]
    assert post(server, big).status_code == 413
    chunked = server.client.post("/v1/events", content=iter([b'{"events": [', b" " * 3000, b"]}"]))
    assert chunked.status_code == 413  # no content-length: counted as it streams
    assert post(server, big[:3]).status_code == 200


def test_api_keys_guard_writes_and_reads(serve, small_run, tmp_path):
    keys = tmp_path / "keys"
    keys.write_text("# rotation: both keys work\nold-key\nnew-key\n")
    items = catalogue(small_run)
    closed = serve(small_run, "--api-key-file", str(keys), store=f"sqlite:///{tmp_path / 'a.db'}")
    assert post(closed, [event("k", items[0], T0)]).status_code == 401
    assert post(closed, [event("k", items[0], T0)], Authorization="Bearer wrong").status_code == 401
    assert post(closed, [event("k", items[0], T0)], Authorization="new-key").status_code == 401
    assert post(closed, [event("k", items[0], T0)], Authorization="Bearer new-key").status_code == 200
    assert post(closed, [event("k", items[0], T0 + 1)], Authorization="Bearer old-key").status_code == 200
    assert closed.client.get("/v1/users/k/recommendations").status_code == 401
    assert closed.client.get("/metrics").status_code == 401
    assert closed.client.delete("/v1/users/k").status_code == 401
    assert closed.client.post("/v1/admin/reload").status_code == 401
    assert closed.client.get("/v1/users/k/recommendations", headers={"Authorization": "Bearer old-key"}).json()[
        "cold_start"] is False
    assert closed.client.get("/healthz").status_code == 200  # for load balancers
    public = serve(small_run, "--api-key-file", str(keys), "--public-reads", store=f"sqlite:///{tmp_path / 'b.db'}")
    assert public.client.get("/v1/users/k/recommendations").status_code == 200
    assert public.client.get("/v1/users/k/interest").status_code == 200
    assert post(public, [event("k", items[0], T0)]).status_code == 401


def test_serve_refuses_bad_options_in_one_line(small_run, tmp_path):
    import subprocess
    import sys

    from .conftest import REPO

    cases = [(["--store", "mysql://x"], "--store 'mysql://x'"), (["--model", "gru"], "model 'gru' is not a model of the run"),
             (["--api-key-file", str(tmp_path / "none")], "--api-key-file"), (["--port", "99999"], "--port"),
             (["--public-reads"], "--public-reads")]
    for flags, named in cases:
        done = subprocess.run([sys.executable, "-m", "interestevo", "serve", str(small_run), *flags],
                              capture_output=True, text=True, cwd=REPO, timeout=120)
        assert done.returncode == 2, done.stderr
        assert named in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
