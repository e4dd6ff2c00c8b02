"""The built-in dataset: synthetic users whose interests drift in time, with the truth recorded.

Each user has a long-term preference over categories (Dirichlet) and a short-term interest: one
category, sticky within a burst of events minutes apart. Between events the short-term interest
relaxes toward the long-term one,

    interest(Δ) = w(Δ) · onehot(short) + (1 − w(Δ)) · long,    w(Δ) = exp(−Δ / τ),

with Δ the gap since the user's previous event and τ a few hours. Bursts are separated by
heavy-tailed gaps of days to weeks (log-normal); a burst's first event is drawn from the relaxed
interest, after which the short-term interest jumps to a new category (never the previous
burst's), which the rest of the burst follows. So after a 5-minute gap the right guess is the
current burst's category, after two weeks it is the long-term preference: a model that ignores
Δt must lose. Events pick a category from the interest, then an item by Zipf popularity within
that category. ``true_interest`` is the distribution each event was drawn from.

Every item has a text made from its category's words by templates, with noise (words of other
categories, filler), so language-model features can be tested without downloads. With
``new_items > 0`` that fraction of the catalogue is released late, at the ``release_quantile``
of all event times; before it, a pick of a new item is redrawn among the released ones. Under
the temporal split with t1 at the same quantile, they are items never seen in training.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from .errors import DataFormatError
from .interactions import Interactions, prepare_interactions

CATEGORY_VOCABULARY = {
    "sports": ["football", "league", "match", "stadium", "athlete", "tournament", "coach", "goal"],
    "music": ["album", "guitar", "concert", "melody", "band", "singer", "jazz", "orchestra"],
    "cooking": ["recipe", "kitchen", "baking", "chef", "dinner", "spices", "pasta", "dessert"],
    "travel": ["journey", "flight", "hotel", "beach", "passport", "island", "tour", "backpacking"],
    "science": ["physics", "experiment", "biology", "chemistry", "laboratory", "research", "atoms", "theory"],
    "fashion": ["dress", "runway", "designer", "shoes", "jacket", "style", "boutique", "fabric"],
    "gaming": ["console", "multiplayer", "quest", "arcade", "controller", "esports", "level", "boss"],
    "movies": ["film", "director", "cinema", "actor", "screenplay", "thriller", "premiere", "trailer"],
    "books": ["novel", "author", "chapter", "library", "poetry", "fiction", "reading", "publisher"],
    "tech": ["software", "laptop", "smartphone", "startup", "programming", "chip", "cloud", "gadget"],
    "fitness": ["workout", "gym", "running", "yoga", "muscles", "cardio", "training", "stretching"],
    "art": ["painting", "gallery", "sculpture", "canvas", "artist", "museum", "drawing", "watercolor"],
    "history": ["ancient", "empire", "war", "medieval", "archive", "kings", "revolution", "ruins"],
    "finance": ["stocks", "investing", "bank", "budget", "market", "savings", "bonds", "economy"],
    "gardening": ["plants", "flowers", "soil", "seeds", "garden", "compost", "roses", "vegetables"],
    "pets": ["dog", "cat", "puppy", "veterinarian", "kitten", "leash", "aquarium", "parrot"],
    "comedy": ["jokes", "sitcom", "standup", "humor", "parody", "laughs", "comedian", "satire"],
    "news": ["headlines", "journalism", "politics", "breaking", "report", "election", "press", "editorial"],
    "design": ["typography", "interior", "architecture", "logo", "furniture", "layout", "sketch", "minimalist"],
    "cars": ["engine", "racing", "electric", "sedan", "motor", "driving", "tires", "convertible"],
}
CATEGORY_WORDS = list(CATEGORY_VOCABULARY)
FILLER_WORDS = ["new", "classic", "complete", "daily", "essential", "ultimate", "modern", "weekly",
                "premium", "collection", "edition", "special", "simple", "best"]
TEXT_TEMPLATES = ("{0} {1} and {2}", "the {0} of {1}: {2}", "{filler} {0} {1} {2}", "{0}, {1}, {2}",
                  "a {filler} guide to {0} and {1}", "{1} {0} {filler} {2}")


@dataclass(frozen=True)
class SyntheticConfig:
    """Size and dynamics of the synthetic dataset; the defaults train on a CPU in about a minute."""

    num_users: int = 2000
    num_items: int = 1000
    num_categories: int = 20
    min_events: int = 50  # per user, uniform in [min_events, max_events]
    max_events: int = 80
    concentration: float = 0.3  # Dirichlet α of long-term preferences; small: a few favourites
    zipf_exponent: float = 1.1  # item popularity ∝ rank^-s within a category
    tau_hours: float = 3.0  # how fast the short-term interest relaxes
    mean_burst_events: float = 6.0  # geometric burst length
    burst_gap_minutes: float = 4.0  # mean gap inside a burst (exponential)
    session_gap_days: float = 3.0  # median gap between bursts (log-normal)
    session_gap_sigma: float = 1.2  # log-normal spread: ~5% under 10 hours, ~5% over 3 weeks
    start: int = 1_577_836_800  # 2020-01-01 UTC; users start uniformly within start_spread_days
    start_spread_days: float = 365.0
    new_items: float = 0.0  # fraction of items released late (never seen before release_quantile)
    release_quantile: float = 0.8  # of all event times; the temporal split's default t1
    text_noise: float = 0.3  # chance that an item's text also holds a word of another category
    seed: int = 0

    def __post_init__(self):
        fractions = ("new_items", "release_quantile", "text_noise")
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name not in ("seed", "start", *fractions) and not value > 0:
                raise DataFormatError(f"SyntheticConfig.{f.name}={value!r} must be positive")
        for name in fractions:
            value = getattr(self, name)
            if not 0 <= value < 1 or (name == "release_quantile" and value == 0):
                raise DataFormatError(f"SyntheticConfig.{name}={value!r} must be in "
                                      f"{'(0, 1)' if name == 'release_quantile' else '[0, 1)'}")
        if self.min_events > self.max_events:
            raise DataFormatError(f"SyntheticConfig.min_events={self.min_events} exceeds "
                                  f"max_events={self.max_events}")
        if self.num_categories < 2 or self.num_items < self.num_categories:
            raise DataFormatError(
                f"SyntheticConfig needs num_categories >= 2 and num_items >= num_categories; got "
                f"{self.num_categories} categories, {self.num_items} items")


@dataclass(frozen=True, eq=False, repr=False)
class SyntheticData:
    frame: pd.DataFrame  # user_id, item_id, timestamp (int64 s), sorted by user then time
    items: pd.DataFrame  # item_id, categories (list[str]), text
    true_interest: np.ndarray  # float32 (len(frame), C): distribution each event was drawn from
    category_names: list[str]
    config: SyntheticConfig
    long_term: np.ndarray  # float32 (num_users, C): row u - 1 is user_id u's long-term preference
    burst_start: np.ndarray  # bool (len(frame),): the event opens a new burst

    def __repr__(self) -> str:
        return (f"SyntheticData(events={len(self.frame)}, users={self.config.num_users}, "
                f"items={self.config.num_items}, categories={len(self.category_names)})")

    def to_interactions(self, dt_unit: str = "hours", k_core: int = 0,
                        keep_unlogged_items: bool = False) -> Interactions:
        """The same path as real data; category columns keep ``category_names``' order."""
        return prepare_interactions(self.frame, self.items, k_core=k_core, dt_unit=dt_unit,
                                    category_names=self.category_names,
                                    keep_unlogged_items=keep_unlogged_items)

    def true_interest_for(self, interactions: Interactions) -> np.ndarray:
        """``true_interest`` aligned with the events of ``interactions`` made from this data."""
        return self.true_interest[interactions.source_row]


