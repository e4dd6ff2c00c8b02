"""interestevo: a time-aware LSTM operator and an interest-evolution recommender built on it."""

from .modules import TimeLSTM, TimeLSTMCell
from .ops import extension_info

__all__ = ["TimeLSTM", "TimeLSTMCell", "extension_info"]
__version__ = "0.1.0"
