"""The service's answers at the edges of its contract: odd ids, strict times, bounded batch calls,
keys checked before bodies, errors without echoed input, a store that goes away, bind errors."""
from __future__ import annotations

import socket
import subprocess
import sys
import time

import httpx
import pytest

from .conftest import REPO, Server
from .test_http import T0, _samples, assert_same_items, catalogue, event, post


@pytest.fixture(scope="module")
def edges(small_run, tmp_path_factory):
    server = Server(small_run, store=f"sqlite:///{tmp_path_factory.mktemp('edges') / 'store.db'}")
    yield server
    server.stop()


def test_user_ids_with_slashes_reach_every_user_route(edges, small_run):
    items = catalogue(small_run)
    assert post(edges, [event("team/ann", items[0], T0), event("team/ann", items[1], T0 + 60)]).status_code == 200
    answer = edges.client.get("/v1/users/team%2Fann/recommendations", params={"at": T0 + 120}).json()
    assert answer["user"] == "team/ann" and answer["cold_start"] is False
    explained = edges.client.get("/v1/users/team%2Fann/explanation", params={"item": items[2], "at": T0 + 120})
    assert [e["item"] for e in explained.json()["events"]] == [items[0], items[1]]
    assert edges.client.get("/v1/users/team%2Fann/interest", params={"at": T0 + 120}).status_code == 200
    assert edges.client.delete("/v1/users/team%2Fann").json() == {"user": "team/ann", "forgotten": True}
    assert edges.client.get("/v1/users/team%2Fann/recommendations").json()["cold_start"] is True
    too_long = edges.client.get(f"/v1/users/{'x' * 201}/recommendations")
    assert too_long.status_code == 422 and too_long.json()["detail"][0]["loc"] == ["path", "user"]


@pytest.mark.parametrize("at", ["2024-11-14T23:00:00 02:00",  # "+02:00" sent unencoded in a query
                                "01/02/2024", "Nov 14 2024", "1 2 3", "2024-13-01"])
def test_times_that_are_not_iso_8601_are_refused(edges, at):
    answer = edges.client.get("/v1/users/nobody/recommendations", params={"at": at})
    assert answer.status_code == 422 and answer.json()["detail"][0]["loc"] == ["query", "at"], answer.text
    assert post(edges, [event("nobody", "1", at)]).status_code == 422


@pytest.mark.parametrize("at, seconds", [("2024-11-14T23:00:00+02:00", 1_731_618_000),
                                         ("2024-11-14T21:00:00Z", 1_731_618_000),
                                         ("2024-11-14", 1_731_542_400),
                                         ("2999-01-01T00:00:00Z", 32_472_144_000),
                                         ("9999-12-31T23:59:59", 253_402_300_799)])
def test_iso_8601_times_are_read_exactly_in_years_1_to_9999(edges, at, seconds):
    assert edges.client.get("/v1/users/nobody/recommendations", params={"at": at}).json()["at"] == seconds


def test_a_batch_call_is_bounded(edges):
    many = edges.client.post("/v1/recommendations", json={"users": [f"u{n}" for n in range(1001)]})
    assert many.status_code == 422 and many.json()["detail"][0]["loc"] == ["body", "users"]
    wide = edges.client.post("/v1/recommendations", json={"users": [f"u{n}" for n in range(200)], "k": 1000})
    assert wide.status_code == 422 and "users x k" in wide.json()["detail"][0]["msg"]
    assert edges.client.post("/v1/recommendations", json={"users": ["a", "b"], "k": 1000}).status_code == 200


def test_validation_errors_name_the_field_without_echoing_the_input(edges):
    huge = edges.client.post("/v1/events", json={"events": [{"user": "u", "item": "i", "time": T0, "id": "x" * 10**6}]})
    assert huge.status_code == 422 and len(huge.content) < 1000
    assert huge.json()["detail"][0]["loc"] == ["body", "events", 0, "id"]
    not_a_number = edges.client.post("/v1/events", content=b'{"events": [{"user": "u", "item": "i", "time": NaN}]}',
                                     headers={"content-type": "application/json"})
    assert not_a_number.status_code == 422
    assert not_a_number.json()["detail"][0]["loc"] == ["body", "events", 0, "time"]


def test_health_answers_head_requests(edges):
    assert edges.client.head("/healthz").status_code == 200


