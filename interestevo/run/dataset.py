"""Load the interactions a run is configured with, and split them."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..data import (TEST, TRAIN, VALID, DataFormatError, Interactions, Split, generate_synthetic,
                    leave_one_out_split, prepare_interactions, read_interactions, read_item_labels,
                    read_items, temporal_split)
from ..train import training_item_counts
from .config import DataConfig


@dataclass
class Dataset:
    inter: Interactions
    split: Split
    true_interest: np.ndarray | None  # (N, C) on synthetic data, aligned with inter's events

    @cached_property
    def train_item_counts(self) -> np.ndarray:
        """(num_items + 1,) occurrences of each item in what training reads; 0: a cold item."""
        return training_item_counts(self.inter, self.train_targets)

    @property
    def train_targets(self) -> np.ndarray:
        return self.split.targets(TRAIN)

    @property
    def valid_targets(self) -> np.ndarray:
        return self.split.targets(VALID)

    @property
    def test_targets(self) -> np.ndarray:
        return self.split.targets(TEST)


def item_labels(config: DataConfig) -> dict[str, tuple[str | None, list]]:
    """Title and categories per item id (as text) from the configured item file; empty without one."""
    if config.items is None:
        return {}
    renamed = config.item_col if config.item_col != "item_id" else None
    labels = read_item_labels(config.items, item_col=renamed, category_col=config.category_col)
    return {str(i): (t if isinstance(t, str) else None, list(c) if isinstance(c, (list, tuple)) else [])
            for i, t, c in zip(labels["item_id"], labels["title"], labels["categories"])}


def load_dataset(config: DataConfig, with_text: bool = False) -> Dataset:
    """Read (or synthesise), clean and split; DataFormatError says what is wrong with the input.

    ``with_text`` reads item texts and keeps the item file's items that have no events in the
    catalogue (text features can recommend them).
    """
    if config.path is None:
        synthetic = generate_synthetic(config.synthetic)
        inter = synthetic.to_interactions(dt_unit=config.dt_unit, k_core=config.k_core,
                                          keep_unlogged_items=with_text)
        truth = synthetic.true_interest_for(inter)
    else:
        frame = read_interactions(config.path, config.format, user_col=config.user_col,
                                  item_col=config.item_col, time_col=config.time_col)
        items = None
        if config.items:
            # A renamed item column usually has the same name in the item file.
            renamed = config.item_col if config.item_col != DataConfig.item_col else None
            items = read_items(config.items, item_col=renamed, category_col=config.category_col,
                               text_col=config.text_col, require_categories=not with_text)
            if not with_text:
                items = items.drop(columns="text")
        inter = prepare_interactions(frame, items, k_core=config.k_core, dt_unit=config.dt_unit,
                                     keep_unlogged_items=with_text)
        truth = None
    if len(inter) == 0:
        raise DataFormatError(f"{config.path or 'synthetic data'}: no interactions left after cleaning")
    split = leave_one_out_split(inter) if config.split == "loo" else temporal_split(inter)
    dataset = Dataset(inter, split, truth)
    for role, targets in (("training", dataset.train_targets), ("test", dataset.test_targets)):
        if len(targets) == 0:
            raise DataFormatError(f"{config.path or 'synthetic data'}: the {config.split} split leaves no "
                                  f"{role} targets (users need at least 3 events for leave-one-out)")
    return dataset
