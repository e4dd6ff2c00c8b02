"""interestevo finetune: a fine-tuned model scores the events after the old training window better."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import torch

from interestevo.checkpoint import load_checkpoint
from interestevo.data import SyntheticConfig, generate_synthetic
from interestevo.experiment import DataConfig, ExperimentConfig, load_model, run_experiment
from interestevo.models import ModelConfig
from interestevo.models.repeat import LastSeen
from interestevo.serving.engine import Event, RecommendRequest, ServingEngine, load_served_model
from interestevo.serving.store import SQLiteStore
from interestevo.train import TrainConfig

from .conftest import REPO


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

    served = load_served_model(new_run)  # a normal run directory: serve can load (and reload) it
    engine = ServingEngine(served, SQLiteStore(tmp_path / "s.db"))
    newcomer = str(new_ids[-1])
    engine.apply_events([Event("u", newcomer, 2_000_000_000)])
    answer = engine.recommend([RecommendRequest("u", 2_000_000_100, 5)])[0]
    assert answer["cold_start"] is False and len(answer["items"]) == 5

    refused = subprocess.run([sys.executable, "-m", "interestevo", "finetune", str(old_run), "--data",
                              str(tmp_path / "new.csv"), "--out", str(new_run)],
                             capture_output=True, text=True, cwd=REPO, timeout=600)
    assert refused.returncode == 2 and "not empty" in refused.stderr
