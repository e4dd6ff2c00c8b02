"""Bad input gets a clear error naming the argument; nothing is clamped or dropped silently."""

import pytest
import torch

from interestevo import TimeLSTM, TimeLSTMCell


@pytest.fixture
def module():
    return TimeLSTM(3, 4, num_layers=2)


INPUT = torch.randn(5, 2, 3)


@pytest.mark.parametrize("bad_value,count_text", [
    (-1.0, "1 negative"), (float("nan"), "1 NaN"), (float("inf"), "1 infinite"),
])
def test_bad_dt_values(module, bad_value, count_text):
    dt = torch.rand(5, 2)
    dt[3, 1] = bad_value
    with pytest.raises(ValueError, match=rf"dt must be finite and >= 0.*{count_text}"):
        module(INPUT, dt=dt)


def test_dt_shape_must_match_input(module):
    with pytest.raises(ValueError, match=r"dt must have shape \(5, 2\).*got \(2, 5\)"):
        module(INPUT, dt=torch.rand(2, 5))
    batch_first = TimeLSTM(3, 4, batch_first=True)
    with pytest.raises(ValueError, match=r"dt must have shape \(2, 5\)"):
        batch_first(INPUT.transpose(0, 1), dt=torch.rand(5, 2))


def test_dt_dtype(module):
    with pytest.raises(TypeError, match="dt must have a real dtype"):
        module(INPUT, dt=torch.ones(5, 2, dtype=torch.bool))
    output, _ = module(INPUT, dt=torch.ones(5, 2, dtype=torch.int32))  # integers are converted
    assert output.dtype == torch.float32


@pytest.mark.parametrize("lengths,error,match", [
    (torch.tensor([6, 1]), ValueError, r"lengths must be in \[0, T\] = \[0, 5\], got values from 1 to 6"),
    (torch.tensor([-1, 1]), ValueError, r"lengths must be in \[0, T\]"),
    (torch.tensor([2.0, 1.0]), TypeError, r"lengths must be an integer tensor, got torch.float32"),
    (torch.tensor([2, 1, 3]), ValueError, r"lengths must have shape \(B,\) = \(2,\), got \(3,\)"),
    (torch.tensor([[2, 1]]), ValueError, r"lengths must have shape \(B,\)"),
])
def test_bad_lengths(module, lengths, error, match):
    with pytest.raises(error, match=match):
        module(INPUT, lengths=lengths)


def test_bad_hx(module):
    with pytest.raises(ValueError, match=r"Expected hidden\[0\] size \(2, 2, 4\), got \[1, 2, 4\]"):
        module(INPUT, (torch.zeros(1, 2, 4), torch.zeros(2, 2, 4)))
    with pytest.raises(ValueError, match=r"Expected hidden\[1\] size \(2, 2, 4\), got \[2, 2, 5\]"):
        module(INPUT, (torch.zeros(2, 2, 4), torch.zeros(2, 2, 5)))
    with pytest.raises(TypeError, match=r"hx must be a tuple \(h_0, c_0\)"):
        module(INPUT, torch.zeros(2, 2, 4))


def test_bad_input(module):
    with pytest.raises(ValueError, match=r"input.size\(-1\) must be equal to input_size. Expected 3, got 7"):
        module(torch.randn(5, 2, 7))
    with pytest.raises(ValueError, match=r"expected input to be 2D \(unbatched\) or 3D, got 4D"):
        module(torch.randn(5, 2, 1, 3))
    with pytest.raises(ValueError, match=r"input dtype torch.float64 does not match"):
        module(INPUT.double())


def test_mismatched_devices(module):
    meta_input = torch.randn(5, 2, 3, device="meta")
    with pytest.raises(ValueError, match=r"input is on meta but the parameters are on cpu"):
        module(meta_input)
    with pytest.raises(ValueError, match=r"dt must be on the input's device cpu, got meta"):
        module(INPUT, dt=torch.rand(5, 2, device="meta"))


def test_unknown_decay_mode_and_bad_sizes():
    with pytest.raises(ValueError, match=r"decay must be one of \('none', 'log', 'exp'\), got 'linear'"):
        TimeLSTM(3, 4, decay="linear")
    with pytest.raises(ValueError, match="hidden_size must be a positive integer"):
        TimeLSTM(3, 0)
    with pytest.raises(ValueError, match="decay must be one of"):
        TimeLSTMCell(3, 4, decay="EXP")


def test_cell_bad_dt():
    cell = TimeLSTMCell(3, 4)
    with pytest.raises(ValueError, match=r"dt must have shape \(2,\)"):
        cell(torch.randn(2, 3), dt=torch.rand(3))
    with pytest.raises(ValueError, match="dt must be finite and >= 0"):
        cell(torch.randn(2, 3), dt=torch.tensor([1.0, -2.0]))


def test_lengths_with_a_packed_sequence(module):
    from torch.nn.utils.rnn import pack_padded_sequence
    packed = pack_padded_sequence(INPUT, torch.tensor([5, 3]))
    with pytest.raises(ValueError, match="lengths must be None for a PackedSequence"):
        module(packed, lengths=torch.tensor([5, 3]))
