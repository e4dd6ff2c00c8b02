"""Evaluation a block of items at a time gives what scoring the whole catalogue at once gives, and
long epochs and evaluations report progress in a redirected log."""
import importlib
import logging
from functools import lru_cache
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from interestevo.data import TEST, TRAIN, VALID, SyntheticConfig, generate_synthetic, leave_one_out_split
from interestevo.metrics import ranking_metrics, target_ranks
from interestevo.models import ModelConfig, build_model, interest_forecast
from interestevo.train import TrainConfig, evaluate, train_model
from interestevo.train.batches import sequence_batches
from interestevo.train.evaluate import BLOCK_ALIGN, Progress, item_blocks, read_windows

from .tiny_data import tiny_dataset

evaluate_module = importlib.import_module("interestevo.train.evaluate")  # the package's `evaluate` is the function


@lru_cache(maxsize=None)
def catalogue(num_items: int):
    """Interactions over exactly ``num_items`` items (most of them never logged) and test targets."""
    synthetic = generate_synthetic(SyntheticConfig(num_users=30, num_items=num_items, num_categories=5,
                                                   min_events=6, max_events=40, seed=num_items))
    inter = synthetic.to_interactions(keep_unlogged_items=True)
    return inter, leave_one_out_split(inter).targets(TEST)


