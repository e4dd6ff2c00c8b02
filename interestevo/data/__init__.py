"""The data layer: read logs, clean them into ``Interactions``, split them, or synthesise them.

>>> from interestevo.data import generate_synthetic, SyntheticConfig, leave_one_out_split, TEST
>>> data = generate_synthetic(SyntheticConfig(num_users=50, seed=0)).to_interactions()
>>> split = leave_one_out_split(data)
>>> len(split.targets(TEST)) == data.num_users
True
"""
from .cleaning import CleaningReport
from .errors import DataFormatError
from .interactions import Interactions, prepare_interactions
from .readers import read_interactions, read_item_categories, read_item_labels, read_items
from .splits import TEST, TRAIN, VALID, Split, leave_one_out_split, temporal_split
from .synthetic import SyntheticConfig, SyntheticData, generate_synthetic

__all__ = [
    "Interactions", "CleaningReport", "read_interactions", "read_item_categories", "read_item_labels", "read_items",
    "prepare_interactions", "leave_one_out_split", "temporal_split", "Split", "TRAIN", "VALID", "TEST",
    "SyntheticConfig", "SyntheticData", "generate_synthetic", "DataFormatError",
]
