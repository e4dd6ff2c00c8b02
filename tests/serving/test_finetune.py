"""interestevo finetune: a fine-tuned model scores the events after the old training window better."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from interestevo.checkpoint import load_checkpoint
from interestevo.data import SyntheticConfig, generate_synthetic
from interestevo.run import DataConfig, ExperimentConfig, Run
from interestevo.experiment import load_model, run_experiment
from interestevo.experiment.finetune import finetune_run
from interestevo.models import ModelConfig
from interestevo.models.repeat import LastSeen
from interestevo.serving import Event, InterestTracker, RecommendRequest, ServedModel
from interestevo.serving.store import SQLiteStore
from interestevo.train import TrainConfig

from .conftest import REPO, SYNTHETIC


def drifting_log(tmp_path):
    """A synthetic log whose later part has items that did not exist before (released late)."""
    data = generate_synthetic(SyntheticConfig(num_users=80, num_items=150, num_categories=6, min_events=20,
                                              max_events=30, new_items=0.3, release_quantile=0.6, seed=3))
    frame = data.frame[["user_id", "item_id", "timestamp"]]
    first, second = np.quantile(frame.timestamp, [0.6, 0.8])
    parts = {"old": frame[frame.timestamp < first], "new": frame[(frame.timestamp >= first) & (frame.timestamp < second)],
             "future": frame[frame.timestamp >= second]}
    for name, part in parts.items():
        part.to_csv(tmp_path / f"{name}.csv", index=False)
    items = data.items.assign(category=["|".join(c) for c in data.items["categories"]])[["item_id", "category"]]
    items.to_csv(tmp_path / "items.csv", index=False)
    return parts


def future_ndcg(run, frame_before: pd.DataFrame, future: pd.DataFrame) -> float:
    """NDCG@10 of every future event given all events before it (the model's catalogue; an item it
    does not know scores 0 and reads as padding)."""
    model = load_model(run, "timelstm").eval()
    item_ids = load_checkpoint(run / "checkpoints" / "timelstm" / "best.pt")["item_ids"]
    index = {str(item): i for i, item in enumerate(item_ids) if i}
    log = pd.concat([frame_before.assign(future=False), future.assign(future=True)])
    log = log.sort_values(["user_id", "timestamp"], kind="stable")
    scores = []
    with torch.no_grad():
        for _, events in log.groupby("user_id"):
            items = torch.tensor([[index.get(str(i), 0) for i in events.item_id]])
            gaps = np.diff(events.timestamp.to_numpy(), prepend=events.timestamp.iloc[0]) / 3600.0
            lengths, times = torch.tensor([items.shape[1]]), torch.tensor(events.timestamp.to_numpy()[None])
            queries, _ = model(items, torch.from_numpy(gaps[None].astype(np.float32)), lengths, model.initial_state(1))
            last_seen = LastSeen(1, model.num_items).read(items, times, lengths)  # the repeat term reads it
            logits = model.score(queries[0], times[0], last_seen[0])
            for j in np.flatnonzero(events.future.to_numpy()):
                target = int(items[0, j])
                if j == 0 or target == 0:
                    scores.append(0.0)
                    continue
                rank = int((logits[j] > logits[j, target]).sum())
                scores.append(1 / np.log2(rank + 2) if rank < 10 else 0.0)
    return float(np.mean(scores))


def test_finetuned_model_scores_the_later_events_better_and_is_servable(tmp_path):
    parts = drifting_log(tmp_path)
    config = ExperimentConfig(data=DataConfig(path=str(tmp_path / "old.csv"), items=str(tmp_path / "items.csv")),
                              model=ModelConfig(embedding_size=16, hidden_size=16, dropout=0.0),
                              train=TrainConfig(epochs=3, device="cpu", progress=False, batch_size=16),
                              models=("timelstm",), out=str(tmp_path / "old-run"))
    run_experiment(config)
    old_run, new_run = tmp_path / "old-run", tmp_path / "new-run"
    done = subprocess.run([sys.executable, "-m", "interestevo", "finetune", str(old_run), "--data",
                           str(tmp_path / "new.csv"), "--out", str(new_run), "--epochs", "3"],
                          capture_output=True, text=True, cwd=REPO, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "fine-tuned timelstm" in done.stdout

    old_ids = load_checkpoint(old_run / "checkpoints" / "timelstm" / "best.pt")["item_ids"]
    new_ids = load_checkpoint(new_run / "checkpoints" / "timelstm" / "best.pt")["item_ids"]
    assert new_ids[:len(old_ids)] == old_ids and len(new_ids) > len(old_ids)  # grown, old indices kept
    before = pd.concat([parts["old"], parts["new"]])
    old_score, new_score = future_ndcg(old_run, before, parts["future"]), future_ndcg(new_run, before, parts["future"])
    assert new_score > old_score, (old_score, new_score)

    served = ServedModel.from_run(Run.open(new_run))  # a normal run directory: serve can load (and reload) it
    tracker = InterestTracker(served, SQLiteStore(tmp_path / "s.db"))
    newcomer = str(new_ids[-1])
    assert tracker.apply_events([Event("u", newcomer, 2_000_000_000)])["applied"] == 1
    answer = tracker.answer([RecommendRequest("u", 2_000_000_100, 5)])[0]
    assert answer["cold_start"] is False and len(answer["items"]) == 5
    tracker.store.close()
    # The new run's serving.db holds every user of its log (old and new events) under the tuned weights.
    tuned = InterestTracker.open(Run.open(new_run))
    try:
        log = pd.concat([parts["old"], parts["new"]])
        assert sorted(tuned.user_ids()) == sorted(log.user_id.astype(str).unique())
        records = tuned.store.records(tuned.user_ids())
        assert {r.fingerprint for r in records.values()} == {tuned.served.fingerprint}
        last = log.groupby(log.user_id.astype(str)).timestamp.max()
        assert {u: r.last_time for u, r in records.items()} == last.to_dict()
    finally:
        tuned.store.close()

    refused = subprocess.run([sys.executable, "-m", "interestevo", "finetune", str(old_run), "--data",
                              str(tmp_path / "new.csv"), "--out", str(new_run)],
                             capture_output=True, text=True, cwd=REPO, timeout=600)
    assert refused.returncode == 2 and "not empty" in refused.stderr


@pytest.fixture(scope="module")
def windowed_run(tmp_path_factory):
    """A small synthetic run read in windows of 4 events (its users have 8 to 14), whose 6 categories
    are in generation order (sports, music, ...), not alphabetical."""
    out = tmp_path_factory.mktemp("runs") / "windowed"
    run_experiment(ExperimentConfig(data=DataConfig(synthetic=SYNTHETIC),
                                    model=ModelConfig(embedding_size=8, hidden_size=8, dropout=0.0),
                                    train=TrainConfig(epochs=1, device="cpu", progress=False, batch_size=16, window=4),
                                    models=("timelstm",), out=str(out)))
    return out


def new_events(run, path, users, per_user=1):
    """``per_user`` events of the run's own items for each of ``users``, after the run's log."""
    items = load_checkpoint(run / "checkpoints" / "timelstm" / "best.pt")["item_ids"][1:]
    rows = [(user, items[(7 * n + k) % len(items)], 1_900_000_000 + 1000 * n + k)
            for n, user in enumerate(users) for k in range(per_user)]
    pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]).to_csv(path, index=False)
    return path


def test_finetune_trains_when_a_window_holds_no_new_event(windowed_run, tmp_path):
    # Every user's one new event comes after 8+ old ones: the first 4-event window of every batch
    # has no target (it crashed: "cannot reshape tensor of 0 elements into shape [0, -1]").
    data = new_events(windowed_run, tmp_path / "one_each.csv", users=range(1, 41))
    result = finetune_run(windowed_run, data, tmp_path / "tuned")
    assert result.new_events == 40 and (tmp_path / "tuned" / "checkpoints" / "timelstm" / "best.pt").is_file()


def test_finetune_matches_string_and_integer_user_ids_by_their_text(windowed_run, tmp_path):
    # The run's log has integer ids; a file with "newu" reads every id as a string.
    data = new_events(windowed_run, tmp_path / "mixed.csv", users=["newu", "3"], per_user=3)
    finetune_run(windowed_run, data, tmp_path / "tuned")
    old_users = load_checkpoint(windowed_run / "checkpoints" / "timelstm" / "best.pt")["user_ids"]
    users = [str(u) for u in load_checkpoint(tmp_path / "tuned" / "checkpoints" / "timelstm" / "best.pt")["user_ids"]]
    assert len(users) == len(old_users) + 1 and users.count("3") == 1 and "newu" in users  # "3" is user 3
    events = pd.read_parquet(tmp_path / "tuned" / "events.parquet")
    assert (events.user_id.astype(str) == "3").sum() > 3  # user 3's old events and the new ones


def test_a_failed_finetune_leaves_no_out_directory(windowed_run, tmp_path, monkeypatch):
    data = new_events(windowed_run, tmp_path / "new.csv", users=range(1, 11), per_user=2)
    before = sorted(p.name for p in tmp_path.iterdir())

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patched:
        patched.setattr(InterestTracker, "import_log", disk_full)  # writing the users' states, after training
        with pytest.raises(OSError):
            finetune_run(windowed_run, data, tmp_path / "tuned")
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no --out, no hidden partial one
    finetune_run(windowed_run, data, tmp_path / "tuned")  # a rerun is not refused as "not empty"
    assert sorted(p.name for p in (tmp_path / "tuned").iterdir()) == [
        "checkpoints", "config.json", "events.parquet", "finetune.json", "items.csv", "metrics.json", "serving.db"]


def test_a_finetuned_run_never_overwrites_what_appeared_in_out_meanwhile(windowed_run, tmp_path, monkeypatch):
    from interestevo.experiment import finetune

    data = new_events(windowed_run, tmp_path / "new.csv", users=range(1, 11), per_user=2)
    out, train = tmp_path / "tuned", finetune.train_model

    def someone_writes_out(*args, **kwargs):
        out.mkdir()
        (out / "notes.txt").write_text("mine")
        return train(*args, **kwargs)

    monkeypatch.setattr(finetune, "train_model", someone_writes_out)
    with pytest.raises(ValueError, match="complete in"):
        finetune_run(windowed_run, data, out)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    kept = [p for p in tmp_path.iterdir() if p.name.startswith(".tuned.")]
    assert len(kept) == 1 and (kept[0] / "checkpoints" / "timelstm" / "best.pt").is_file()


def test_a_finetuned_synthetic_run_serves_the_categories_of_its_item_file(windowed_run, tmp_path):
    data = new_events(windowed_run, tmp_path / "new.csv", users=range(1, 21), per_user=3)
    tuned = tmp_path / "tuned"
    finetune_run(windowed_run, data, tuned, lr=1e-12)  # weights as good as unchanged
    served = ServedModel.from_run(Run.open(tuned))
    table = pd.read_csv(tuned / "items.csv", dtype={"item_id": str})
    listed = dict(zip(table.item_id, table.category.str.split("|")))
    assert len(listed) == len(served.item_ids) - 1
    for index, item in enumerate(served.item_ids[1:], start=1):
        assert sorted(served.item_categories(index)) == sorted(listed[str(item)]), item
    # Each learned category column moved with its name: the old items' vectors are the old run's.
    old, new = load_model(windowed_run, "timelstm").eval(), load_model(tuned, "timelstm").eval()
    with torch.no_grad():
        old_vectors, new_vectors = old.items.lookup()[0], new.items.lookup()[0]
    torch.testing.assert_close(new_vectors[:len(old_vectors)], old_vectors, rtol=0, atol=1e-6)