def test_keys_are_checked_before_the_body_and_guard_the_docs(serve, small_run, tmp_path):
    keys = tmp_path / "keys"
    keys.write_text("first-key\n")
    server = serve(small_run, "--api-key-file", str(keys), store=f"sqlite:///{tmp_path / 's.db'}")
    garbage = server.client.post("/v1/events", content=b"not json", headers={"content-type": "application/json"})
    assert garbage.status_code == 401  # not 422: nothing is parsed for a caller without a key
    for path in ("/docs", "/openapi.json", "/metrics"):
        assert server.client.get(path).status_code == 401, path
    metrics = _samples(server.client.get("/metrics", headers={"Authorization": "Bearer first-key"}).text)
    assert metrics['interestevo_http_requests_total{method="POST",route="/v1/events",status="401"}'] == 1


def test_a_reload_reads_the_key_file_again(serve, small_run, tmp_path):
    keys = tmp_path / "keys"
    keys.write_text("old-key\n")
    server = serve(small_run, "--api-key-file", str(keys), store=f"sqlite:///{tmp_path / 's.db'}")
    keys.write_text("new-key\n")
    assert server.client.post("/v1/admin/reload", headers={"Authorization": "Bearer old-key"}).status_code == 200
    assert server.client.get("/healthz").status_code == 200
    assert server.client.get("/metrics", headers={"Authorization": "Bearer old-key"}).status_code == 401
    assert server.client.get("/metrics", headers={"Authorization": "Bearer new-key"}).status_code == 200
    keys.write_text("# no key left\n")  # a bad file fails the reload and changes nothing
    refused = server.client.post("/v1/admin/reload", headers={"Authorization": "Bearer new-key"})
    assert refused.status_code == 422 and "holds no key" in refused.json()["detail"]
    assert server.client.get("/metrics", headers={"Authorization": "Bearer new-key"}).status_code == 200


def test_a_store_that_goes_away_is_503_and_fails_the_health_check(serve, small_run, redis_server):
    items = catalogue(small_run)
    server = serve(small_run, store=redis_server.url)
    assert post(server, [event("r", items[0], T0)]).status_code == 200
    redis_server.stop()
    for answer in (post(server, [event("r", items[1], T0 + 1)]), server.client.get("/v1/users/r/recommendations"),
                   server.client.get("/healthz")):
        assert answer.status_code == 503 and answer.headers["content-type"] == "application/json", answer.text
    assert server.client.get("/metrics").status_code == 200  # the store's gauges read NaN meanwhile
    redis_server.start()
    assert server.client.get("/healthz").status_code == 200
    assert post(server, [event("r", items[1], T0 + 1)]).json()["applied"] == 1


