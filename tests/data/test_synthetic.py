"""The synthetic dataset: deterministic, honest truth, and time that matters."""
import numpy as np
import pandas as pd
import pytest

from interestevo.data.synthetic import CATEGORY_VOCABULARY
from interestevo.data import DataFormatError, SyntheticConfig, generate_synthetic

SMALL = SyntheticConfig(num_users=300, num_items=200, num_categories=10, seed=3)


@pytest.fixture(scope="module")
def data():
    return generate_synthetic(SMALL)


def categories_of_events(data):
    per_item = np.array([data.category_names.index(c[0]) for c in data.items["categories"]])
    return per_item[data.frame["item_id"].to_numpy() - 1]


def test_deterministic_with_a_seed(data):
    again = generate_synthetic(SMALL)
    pd.testing.assert_frame_equal(data.frame, again.frame)
    np.testing.assert_array_equal(data.true_interest, again.true_interest)
    other = generate_synthetic(SyntheticConfig(num_users=300, num_items=200, num_categories=10, seed=4))
    assert not data.frame["item_id"].equals(other.frame["item_id"])


def test_shapes_order_and_types(data):
    frame = data.frame
    assert list(frame.columns) == ["user_id", "item_id", "timestamp"]
    assert frame["timestamp"].dtype == np.int64
    counts = frame.groupby("user_id").size()
    assert len(counts) == 300 and counts.between(SMALL.min_events, SMALL.max_events).all()
    same_user = np.diff(frame["user_id"].to_numpy()) == 0
    assert np.all(np.diff(frame["user_id"].to_numpy()) >= 0)
    assert np.all(np.diff(frame["timestamp"].to_numpy())[same_user] > 0)
    for text, (category,) in zip(data.items["text"], data.items["categories"]):
        own = set(CATEGORY_VOCABULARY[category]) & set(text.replace(",", " ").replace(":", " ").split())
        assert len(own) >= 1, (text, category)  # noise replaces at most one of the three words
    assert data.category_names[:2] == ["sports", "music"] and len(data.category_names) == 10
    assert data.burst_start[frame.groupby("user_id").head(1).index].all()


def test_true_interests_are_distributions_that_explain_the_events(data):
    interest = data.true_interest
    assert interest.dtype == np.float32 and interest.shape == (len(data.frame), 10)
    assert np.all(interest >= 0)
    np.testing.assert_allclose(interest.sum(axis=1), 1, atol=1e-5)
    drawn = interest[np.arange(len(interest)), categories_of_events(data)]
    assert np.all(drawn > 0)  # every event's category had positive probability
    np.testing.assert_allclose(data.long_term.sum(axis=1), 1, atol=1e-5)


def test_time_matters_same_category_after_short_gaps(data):
    category = categories_of_events(data)
    users, times = data.frame["user_id"].to_numpy(), data.frame["timestamp"].to_numpy()
    same_user = users[1:] == users[:-1]
    gap = np.diff(times)
    repeat = category[1:] == category[:-1]
    short = repeat[same_user & (gap < 30 * 60)].mean()
    long = repeat[same_user & (gap > 3 * 86400)].mean()
    assert short > 0.6 and long < 0.25 and short > 3 * long
    # after a long gap the long-term favourite is the better guess than the last category
    favourite = data.long_term.argmax(axis=1)[users[1:] - 1]
    after_long = same_user & (gap > 3 * 86400)
    assert (category[1:] == favourite)[after_long].mean() > 2 * long


def test_to_interactions_and_aligned_truth(data):
    for k_core in (0, 20):
        interactions = data.to_interactions(dt_unit="minutes", k_core=k_core)
        truth = data.true_interest_for(interactions)
        assert truth.shape == (len(interactions), 10)
        assert interactions.category_names == data.category_names
        # the item's own category is where its row of item_categories puts all the weight
        own = interactions.item_categories[interactions.item].argmax(axis=1)
        assert np.all(truth[np.arange(len(truth)), own] > 0)
        assert interactions.dt_unit == "minutes"
    assert len(data.to_interactions()) == len(data.frame)


def test_default_size_is_quick():
    data = generate_synthetic()
    assert 1500 <= data.frame["user_id"].nunique() <= 3000
    assert 50 <= len(data.frame) / data.frame["user_id"].nunique() <= 80


@pytest.mark.parametrize("changes,field", [
    ({"num_users": 0}, "num_users"), ({"tau_hours": -1.0}, "tau_hours"),
    ({"min_events": 9, "max_events": 3}, "min_events"), ({"num_categories": 1}, "num_categories"),
])
def test_bad_config(changes, field):
    with pytest.raises(DataFormatError, match=field):
        SyntheticConfig(**changes)
