import numpy as np
import pytest
import torch

from interestevo.checkpoint import load_checkpoint
from interestevo.data import TEST, TRAIN, VALID
from interestevo.models import ModelConfig, build_model
from interestevo.train import TrainConfig, evaluate, train_model
from interestevo.train.batches import sequence_batches

from .tiny_data import tiny_dataset

MODEL = ModelConfig(embedding_size=8, hidden_size=8, dropout=0.1)


def fit(tmp_path=None, epochs=2, resume=False, name="timelstm", **train):
    _, inter, split = tiny_dataset()
    torch.manual_seed(0)
    model = build_model(name, inter.num_items, MODEL, torch.from_numpy(inter.item_categories))
    config = TrainConfig(epochs=epochs, batch_size=8, window=6, progress=False, patience=99, **train)
    result = train_model(model, inter, split.targets(TRAIN), split.targets(VALID), config, name=name,
                         checkpoint_dir=tmp_path, resume=resume, extra={"note": "kept"})
    return model, result


def same_weights(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_fixed_seed_gives_the_same_model_twice():
    a, ra = fit(epochs=2)
    b, rb = fit(epochs=2)
    assert same_weights(a, b)
    assert [r.loss for r in ra.history] == [r.loss for r in rb.history]


def test_resume_continues_exactly_where_it_stopped(tmp_path):
    straight, straight_result = fit(tmp_path / "a", epochs=3)
    fit(tmp_path / "b", epochs=1)  # "crash" after one epoch...
    resumed, resumed_result = fit(tmp_path / "b", epochs=3, resume=True)  # ...and resume
    assert [r.loss for r in resumed_result.history] == [r.loss for r in straight_result.history]
    assert resumed_result.best_epoch == straight_result.best_epoch
    assert same_weights(straight, resumed)
    last = load_checkpoint(tmp_path / "b" / "last.pt")
    assert last["epoch"] == 3 and last["note"] == "kept" and "optimizer_state" in last and "rng" in last


def test_best_checkpoint_holds_the_best_validation_epoch(tmp_path):
    model, result = fit(tmp_path, epochs=3)
    best = load_checkpoint(tmp_path / "best.pt")
    scores = [r.valid["ndcg@10"] for r in result.history]
    assert best["epoch"] == result.best_epoch == int(np.argmax(scores)) + 1
    assert best["valid"]["ndcg@10"] == pytest.approx(max(scores))
    # The model is left holding the best epoch's weights.
    assert all(torch.equal(v, best["model_state"][k]) for k, v in model.state_dict().items())


def test_early_stopping_stops_after_patience_epochs_without_improvement():
    _, inter, split = tiny_dataset()
    torch.manual_seed(0)
    model = build_model("gru", inter.num_items, MODEL, None)
    config = TrainConfig(epochs=50, lr=0.0, batch_size=8, window=6, progress=False, patience=2, patience_steps=0)
    result = train_model(model, inter, split.targets(TRAIN), split.targets(VALID), config)
    assert len(result.history) == 3  # lr 0: never improves after the first epoch


def test_early_stopping_also_waits_for_patience_steps_on_a_small_log():
    _, inter, split = tiny_dataset()
    torch.manual_seed(0)
    model = build_model("gru", inter.num_items, MODEL, None)
    steps = len(sequence_batches(inter, split.targets(TRAIN), 8, np.random.default_rng(0)))
    config = TrainConfig(epochs=50, lr=0.0, batch_size=8, window=6, progress=False, patience=2,
                         patience_steps=5 * steps)
    result = train_model(model, inter, split.targets(TRAIN), split.targets(VALID), config)
    assert len(result.history) == 6  # 5 epochs without improvement make 5 * steps steps


@pytest.mark.parametrize("name", ["lstm", "gru", "timelstm-no-dt"])
def test_every_baseline_trains(name):
    _, result = fit(epochs=2, name=name)
    assert result.history[-1].loss < result.history[0].loss


def test_sampled_softmax_trains():
    _, result = fit(epochs=3, num_negatives=20)
    assert np.isfinite([r.loss for r in result.history]).all()
    assert result.history[-1].loss < result.history[0].loss


def test_evaluation_reports_forecasts_against_categories_and_truth():
    synthetic, inter, split = tiny_dataset()
    model, _ = fit(epochs=1)
    ev = evaluate(model, inter, split.targets(TEST), true_interest=synthetic.true_interest_for(inter))
    summary = ev.summary()
    assert summary["count"] == len(split.targets(TEST))
    assert 0 <= summary["forecast_mse"] < 1 and 0 <= summary["forecast_mse_true"] < 1
    assert set(ev.by_history()) == {"1-4", "5-19", "20+"}
    assert np.array_equal(ev.history, inter.position_in_user[ev.events])
