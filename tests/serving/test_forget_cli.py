"""interestevo forget RUN --user U: the run's trackers and its serving store no longer hold the user."""
from __future__ import annotations

import shutil
import subprocess
import sys

from interestevo.serving import InterestTracker
from interestevo.serving.engine import Event, ServingEngine, load_served_model
from interestevo.serving.store import SQLiteStore

from .conftest import REPO


def forget(run, user):
    return subprocess.run([sys.executable, "-m", "interestevo", "forget", str(run), "--user", str(user)],
                          capture_output=True, text=True, cwd=REPO, timeout=300)


def test_forget_erases_the_user_from_trackers_and_the_store(small_run, tmp_path):
    run = shutil.copytree(small_run, tmp_path / "run")
    tracker = InterestTracker.load(run / "trackers" / "timelstm.pt")
    user, other = tracker.user_ids[0], tracker.user_ids[1]
    engine = ServingEngine(load_served_model(run), SQLiteStore(run / "serving.db"))
    item = str(tracker.item_ids[1])
    engine.apply_events([Event(str(user), item, 2_000_000_000), Event("live-only", item, 2_000_000_000)])
    engine.store.close()

    done = forget(run, user)
    assert done.returncode == 0, done.stderr
    assert "trackers/timelstm.pt" in done.stdout and "serving.db" in done.stdout
    after = InterestTracker.load(run / "trackers" / "timelstm.pt")
    assert user not in after.user_ids and other in after.user_ids
    store = SQLiteStore(run / "serving.db")
    assert store.records([str(user), "live-only"]).keys() == {"live-only"} and store.events(str(user)) == []
    store.close()
    again = forget(run, user)
    assert again.returncode == 0 and "nothing to forget" in again.stdout
    assert forget(tmp_path / "no-run", user).returncode == 2
