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


@pytest.fixture(autouse=True, scope="session")
def _text_cache_outside_home(tmp_path_factory):
    """Text vectors cached by tests go to a temporary directory, never the user's ~/.cache."""
    os.environ["INTERESTEVO_CACHE"] = str(tmp_path_factory.mktemp("interestevo-cache"))
