import numpy as np
import torch

from interestevo.data import TEST, TRAIN
from interestevo.train import sequence_batches

from .tiny_data import tiny_dataset


def test_rows_are_whole_histories_up_to_the_last_target():
    _, inter, split = tiny_dataset()
    targets = split.targets(TRAIN)
    batches = sequence_batches(inter, targets, batch_size=7)
    seen_targets = np.concatenate([b.events[b.targets].numpy() for b in batches])
    assert sorted(seen_targets.tolist()) == targets.tolist()  # every target exactly once
    for b in batches:
        assert (b.lengths[:-1] >= b.lengths[1:]).all()  # longest first: active rows are a prefix
        for row, user in enumerate(b.users.tolist()):
            start = inter.user_offsets[user]
            n = int(b.lengths[row])
            assert b.events[row, :n].tolist() == list(range(start, start + n))
            assert b.items[row, :n].tolist() == inter.item[start:start + n].tolist()
            assert (b.items[row, n:] == 0).all() and (b.events[row, n:] == -1).all()
            assert not b.targets[row, 0]  # a first event is never a target


def test_test_rows_include_all_earlier_events():
    _, inter, split = tiny_dataset()
    (batch,) = sequence_batches(inter, split.targets(TEST), batch_size=1000)
    last = batch.events[torch.arange(len(batch.users)), batch.lengths - 1]
    assert batch.targets[torch.arange(len(batch.users)), batch.lengths - 1].all()
    assert sorted(last.tolist()) == split.targets(TEST).tolist()


def test_windows_keep_active_prefix():
    _, inter, split = tiny_dataset()
    (batch,) = sequence_batches(inter, split.targets(TEST), batch_size=1000)
    pieces = list(batch.windows(5))
    assert sum(int(w.num_targets) for _, w in pieces) == batch.num_targets
    for start, w in pieces:
        assert len(w.users) == int((batch.lengths > start).sum())
        assert (w.lengths >= 1).all() and (w.lengths <= 5).all()


def test_shuffled_batches_are_reproducible():
    _, inter, split = tiny_dataset()
    a = sequence_batches(inter, split.targets(TRAIN), 5, np.random.default_rng([0, 1]))
    b = sequence_batches(inter, split.targets(TRAIN), 5, np.random.default_rng([0, 1]))
    assert [x.users.tolist() for x in a] == [y.users.tolist() for y in b]