def category_names(count: int) -> list[str]:
    return [CATEGORY_WORDS[c] if c < len(CATEGORY_WORDS) else f"category{c}" for c in range(count)]


def generate_synthetic(config: SyntheticConfig = SyntheticConfig()) -> SyntheticData:
    """Generate the dataset; the same config (seed included) gives the same data.

    >>> data = generate_synthetic(SyntheticConfig(num_users=100, seed=1))
    >>> interactions = data.to_interactions()
    >>> data.true_interest_for(interactions).shape == (len(interactions), 20)
    True
    """
    rng = np.random.default_rng(config.seed)
    names = category_names(config.num_categories)
    item_category, pick_item, top_item = _item_catalogue(config, rng)
    long_term = rng.dirichlet(np.full(config.num_categories, config.concentration), config.num_users)
    counts = rng.integers(config.min_events, config.max_events + 1, config.num_users)
    starts = config.start + (rng.random(config.num_users) * config.start_spread_days * 86400).astype(np.int64)
    times, items, interest, burst = _simulate(config, rng, long_term, starts, pick_item)
    present = np.arange(config.max_events)[None, :] < counts[:, None]  # users have different lengths
    # Separate streams: texts and releases do not change the events of an existing seed.
    picked = items[present]
    if config.new_items > 0:
        picked = _release_late(config, np.random.default_rng([config.seed, 2]), times[present], picked,
                               item_category, pick_item, top_item)
    frame = pd.DataFrame({
        "user_id": np.repeat(np.arange(1, config.num_users + 1, dtype=np.int64), counts),
        "item_id": picked + 1,
        "timestamp": times[present],
    })
    catalogue = pd.DataFrame({"item_id": np.arange(1, config.num_items + 1, dtype=np.int64)})
    catalogue["categories"] = [[names[c]] for c in item_category]
    catalogue["text"] = item_texts(item_category, names, config.text_noise, np.random.default_rng([config.seed, 1]))
    return SyntheticData(frame=frame, items=catalogue, true_interest=interest[present],
                         category_names=names, config=config,
                         long_term=long_term.astype(np.float32), burst_start=burst[present])


