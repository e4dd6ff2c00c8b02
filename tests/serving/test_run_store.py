"""One run, one store: training writes every user's state into the run's serving.db, and
`interestevo recommend`, the Python API and `interestevo serve` read and write that same state."""
from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from interestevo.data.timestamps import iso_utc
from interestevo.run import Run
from interestevo.serving import InterestTracker, MemoryStore, ServedModel
from interestevo.serving.store import SQLiteStore

from .conftest import REPO


def recommend_cli(run, user, at, *extra) -> str:
    done = subprocess.run([sys.executable, "-m", "interestevo", "recommend", str(run), "--user", str(user),
                           "--at", str(at), *extra], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def printed(stdout: str) -> list[tuple[str, str]]:
    """(item, score) of each row of the table `recommend` prints."""
    lines = stdout.splitlines()
    header = next(n for n, line in enumerate(lines) if line.split()[:3] == ["rank", "item", "score"])
    rows = [line.split() for line in lines[header + 1:] if line.strip()]
    assert [int(row[0]) for row in rows] == list(range(1, len(rows) + 1))
    return [(row[1], row[2]) for row in rows]


def as_printed(answer: dict) -> list[tuple[str, str]]:
    return [(str(x["item"]), f"{x['score']:.4f}") for x in answer["items"]]


@pytest.fixture(scope="module")
def run_copy(small_run, tmp_path_factory):
    """A copy of the small run for the tests that only read it (opening a store writes lock files)."""
    return shutil.copytree(small_run, tmp_path_factory.mktemp("read") / "run")


def test_training_writes_every_users_state_into_the_runs_store(run_copy):
    run = Run.open(run_copy)
    assert run.store_path == run_copy / "serving.db" and run.store_path.is_file()
    inter = run.dataset().inter
    served = ServedModel.from_run(run)
    assert served.name == run.best_model()
    store = SQLiteStore(run.store_path)
    try:
        users = [str(u) for u in inter.user_ids[1:]]
        assert store.count_users() == inter.num_users == len(users)
        assert sorted(store.user_ids()) == sorted(users)
        records = store.records(users)
        # the states those users' events give, applied one call per user
        replayed = InterestTracker(served, MemoryStore())
        for u, user in enumerate(users, start=1):
            span = slice(inter.user_offsets[u], inter.user_offsets[u + 1])
            items, times = inter.item_ids[inter.item[span]], inter.timestamp[span]
            replayed.update([user] * len(items), items, times)
            assert records[user].num_events == len(items) and records[user].last_time == times[-1]
            assert records[user].fingerprint == served.fingerprint
            assert [(e.item, e.time) for e in store.events(user)] == [(str(i), int(t)) for i, t in zip(items, times)]
        expected = replayed.store.records(users)
        for part, (stored, fresh) in enumerate(zip(served.decode([records[u].state for u in users]),
                                                   served.decode([expected[u].state for u in users]))):
            # The recurrent state (h, c) agrees to float32 rounding. timelstm's attention parts
            # (recent items' times relative to the last event, float32 hours of up to ~1700 h, and
            # what attention computed from them) differ by one ulp of those hours, 1.2e-4 h, and
            # its effect: measured 3e-4 at most.
            torch.testing.assert_close(stored, fresh, atol=1e-4 if part < 3 else 1e-3, rtol=1e-5)
        at = [records[u].last_time + 3600 for u in users]
        got, want = InterestTracker(served, store).recommend(users, at=at), replayed.recommend(users, at=at)
        for a, b in zip(got, want):
            assert [x["item"] for x in a["items"]] == [x["item"] for x in b["items"]]
            np.testing.assert_allclose([x["score"] for x in a["items"]], [x["score"] for x in b["items"]],
                                       rtol=1e-5, atol=1e-5)
    finally:
        store.close()


def test_recommend_prints_what_the_runs_tracker_answers(run_copy):
    run = Run.open(run_copy)
    tracker = InterestTracker.open(run)
    try:
        user = tracker.user_ids()[3]
        last = tracker.last_event_time(user)
        at = last + 5 * 3600
        expected = tracker.recommend(user, at=at)[0]
        seen_excluded = tracker.recommend(user, at=at, k=4, exclude_seen=True)[0]
        cold = tracker.recommend("nobody-at-all", at=at, k=3)[0]
    finally:
        tracker.store.close()
    assert expected["cold_start"] is False and len(expected["items"]) == 10
    out = recommend_cli(run_copy, user, at)
    assert printed(out) == as_printed(expected)
    assert f"({tracker.model_name})" in out and "5.0 hours after their last event" in out
    # the same time as ISO 8601 and in milliseconds: one clock
    assert printed(recommend_cli(run_copy, user, iso_utc(at))) == as_printed(expected)
    assert printed(recommend_cli(run_copy, user, at * 1000)) == as_printed(expected)
    assert printed(recommend_cli(run_copy, user, at, "-k", "4", "--exclude-seen")) == as_printed(seen_excluded)
    cold_out = recommend_cli(run_copy, "nobody-at-all", at, "-k", "3")
    assert "has no events" in cold_out and printed(cold_out) == as_printed(cold)


def test_recommend_refuses_a_time_before_the_users_last_event(run_copy):
    tracker = InterestTracker.open(Run.open(run_copy))
    try:
        user = tracker.user_ids()[0]
        last = tracker.last_event_time(user)
    finally:
        tracker.store.close()
    done = subprocess.run([sys.executable, "-m", "interestevo", "recommend", str(run_copy), "--user", user,
                           "--at", str(last - 1)], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 2
    assert f"is before the last event of user '{user}', at {iso_utc(last)}" in done.stderr


@pytest.mark.parametrize("kind", ["runs-store", "redis"])
def test_an_event_posted_over_http_changes_what_recommend_prints(kind, small_run, tmp_path, serve, empty_tracker,
                                                                 request):
    run = shutil.copytree(small_run, tmp_path / "run")
    if kind == "runs-store":  # serve and recommend on the run's own serving.db
        flags, store_flags = (), ()
    else:  # serve on Redis with the log's users imported; recommend --store reads it too
        url = request.getfixturevalue("redis_server").url
        flags, store_flags = ("--import-log",), ("--store", url)
    tracker = InterestTracker.open(Run.open(run))
    try:
        user = tracker.user_ids()[5]
        last = tracker.last_event_time(user)
        item = tracker.served.item_ids[7]
    finally:
        tracker.store.close()
    at = last + 2 * 3600
    server = serve(run, *flags, store=None if kind == "runs-store" else url)
    before = recommend_cli(run, user, at, *store_flags)
    newcomer_before = recommend_cli(run, "http-newcomer", at, *store_flags)
    assert "2.0 hours after their last event" in before and "has no events" in newcomer_before
    posted = server.client.post("/v1/events", json={"events": [
        {"user": user, "item": item.item() if isinstance(item, np.generic) else item, "time": last + 3600, "id": "h1"},
        {"user": "http-newcomer", "item": str(item), "time": last + 3600, "id": "h2"}]})
    assert posted.status_code == 200, posted.text
    assert posted.json() == {"applied": 2, "duplicates": 0, "unknown_items": []}

    after = recommend_cli(run, user, at, *store_flags)  # while the service runs: the same store
    assert "1.0 hours after their last event" in after and printed(after) != printed(before)
    newcomer_after = recommend_cli(run, "http-newcomer", at, *store_flags)
    assert "1.0 hours after their last event" in newcomer_after and "has no events" not in newcomer_after
    # What it prints is what the service answers, and what the engine computes from the log plus the event.
    for who, out in ((user, after), ("http-newcomer", newcomer_after)):
        answer = server.client.get(f"/v1/users/{who}/recommendations", params={"at": at}).json()
        assert printed(out) == as_printed(answer)
    expected = empty_tracker(run)
    expected.import_log(Run.open(run).dataset().inter)
    expected.update([user, "http-newcomer"], [item, item], [last + 3600] * 2)
    assert printed(after) == as_printed(expected.recommend(user, at=at)[0])
    assert printed(newcomer_after) == as_printed(expected.recommend("http-newcomer", at=at)[0])
    server.stop()
    # ... and it stays after the service has gone.
    assert printed(recommend_cli(run, user, at, *store_flags)) == printed(after)


def test_export_without_at_meets_each_user_at_the_data_now_or_after_their_own_last_event(small_run, tmp_path):
    import pandas as pd

    run_dir = shutil.copytree(small_run, tmp_path / "run")
    tracker = InterestTracker.open(Run.open(run_dir))
    try:
        late = tracker.served.log_end + 86_400  # an event posted a day after the log ends
        tracker.update(["late-user"], [str(tracker.served.item_ids[1])], [late])
        expected = tracker.recommend("late-user", at=late, k=3)[0]
    finally:
        tracker.store.close()
    out = tmp_path / "recs.csv"
    done = subprocess.run([sys.executable, "-m", "interestevo", "recommend", str(run_dir), "--all-users", "-k", "3",
                           "--out", str(out)], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr
    recs = pd.read_csv(out, dtype={"user_id": str, "item_id": str})
    mine = recs[recs["user_id"] == "late-user"]
    assert mine["item_id"].tolist() == [str(x["item"]) for x in expected["items"]]
    assert recs["user_id"].nunique() == Run.open(run_dir).dataset().inter.num_users + 1
