"""Hyper-parameters of the sequence recommenders, as one typed dataclass."""
from __future__ import annotations

from dataclasses import dataclass

MODEL_NAMES = ("timelstm", "lstm", "gru", "sasrec", "pop", "timelstm-no-dt")
#: further models, trained only when named in --models
EXTRA_MODEL_NAMES = ("tisasrec",)
#: appended to a neural model's name (``timelstm+text``): the same model with text item features
TEXT_SUFFIX = "+text"


@dataclass
class ModelConfig:
    """Architecture shared by every neural model, so comparisons change one thing at a time."""

    embedding_size: int = 64
    hidden_size: int = 64
    num_layers: int = 1
    dropout: float = 0.1  # on item embeddings, and between recurrent layers
    decay: str = "exp"  # TimeLSTM decay mode: "exp", "log" or "none"
    id_dropout: float = 0.25  # +text models: chance an item's id part is hidden in training
    attention_layers: int = 2  # sasrec/tisasrec: transformer blocks (RecBole's defaults)
    attention_heads: int = 2
    attention_dropout: float = 0.5
    max_history: int = 50  # sasrec/tisasrec (and timelstm with fuse_attention): the last items each event attends to
    # timelstm: fuse a SASRec-style attention encoder over the last max_history events (the long-term
    # view) with the TimeLSTM's (short-term) by a gate that reads the gap to the request (SLi-Rec)
    fuse_attention: bool = True
    # Scoring terms of every neural model (the same for all, so a comparison compares encoders):
    item_activity: bool = True  # score items by their recent activity in the log too
    repeat_scores: bool = True  # a learned term for items the user had, by time since then

    @classmethod
    def from_saved(cls, values: dict) -> "ModelConfig":
        """The configuration stored with a checkpoint or tracker. Those written before the scoring
        terms existed describe models without them; keys of other versions are ignored."""
        values = {"item_activity": False, "repeat_scores": False, "fuse_attention": False, **values}
        return cls(**{k: v for k, v in values.items() if k in cls.__dataclass_fields__})


def split_model_name(name: str) -> tuple[str, bool]:
    """``("timelstm", True)`` for ``"timelstm+text"``; ValueError names a model that does not exist."""
    base, with_text = (name[:-len(TEXT_SUFFIX)], True) if name.endswith(TEXT_SUFFIX) else (name, False)
    known = MODEL_NAMES + EXTRA_MODEL_NAMES
    if base not in known or (with_text and base == "pop"):
        neural = [m for m in known if m != "pop"]
        raise ValueError(f"unknown model {name!r}; expected one of {', '.join(known)}, or a neural one "
                         f"with {TEXT_SUFFIX} ({', '.join(m + TEXT_SUFFIX for m in neural)})")
    return base, with_text
