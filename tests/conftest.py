import os

import pytest
import torch

# Two cores: keep intra-op threads modest so parallel helpers and tests do not thrash.
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture
def reference_mode(monkeypatch):
    """Makes TimeLSTM run on the plain-PyTorch reference inside the test."""
    def use(enabled: bool = True):
        monkeypatch.setenv("INTERESTEVO_REFERENCE", "1" if enabled else "0")
    return use