def random_model(name: str, inter, categories: bool, terms: bool, text: bool = False):
    """A model with every weight random (the scoring terms start at zero: they would add nothing)."""
    torch.manual_seed(0)
    config = ModelConfig(embedding_size=8, hidden_size=8, item_activity=terms, repeat_scores=terms)
    features = None
    if text:  # items without text and training events get equal vectors: ties the ranks must count
        generator = torch.Generator().manual_seed(1)
        features = SimpleNamespace(vectors=torch.randn(inter.num_items + 1, 6, generator=generator),
                                   has_text=torch.rand(inter.num_items + 1, generator=generator) < 0.3)
    model = build_model(name + ("+text" if text else ""), inter.num_items, config,
                        torch.from_numpy(inter.item_categories) if categories else None, features)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.3)
    if name == "pop":
        model.fit(torch.from_numpy(inter.item[:len(inter.item) // 2]))
    model.mark_trained_items(np.bincount(inter.item[:len(inter.item) // 2], minlength=inter.num_items + 1))
    model.observe_log(inter)
    return model


@torch.no_grad()
def whole_catalogue(model, inter, targets, batch_size=256, window=64):
    """Ranks and forecasts as evaluate computed them before blocks: one (rows, num_items + 1)
    matrix of ``model.score`` per chunk of rows."""
    model.eval()
    ranks, forecasts = [], []
    for batch in sequence_batches(inter, targets, batch_size):
        for win, queries, last_seen in read_windows(model, batch, window):
            rows, items, at = queries[win.targets].float(), win.items[win.targets], win.times[win.targets]
            seen = None if last_seen is None else last_seen[win.targets]
            for lo in range(0, len(rows), evaluate_module.ROWS_PER_CHUNK):
                chunk = slice(lo, lo + evaluate_module.ROWS_PER_CHUNK)
                logits = model.score(rows[chunk], at[chunk], None if seen is None else seen[chunk]).float()
                ranks.append(target_ranks(logits, items[chunk]))
                if model.items.categories is not None:
                    forecasts.append(interest_forecast(logits, model.items.categories))
    return torch.cat(ranks).numpy(), torch.cat(forecasts).numpy() if forecasts else None


def assert_same_as_whole_catalogue(model, inter, targets, **kwargs):
    expected_ranks, expected_forecast = whole_catalogue(model, inter, targets, **kwargs)
    ev = evaluate(model, inter, targets, progress=False, **kwargs)
    np.testing.assert_array_equal(ev.ranks, expected_ranks)
    summary = ev.summary()
    if expected_forecast is None:
        assert ev.forecast is None
    else:
        np.testing.assert_allclose(ev.forecast, expected_forecast, rtol=0, atol=1e-6)
        assert summary["forecast_mse"] == pytest.approx(
            float(((expected_forecast.astype(np.float64) - ev.realised) ** 2).mean()), abs=1e-7)
    assert {k: v for k, v in summary.items() if not k.startswith("forecast")} == ranking_metrics(expected_ranks)
    return ev


def small_blocks(monkeypatch):
    """Blocks of BLOCK_ALIGN items whatever the rows: a small catalogue is split into many."""
    monkeypatch.setattr(evaluate_module, "BLOCK_BYTES", 1)


@pytest.mark.parametrize("num_items", [70, 255, 1000])
@pytest.mark.parametrize("name,categories,terms", [
    (name, categories, terms) for name in ("timelstm", "sasrec", "lstm")
    for categories, terms in ((True, True), (False, False), (True, False), (False, True))] + [("pop", True, False)])
def test_blocks_rank_and_forecast_as_the_whole_catalogue(monkeypatch, num_items, name, categories, terms):
    inter, targets = catalogue(num_items)
    model = random_model(name, inter, categories, terms)
    assert_same_as_whole_catalogue(model, inter, targets)  # one block
    small_blocks(monkeypatch)
    assert len(item_blocks(num_items + 1, 1, 4)) == max(1, (num_items + 1) // BLOCK_ALIGN)
    assert_same_as_whole_catalogue(model, inter, targets)


def test_blocks_count_ties_with_the_target(monkeypatch):
    """Cold items without text share their vector: the pessimistic rank counts every one of them."""
    small_blocks(monkeypatch)
    inter, targets = catalogue(1000)
    model = random_model("timelstm", inter, categories=False, terms=True, text=True)
    ev = assert_same_as_whole_catalogue(model, inter, targets)
    assert len(np.unique(ev.ranks)) > 1 and ev.ranks.max() > 100  # cold targets rank behind their twins


def test_small_chunks_of_rows_in_blocks(monkeypatch):
    """Chunks of 1-5 rows take other BLAS kernels than large ones; ranks stay exact."""
    small_blocks(monkeypatch)
    monkeypatch.setattr(evaluate_module, "ROWS_PER_CHUNK", 5)
    inter, targets = catalogue(333)
    assert_same_as_whole_catalogue(random_model("timelstm", inter, True, True), inter, targets, window=7)


def test_targets_scored_off_their_block_are_counted_again(monkeypatch):
    """Scores of the targets from a product of another width could differ in the last bits from
    their own block's: such rows are counted again, against their block's score."""
    small_blocks(monkeypatch)
    inter, targets = catalogue(333)
    model = random_model("sasrec", inter, True, True)
    score_block, perturbed = model.score_block, []

    def off_by_a_little(rows, items, at=None, seen=None):
        logits = score_block(rows, items, at, seen)
        start = int(items[0])
        if start % BLOCK_ALIGN or not torch.equal(items, torch.arange(start, start + len(items))):  # the targets
            perturbed.append(len(rows))
            return logits + torch.randn(logits.shape, generator=torch.Generator().manual_seed(0)) * 0.05
        return logits

    model.score_block = off_by_a_little
    assert_same_as_whole_catalogue(model, inter, targets)
    assert perturbed


def test_blocks_are_aligned_cover_the_catalogue_and_fit_the_bound(monkeypatch):
    bound = 1 << 20
    monkeypatch.setattr(evaluate_module, "BLOCK_BYTES", bound)
    for columns, rows, score_bytes in [(1_000_001, 2048, 12), (1_000_001, 3, 28), (130, 2048, 28), (63, 9, 4),
                                       (64 * 40 + 3, 256, 16), (64 * 40, 256, 16)]:
        blocks = item_blocks(columns, rows, score_bytes)
        assert blocks[0][0] == 0 and blocks[-1][1] == columns
        assert all(a[1] == b[0] for a, b in zip(blocks, blocks[1:]))
        assert all(lo % BLOCK_ALIGN == 0 for lo, _ in blocks)
        widths = [hi - lo for lo, hi in blocks]
        assert min(widths) >= min(BLOCK_ALIGN, columns) and widths[-1] < widths[0] + BLOCK_ALIGN
        # within the bound, unless a block of the narrowest width already exceeds it
        assert all(w * rows * score_bytes <= bound or w == BLOCK_ALIGN for w in widths[:-1])


class FakeClock:
    def __init__(self, step: float):
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def minutes_and_seconds(seconds: int) -> str:
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def progress_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "interestevo.train" and " left" in r.getMessage()]


def test_progress_logs_a_line_every_interval(monkeypatch, caplog):
    monkeypatch.setattr(evaluate_module, "monotonic", FakeClock(25.0))
    caplog.set_level(logging.INFO, logger="interestevo.train")
    progress = Progress(10, "gru 1/3", "batches", bar=False)  # starts at 25 s
    for _ in range(10):
        progress.update(1, 100)  # at 50, 75, ... 275 s
    progress.close()
    # a line when a minute has passed since the last one: after 3, 6 and 9 batches
    assert progress_lines(caplog) == ["gru 1/3: 3/10 batches, 4 events/s, 2 min 55 s left",
                                      "gru 1/3: 6/10 batches, 4 events/s, 1 min 40 s left",
                                      "gru 1/3: 9/10 batches, 4 events/s, 25 s left"]


def test_training_and_evaluation_log_progress_in_a_redirected_log(monkeypatch, caplog):
    _, inter, split = tiny_dataset()
    monkeypatch.setattr(evaluate_module, "monotonic", FakeClock(61.0))  # every step takes a minute
    caplog.set_level(logging.INFO, logger="interestevo.train")
    torch.manual_seed(0)
    model = build_model("gru", inter.num_items, ModelConfig(embedding_size=8, hidden_size=8), None)
    config = TrainConfig(epochs=1, batch_size=8, window=6, progress=False, patience=99, seed=3)
    train_model(model, inter, split.targets(TRAIN), split.targets(VALID), config, name="gru")
    batches = sequence_batches(inter, split.targets(TRAIN), 8, np.random.default_rng([3, 1]))
    trained = np.cumsum([b.num_targets for b in batches])
    lines = progress_lines(caplog)
    training = [line for line in lines if line.startswith("gru 1/1: ")]
    # every step takes more than a minute: a line per batch, with its count, rate and time left
    assert training == [f"gru 1/1: {k}/{len(batches)} batches, {trained[k - 1] / (61 * k):.0f} events/s, "
                        f"{minutes_and_seconds(61 * (len(batches) - k))} left" for k in range(1, len(batches) + 1)]
    valid = len(split.targets(VALID))
    evaluation = [line for line in lines if line.startswith("evaluate: ")]
    done = [int(line.split()[1].split("/")[0]) for line in evaluation]
    assert len(evaluation) > 1 and done == sorted(done) and done[-1] == valid
    assert evaluation[-1].startswith(f"evaluate: {valid}/{valid} targets, ") and evaluation[-1].endswith(" 0 s left")


@pytest.mark.parametrize("name,text", [("timelstm", False), ("sasrec", True), ("pop", False)])
def test_score_block_gives_the_columns_of_score(monkeypatch, name, text):
    small_blocks(monkeypatch)
    inter, targets = catalogue(1000)
    model = random_model(name, inter, categories=True, terms=True, text=text).eval()
    batch = sequence_batches(inter, targets, 256)[0]
    with torch.no_grad():
        for win, queries, last_seen in read_windows(model, batch, 64):
            rows, at = queries[win.targets], win.times[win.targets]
            seen = None if last_seen is None else last_seen[win.targets]
            whole = model.score(rows, at, seen)
            for lo, hi in item_blocks(inter.num_items + 1, len(rows), 4):
                # the same terms through the same modules; a product of another width may round the last bit
                torch.testing.assert_close(model.score_block(rows, torch.arange(lo, hi), at, seen), whole[:, lo:hi],
                                           rtol=1e-6, atol=1e-6)
