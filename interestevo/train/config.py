"""Training hyper-parameters, as one typed dataclass."""
from __future__ import annotations

from dataclasses import dataclass

#: catalogues up to this size train with the full softmax by default; larger ones sample negatives
FULL_SOFTMAX_MAX_ITEMS = 20_000
AUTO_NEGATIVES = 1024


@dataclass
class TrainConfig:
    # A ceiling: training stops on patience first, unless a tiny log keeps improving (a log of 300
    # users makes 10 batches an epoch, so 40 epochs were 400 optimiser steps, too few to converge).
    epochs: int = 200
    batch_size: int = 32  # users per batch; each user's whole history is one row (small batches: more updates)
    window: int = 64  # events per truncated-BPTT window; the state is carried (detached) across windows
    # RecBole's default too. Validation NDCG@10 on yoochoose-100k, seed 0: timelstm 0.3805 at 5e-3
    # (best at epoch 4, then overfitting), 0.4090 at 1e-3; sasrec 0.3982 at 5e-3, 0.4052 at 1e-3
    # (runs stopped by hand after 25 and 15 epochs). It takes more epochs: 65-78 on MovieLens-100K.
    lr: float = 1e-3
    weight_decay: float = 0.01
    # Epochs without a better validation NDCG@10 before stopping: with ~1,000 validation users the
    # metric moves by about +-0.005 from epoch to epoch, so a short patience stops on noise.
    patience: int = 10
    # ... and at least this many optimiser steps without one, so that a small log (few batches an
    # epoch, a noisy validation of few users) is not stopped on noise after a few hundred steps
    patience_steps: int = 500
    max_grad_norm: float = 5.0
    # 0: full softmax over the catalogue; n > 0: sampled softmax with n shared uniform negatives;
    # None: full softmax up to FULL_SOFTMAX_MAX_ITEMS items, else AUTO_NEGATIVES (the full softmax of a
    # 57,000-item log took 245 s an epoch on 2 cores, 1,024 negatives 15 s)
    num_negatives: int | None = None
    seed: int = 0
    device: str = "auto"  # "auto" picks CUDA when available
    amp: bool = True  # bfloat16 autocast on CUDA; ignored on CPU
    eval_batch_size: int = 256
    progress: bool = True  # tqdm bar with the live loss

    def negatives_for(self, num_items: int) -> int:
        """The number of sampled negatives for a catalogue of ``num_items`` (0: full softmax)."""
        if self.num_negatives is not None:
            return self.num_negatives
        return 0 if num_items <= FULL_SOFTMAX_MAX_ITEMS else AUTO_NEGATIVES
