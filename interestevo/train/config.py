"""Training hyper-parameters, as one typed dataclass."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TrainConfig:
    epochs: int = 40
    batch_size: int = 32  # users per batch; each user's whole history is one row (small batches: more updates)
    window: int = 64  # events per truncated-BPTT window; the state is carried (detached) across windows
    lr: float = 5e-3
    weight_decay: float = 0.01
    # Epochs without a better validation NDCG@10 before stopping: with ~1,000 validation users the
    # metric moves by about +-0.005 from epoch to epoch, so a short patience stops on noise.
    patience: int = 10
    max_grad_norm: float = 5.0
    num_negatives: int = 0  # 0: full softmax over the catalogue; n > 0: sampled softmax, n shared negatives
    seed: int = 0
    device: str = "auto"  # "auto" picks CUDA when available
    amp: bool = True  # bfloat16 autocast on CUDA; ignored on CPU
    eval_batch_size: int = 256
    progress: bool = True  # tqdm bar with the live loss
