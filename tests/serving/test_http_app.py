"""The app in this process (no server): one clock on every surface, and errors answered by class."""
from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from interestevo.cli import main
from interestevo.data import DataFormatError
from interestevo.run import Run
from interestevo.serving.store import SQLiteStore
from interestevo.serving import InterestTracker
from interestevo.serving.http import Service, ServiceSettings, create_app

from .test_http import T0, _samples, catalogue, event

AS_GIVEN = {"1700000000": "seconds", "1700000000000": "milliseconds", "1700000000000000": "microseconds",
            "2023-11-14T22:13:20Z": "ISO UTC", "2023-11-14T23:13:20+01:00": "ISO with an offset"}


@pytest.fixture
def app(small_run, tmp_path):
    """(client, service): the app over the run's timelstm and a store of the test's own."""
    tracker = InterestTracker.open(Run.open(small_run), "timelstm", SQLiteStore(tmp_path / "s.db"))
    service = Service(tracker, ServiceSettings())
    with TestClient(create_app(service), raise_server_exceptions=False) as client:
        yield client, service


@pytest.mark.parametrize("given", AS_GIVEN)
def test_a_time_in_any_form_reads_as_the_cli_reads_it(app, small_run, given, capsys):
    client, _ = app
    assert client.get("/v1/users/nobody/recommendations", params={"at": given}).json()["at"] == T0
    assert client.post("/v1/recommendations", json={"users": ["nobody"], "at": given}).json()["results"][0]["at"] == T0
    assert main(["recommend", str(small_run), "--user", "nobody", "--at", given, "-k", "1"]) == 0
    assert "2023-11-14T22:13:20Z" in capsys.readouterr().out


def test_event_times_in_milliseconds_are_read_by_magnitude(app, small_run):
    client, _ = app
    items = catalogue(small_run)
    assert client.post("/v1/events", json={"events": [event("ms", items[0], T0 * 1000)]}).json()["applied"] == 1
    later = client.get("/v1/users/ms/recommendations", params={"at": f"{(T0 + 3600) * 1000}"}).json()
    assert later["at"] == T0 + 3600 and later["hours_since_last_event"] == pytest.approx(1.0)


@pytest.mark.parametrize("bad", ["next tuesday", "1e30", "nan", "2024-13-01"])
def test_a_bad_time_is_refused_with_one_message_on_every_surface(app, small_run, bad, capsys):
    client, service = app
    with pytest.raises(DataFormatError) as python:
        service.tracker.recommend("u", at=bad)
    message = str(python.value)
    assert message.startswith(f"at {bad!r} is no time")
    query = client.get("/v1/users/u/recommendations", params={"at": bad})
    body = client.post("/v1/recommendations", json={"users": ["u"], "at": bad})
    for answer, where in ((query, ["query", "at"]), (body, ["body", "at"])):
        assert answer.status_code == 422
        error = answer.json()["detail"][0]
        assert error["loc"] == where and error["msg"].endswith(message)  # pydantic prefixes "Value error, "
    assert main(["recommend", str(small_run), "--user", "u", "--at", bad]) == 2
    assert capsys.readouterr().err.strip() == "interestevo: error: --at " + message.removeprefix("at ")


@pytest.mark.parametrize("method, request_", [
    ("apply_events", ("POST", "/v1/events", {"json": {"events": [event("u", "1", T0)]}})),
    ("answer", ("GET", "/v1/users/u/recommendations", {})),
    ("explain", ("GET", "/v1/users/u/explanation", {"params": {"item": "1"}})),
])
def test_an_unexpected_error_is_a_500_with_a_request_id_not_a_422(app, method, request_, monkeypatch, caplog):
    client, service = app

    def broken(*args):
        raise ValueError("an internal bug")

    monkeypatch.setattr(service.tracker, method, broken)
    verb, path, options = request_
    with caplog.at_level(logging.ERROR, logger="interestevo.serving"):
        answer = client.request(verb, path, **options)
    assert answer.status_code == 500
    request_id = answer.json()["request_id"]
    assert answer.headers["x-request-id"] == request_id and request_id in answer.json()["detail"]
    assert "an internal bug" not in answer.text  # the log has it, the client does not
    logged = [r for r in caplog.records if request_id in r.getMessage()]
    assert logged and "an internal bug" in logged[0].exc_text
    route = path.replace("/u/", "/{user}/")
    assert _samples(client.get("/metrics").text)[
        f'interestevo_http_requests_total{{method="{verb}",route="{route}",status="500"}}'] == 1
