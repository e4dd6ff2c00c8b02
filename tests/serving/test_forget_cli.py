"""interestevo forget RUN --user U: the run's store (serving.db, or --store) no longer holds the user."""
from __future__ import annotations

import shutil
import subprocess
import sys

from interestevo.run import Run
from interestevo.serving import InterestTracker
from interestevo.serving.store import SQLiteStore, open_store

from .conftest import REPO


def forget(run, user, *extra):
    return subprocess.run([sys.executable, "-m", "interestevo", "forget", str(run), "--user", str(user), *extra],
                          capture_output=True, text=True, cwd=REPO, timeout=300)


def test_forget_erases_the_user_from_the_runs_store(small_run, tmp_path):
    run = shutil.copytree(small_run, tmp_path / "run")
    tracker = InterestTracker.open(Run.open(run))
    try:
        user, other = tracker.user_ids()[:2]
        item = str(tracker.served.item_ids[1])
        # a user of the log with a live event on top, and one known from live events only
        tracker.update([user, "live-only"], [item, item], [2_000_000_000, 2_000_000_000])
        assert tracker.store.events(user) and tracker.store.events(other)
    finally:
        tracker.store.close()

    done = forget(run, user)
    assert done.returncode == 0, done.stderr
    assert f"forgot user {user} in" in done.stdout and "serving.db" in done.stdout
    store = SQLiteStore(run / "serving.db")
    try:
        assert store.records([user, other, "live-only"]).keys() == {other, "live-only"}
        assert store.events(user) == [] and store.seen_items([user]) == {user: {}}
        assert store.events(other) and user not in list(store.user_ids())
    finally:
        store.close()
    again = forget(run, user)
    assert again.returncode == 0 and "nothing to forget" in again.stdout
    assert forget(run, "live-only").returncode == 0
    store = SQLiteStore(run / "serving.db")
    assert store.records(["live-only"]) == {} and other in list(store.user_ids())
    store.close()
    assert forget(tmp_path / "no-run", user).returncode == 2


def test_forget_with_store_erases_from_that_store_only(small_run, tmp_path):
    run = shutil.copytree(small_run, tmp_path / "run")
    url = f"sqlite:///{tmp_path / 'live.db'}"
    runs_store = SQLiteStore(run / "serving.db")
    users = list(runs_store.user_ids())
    runs_store.close()
    tracker = InterestTracker.open(Run.open(run), store=open_store(url))  # a new store
    try:
        item = str(tracker.served.item_ids[1])
        tracker.update(["live", "kept", users[0]], [item] * 3, [2_000_000_000] * 3)  # this store starts empty
    finally:
        tracker.store.close()
    done = forget(run, "live", "--store", url)
    assert done.returncode == 0, done.stderr
    assert "forgot user live" in done.stdout and "live.db" in done.stdout
    assert forget(run, users[0], "--store", url).returncode == 0
    live = SQLiteStore(tmp_path / "live.db")
    assert list(live.user_ids()) == ["kept"]
    live.close()
    runs_store = SQLiteStore(run / "serving.db")  # untouched
    assert list(runs_store.user_ids()) == users
    runs_store.close()


def test_a_run_without_serving_state_is_refused(small_run, tmp_path):
    run = shutil.copytree(small_run, tmp_path / "run", ignore=shutil.ignore_patterns("serving.db*"))
    done = forget(run, "1")
    assert done.returncode == 2 and "has no serving.db" in done.stderr
    assert not (run / "serving.db").exists()  # not created empty