def _item_catalogue(config: SyntheticConfig, rng: np.random.Generator):
    """Each item's category (balanced, shuffled) and a sampler of items given categories."""
    item_category = rng.permutation(np.arange(config.num_items) % config.num_categories)
    # Sort items by category, in random order inside it; position in that order is the Zipf rank.
    by_category = np.lexsort((rng.random(config.num_items), item_category))
    sorted_category = item_category[by_category]
    category_start = np.searchsorted(sorted_category, np.arange(config.num_categories))
    rank = np.arange(config.num_items) - category_start[sorted_category] + 1
    weight = rank ** -config.zipf_exponent
    totals = np.bincount(sorted_category, weights=weight)
    cumulative = np.cumsum(weight)
    before = np.concatenate([[0.0], np.cumsum(totals)])[sorted_category]
    within = (cumulative - before) / totals[sorted_category]  # in (0, 1], 1 at each category's last
    within[np.r_[category_start[1:] - 1, config.num_items - 1]] = 1.0
    keys = sorted_category + within  # categories occupy disjoint ranges (c, c + 1]

    def pick_item(category: np.ndarray, u: np.ndarray) -> np.ndarray:
        return by_category[np.searchsorted(keys, category + u * (1 - 1e-12), side="right")]

    return item_category, pick_item, by_category[category_start]


def _release_late(config, rng, times, items, item_category, pick_item, top_item) -> np.ndarray:
    """Items after redrawing, among released items, every pick of a new item before its release.

    Each category's most popular item is never new, so a redraw always has somewhere to land.
    """
    candidates = np.setdiff1d(np.arange(config.num_items), top_item)
    count = min(int(round(config.new_items * config.num_items)), len(candidates))
    new = np.zeros(config.num_items, bool)
    new[rng.choice(candidates, count, replace=False)] = True
    release = np.quantile(times, config.release_quantile, method="lower")
    items = items.copy()
    early = new[items] & (times < release)
    for _ in range(50):  # a redraw keeps Zipf popularity among released items
        if not early.any():
            break
        items[early] = pick_item(item_category[items[early]], rng.random(int(early.sum())))
        early = new[items] & (times < release)
    items[early] = top_item[item_category[items[early]]]
    return items


def item_texts(item_category: np.ndarray, names: list[str], noise: float, rng: np.random.Generator) -> list[str]:
    """A short text per item from its category's words; with probability ``noise`` a word of
    another category is mixed in, so the category is likely but not certain from the text."""
    vocabularies = [CATEGORY_VOCABULARY.get(name) or [f"{name}-{k}" for k in range(8)] for name in names]
    texts = []
    for category in item_category:
        words = list(rng.choice(vocabularies[category], 3, replace=False))
        if rng.random() < noise:
            other = (category + rng.integers(1, len(names))) % len(names)
            words[rng.integers(3)] = rng.choice(vocabularies[other])
        template = TEXT_TEMPLATES[rng.integers(len(TEXT_TEMPLATES))]
        texts.append(template.format(*words, filler=rng.choice(FILLER_WORDS)))
    return texts


def _simulate(config, rng, long_term, starts, pick_item):
    """Vectorised over users, a loop over the event index; arrays are (users, max_events)."""
    users, steps, num_categories = config.num_users, config.max_events, config.num_categories
    tau = config.tau_hours * 3600.0
    times = np.zeros((users, steps), np.int64)
    items = np.zeros((users, steps), np.int64)
    interest = np.zeros((users, steps, num_categories), np.float32)
    burst = np.zeros((users, steps), bool)
    short = np.zeros(users, np.int64)
    clock = starts.copy()
    for step in range(steps):
        if step == 0:
            opens, w = np.ones(users, bool), np.zeros(users)  # no previous event: long-term only
        else:
            opens = rng.random(users) < 1.0 / config.mean_burst_events
            gap = np.where(
                opens,
                rng.lognormal(np.log(config.session_gap_days * 86400), config.session_gap_sigma, users),
                rng.exponential(config.burst_gap_minutes * 60, users))
            gap = np.maximum(1, np.rint(gap)).astype(np.int64)  # >= 1 s: no ties inside a user
            clock = clock + gap
            w = np.exp(-gap / tau)
        current = (1 - w)[:, None] * long_term
        current[np.arange(users), short] += w
        category = _sample_rows(current, rng.random(users))
        times[:, step], items[:, step] = clock, pick_item(category, rng.random(users))
        interest[:, step], burst[:, step] = current, opens
        # The burst's category takes over from its second event; never the previous one again.
        jump = rng.integers(0 if step == 0 else 1, num_categories, users)
        short = np.where(opens, (short + jump) % num_categories, short)
    return times, items, interest, burst


def _sample_rows(probabilities: np.ndarray, u: np.ndarray) -> np.ndarray:
    """One category per row of ``probabilities`` by inverse CDF."""
    cumulative = np.cumsum(probabilities, axis=1)
    chosen = (cumulative < (u * cumulative[:, -1])[:, None]).sum(axis=1)
    return np.minimum(chosen, probabilities.shape[1] - 1)
