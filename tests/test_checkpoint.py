import os

import pytest
import torch

from interestevo import checkpoint
from interestevo.checkpoint import atomic_save, atomic_write_text, load_checkpoint


def test_round_trip(tmp_path):
    path = atomic_save({"weights": torch.arange(3.0), "ids": [1, "a"], "epoch": 2}, tmp_path / "sub" / "c.pt")
    loaded = load_checkpoint(path)
    assert loaded["epoch"] == 2 and loaded["ids"] == [1, "a"]
    torch.testing.assert_close(loaded["weights"], torch.arange(3.0))


def test_crash_during_save_keeps_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    atomic_save({"epoch": 1, "weights": torch.ones(1000)}, path)
    real_save = torch.save

    def crash_midway(obj, handle, *args, **kwargs):
        handle.write(b"half a checkpoint")  # bytes already on disk when the process dies
        raise KeyboardInterrupt("killed during save")

    monkeypatch.setattr(checkpoint.torch, "save", crash_midway)
    with pytest.raises(KeyboardInterrupt):
        atomic_save({"epoch": 2, "weights": torch.zeros(1000)}, path)
    monkeypatch.setattr(checkpoint.torch, "save", real_save)
    assert load_checkpoint(path)["epoch"] == 1  # the old checkpoint is whole
    assert os.listdir(tmp_path) == ["last.pt"]  # and no temporary file is left behind


def test_save_goes_through_a_rename(tmp_path, monkeypatch):
    # The destination only ever appears complete: it is created by os.replace, never written in place.
    renames = []
    real_replace = os.replace
    monkeypatch.setattr(checkpoint.os, "replace", lambda a, b: (renames.append((a, b)), real_replace(a, b)))
    atomic_save({"x": 1}, tmp_path / "c.pt")
    atomic_write_text("{}", tmp_path / "m.json")
    assert [os.path.dirname(a) for a, _ in renames] == [str(tmp_path)] * 2
    assert [b for _, b in renames] == [tmp_path / "c.pt", tmp_path / "m.json"]


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "nope.pt")