def _refusal(run, *flags) -> str:
    done = subprocess.run([sys.executable, "-m", "interestevo", "serve", str(run), *flags],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    return done.stderr


def test_bad_listen_addresses_and_store_urls_are_one_line_errors(small_run, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert "--port" in _refusal(small_run, "--port", str(taken.getsockname()[1]))
    assert "--host" in _refusal(small_run, "--host", "no-such-host.invalid")
    missing = tmp_path / "missing" / "s.db"
    assert "does not exist" in _refusal(small_run, "--store", f"sqlite:///{missing}")
    assert not missing.parent.exists()  # a typo creates no directory
    assert "options" in _refusal(small_run, "--store", f"sqlite:///{tmp_path / 's.db'}?mode=ro")
    assert "--store" in _refusal(small_run, "--store", "redis://localhost:notaport/0")


def test_port_0_listens_on_a_free_port_and_says_which(small_run, tmp_path):
    log = tmp_path / "serve.log"
    with open(log, "w") as out:
        process = subprocess.Popen([sys.executable, "-m", "interestevo", "serve", str(small_run), "--port", "0",
                                    "--store", f"sqlite:///{tmp_path / 's.db'}"], cwd=REPO, stdout=out,
                                   stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while "listening on" not in log.read_text() and time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()
            time.sleep(0.2)
        url = log.read_text().split("listening on ")[1].split()[0]
        assert not url.endswith(":0")
        for _ in range(100):
            try:
                assert httpx.get(f"{url}/healthz").json()["status"] == "ok"
                break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise AssertionError(f"nothing answers at {url}")
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_a_reload_to_a_smaller_catalogue_counts_the_events_it_leaves_out(serve, small_run, tmp_path):
    from dataclasses import replace

    from .conftest import SYNTHETIC, train_small_run

    smaller = train_small_run(tmp_path / "smaller", synthetic=replace(SYNTHETIC, num_items=60))
    kept = set(catalogue(smaller))
    items = catalogue(small_run)
    dropped = [i for i in items if i not in kept][:2]
    server = serve(small_run, store=f"sqlite:///{tmp_path / 's.db'}")
    post(server, [event("c", items[0], T0), event("c", dropped[0], T0 + 1), event("d", dropped[1], T0 + 2)])
    answer = server.client.post("/v1/admin/reload", json={"run": str(smaller)}).json()
    assert answer["recomputed"] == 2 and answer["events_of_unknown_items"] == 2


def test_import_log_serves_the_logs_users_as_the_runs_tracker_does(serve, small_run, tmp_path):
    from interestevo.run import Run
    from interestevo.serving import InterestTracker

    tracker = InterestTracker.open(Run.open(small_run), "timelstm")  # the run's own store
    try:
        every_user = tracker.user_ids()
        users = every_user[:5]
        at = max(tracker.last_event_time(u) for u in users) + 3600
        expected = tracker.recommend(users, at=at, k=8)
    finally:
        tracker.store.close()
    store = f"sqlite:///{tmp_path / 's.db'}"
    plain = serve(small_run, store=store)
    assert plain.client.get(f"/v1/users/{users[0]}/recommendations").json()["cold_start"] is True
    plain.stop()
    imported = serve(small_run, "--import-log", store=store)
    for user, answer in zip(users, expected):
        got = imported.client.get(f"/v1/users/{user}/recommendations", params={"k": 8, "at": at}).json()
        assert got["cold_start"] is False
        assert_same_items(got, answer)
    metrics = _samples(imported.client.get("/metrics").text)
    assert metrics["interestevo_users"] == len(every_user)
    imported.stop()
    again = serve(small_run, "--import-log", store=store)  # users the store has are left as they are
    assert _samples(again.client.get("/metrics").text)["interestevo_users"] == len(every_user)


def test_unencoded_slashes_name_no_other_user(edges, small_run):
    items = catalogue(small_run)
    assert post(edges, [event("s1", items[0], T0)]).status_code == 200
    for method, path in (("DELETE", "/v1/users/s1/"), ("DELETE", "/v1/users/s1/recommendations"),
                         ("GET", "/v1/users/s1/x/recommendations"), ("GET", "/v1/users/s1/recommendations/")):
        assert edges.client.request(method, path).status_code == 404, (method, path)
    assert edges.client.get("/v1/users/s1/recommendations").json()["cold_start"] is False  # still there


def test_error_messages_quote_a_bad_value_briefly(edges):
    answer = post(edges, [event("t", "1", "x" * 100_000)])
    assert answer.status_code == 422 and len(answer.content) < 1000


def test_the_openapi_document_describes_times_ids_errors_and_keys(serve, small_run, tmp_path):
    keys = tmp_path / "keys"
    keys.write_text("k\n")
    server = serve(small_run, "--api-key-file", str(keys), "--public-reads", store=f"sqlite:///{tmp_path / 's.db'}")
    doc = server.client.get("/openapi.json").json()
    event_schema = doc["components"]["schemas"]["EventIn"]["properties"]
    assert {"type": "string", "format": "date-time"} in event_schema["time"]["anyOf"]
    assert {"type": "integer"} in event_schema["user"]["anyOf"]
    assert {"401", "409", "413", "422", "503"} <= set(doc["paths"]["/v1/events"]["post"]["responses"])
    recommendations = doc["paths"]["/v1/users/{user}/recommendations"]["get"]
    assert recommendations["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "RecommendationsOut")
    assert "security" not in recommendations  # --public-reads
    assert doc["paths"]["/v1/events"]["post"]["security"] == [{"apiKey": []}]
    assert "security" not in doc["paths"]["/healthz"]["get"] and "head" not in doc["paths"]["/healthz"]
    operation_ids = [op["operationId"] for ops in doc["paths"].values() for op in ops.values()]
    assert len(operation_ids) == len(set(operation_ids))
    assert "Duplicate Operation ID" not in server.log.read_text()
