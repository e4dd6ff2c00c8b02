"""Small synthetic datasets shared by the recommender tests (built once per process)."""
from __future__ import annotations

from functools import lru_cache

from interestevo.data import SyntheticConfig, generate_synthetic, leave_one_out_split


def tiny_config(num_users: int = 40, seed: int = 0) -> SyntheticConfig:
    return SyntheticConfig(num_users=num_users, num_items=60, num_categories=6, min_events=8, max_events=30,
                           seed=seed)


@lru_cache(maxsize=None)
def tiny_dataset(num_users: int = 40, seed: int = 0):
    """(synthetic data, interactions, leave-one-out split)."""
    synthetic = generate_synthetic(tiny_config(num_users, seed))
    inter = synthetic.to_interactions()
    return synthetic, inter, leave_one_out_split(inter)
