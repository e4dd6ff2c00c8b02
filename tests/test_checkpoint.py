import os

import pytest
import torch

from interestevo import checkpoint
from interestevo.checkpoint import CheckpointError, atomic_save, atomic_write_text, load_checkpoint, save_checkpoint


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


def test_a_checkpoint_carries_its_checksum_and_damage_is_refused(tmp_path):
    path = save_checkpoint({"weights": torch.arange(1000.0), "epoch": 3}, tmp_path / "c.pt")
    assert load_checkpoint(path)["epoch"] == 3
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = bytes(b ^ 0xFF for b in data[middle:middle + 64])  # 64 flipped bytes
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="checksum does not match"):
        load_checkpoint(path)


@pytest.mark.parametrize("damage", ["truncated", "empty", "garbage", "torch zip cut short"])
def test_broken_files_are_one_clear_error(tmp_path, damage):
    good = save_checkpoint({"weights": torch.ones(100)}, tmp_path / "good.pt").read_bytes()
    legacy = tmp_path / "legacy.pt"
    torch.save({"weights": torch.ones(100)}, legacy)
    content = {"truncated": good[:len(good) // 2], "empty": b"", "garbage": b"\x00not a checkpoint" * 10,
               "torch zip cut short": legacy.read_bytes()[:300]}[damage]
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(path)
    assert str(path) in str(caught.value) and len(str(caught.value).splitlines()) == 1


def test_an_unsafe_pickle_is_refused_without_advising_weights_only_false(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"payload": UnsafeObject()}, path)
    with pytest.raises(CheckpointError, match="not a checkpoint this program wrote") as caught:
        load_checkpoint(path)
    assert "weights_only" not in str(caught.value)


class UnsafeObject:
    """An arbitrary class: loading it would run code from the file."""


def test_checkpoints_of_older_versions_without_a_checksum_still_load(tmp_path):
    path = tmp_path / "old.pt"
    torch.save({"epoch": 7}, path)
    assert load_checkpoint(path)["epoch"] == 7
