"""Bad input gets a clear error naming the argument, of the type nn.LSTM / nn.LSTMCell raise for
the same failure; nothing is clamped or dropped silently."""

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

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
    with pytest.raises(RuntimeError, match=r"Expected hidden\[0\] size \(2, 2, 4\), got \[1, 2, 4\]"):
        module(INPUT, (torch.zeros(1, 2, 4), torch.zeros(2, 2, 4)))
    with pytest.raises(RuntimeError, match=r"Expected hidden\[1\] size \(2, 2, 4\), got \[2, 2, 5\]"):
        module(INPUT, (torch.zeros(2, 2, 4), torch.zeros(2, 2, 5)))
    with pytest.raises(TypeError, match=r"hx must be a tuple \(h_0, c_0\)"):
        module(INPUT, torch.zeros(2, 2, 4))
    with pytest.raises(RuntimeError, match=r"expected two hidden states \(h_0, c_0\), got 3"):
        module(INPUT, (torch.zeros(2, 2, 4),) * 3)
    with pytest.raises(TypeError, match=r"hx\[0\] must be a Tensor, got NoneType"):
        module(INPUT, (None, torch.zeros(2, 2, 4)))


def test_bad_input(module):
    with pytest.raises(RuntimeError, match=r"input.size\(-1\) must be equal to input_size. Expected 3, got 7"):
        module(torch.randn(5, 2, 7))
    with pytest.raises(ValueError, match=r"expected input to be 2D \(unbatched\) or 3D, got 4D"):
        module(torch.randn(5, 2, 1, 3))
    with pytest.raises(ValueError, match=r"input dtype torch.float64 does not match"):
        module(INPUT.double())


def test_mismatched_devices(module):
    meta_input = torch.randn(5, 2, 3, device="meta")
    with pytest.raises(RuntimeError, match=r"input is on meta but the parameters are on cpu"):
        module(meta_input)
    with pytest.raises(RuntimeError, match=r"hx\[1\] is on meta but the input is on cpu"):
        module(INPUT, (torch.zeros(2, 2, 4), torch.zeros(2, 2, 4, device="meta")))
    with pytest.raises(RuntimeError, match=r"dt must be on the input's device cpu, got meta"):
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


def test_lengths_with_unbatched_input_and_a_packed_dt_of_other_batch_sizes(module):
    with pytest.raises(ValueError, match="lengths is only for batched input"):
        module(INPUT[:, 0], lengths=torch.tensor([5]))
    packed = pack_padded_sequence(INPUT, torch.tensor([5, 3]))
    other = pack_padded_sequence(torch.rand(5, 2), torch.tensor([5, 2]))
    with pytest.raises(ValueError, match="dt as a PackedSequence must have the input's batch_sizes"):
        module(packed, dt=other)


# ---- the same failure given to nn.LSTM / nn.LSTMCell and to ours: the same exception type ----------

def zeros(*shape, **options):
    return torch.zeros(*shape, **options)


def packed(data, lengths=(5, 3)):
    return pack_padded_sequence(data, torch.tensor(lengths))


def under_autocast(call):
    with torch.autocast("cpu", dtype=torch.bfloat16):
        return call()


GOOD_HX = (zeros(2, 2, 4), zeros(2, 2, 4))
# For a 2-layer LSTM(3, 4) and input (T, B, I) = (5, 2, 3).
SEQUENCE_FAILURES = {
    "input 4-D": lambda m: m(torch.randn(5, 2, 1, 3)),
    "input 1-D": lambda m: m(torch.randn(3)),
    "input size": lambda m: m(torch.randn(5, 2, 7)),
    "input float64": lambda m: m(INPUT.double()),
    "input bfloat16 outside autocast": lambda m: m(INPUT.bfloat16()),
    "input integer": lambda m: m(INPUT.long()),
    "input device": lambda m: m(INPUT.to("meta")),
    "h_0 layers": lambda m: m(INPUT, (zeros(1, 2, 4), zeros(2, 2, 4))),
    "c_0 size": lambda m: m(INPUT, (zeros(2, 2, 4), zeros(2, 2, 5))),
    "hx batch": lambda m: m(INPUT, (zeros(2, 3, 4), zeros(2, 3, 4))),
    "hx 2-D with batched input": lambda m: m(INPUT, (zeros(2, 4), zeros(2, 4))),
    "hx 3-D with unbatched input": lambda m: m(INPUT[:, 0], GOOD_HX),
    "three hidden states": lambda m: m(INPUT, GOOD_HX + (zeros(2, 2, 4),)),
    "h_0 float64": lambda m: m(INPUT, (zeros(2, 2, 4, dtype=torch.float64), zeros(2, 2, 4))),
    "c_0 float64": lambda m: m(INPUT, (zeros(2, 2, 4), zeros(2, 2, 4, dtype=torch.float64))),
    "hx device": lambda m: m(INPUT, (zeros(2, 2, 4, device="meta"), zeros(2, 2, 4))),
    "packed input size": lambda m: m(packed(torch.randn(5, 2, 7))),
    "packed hx batch": lambda m: m(packed(INPUT), (zeros(2, 3, 4), zeros(2, 3, 4))),
    "packed hx size": lambda m: m(packed(INPUT), (zeros(2, 2, 5), zeros(2, 2, 4))),
    "packed hx float64": lambda m: m(packed(INPUT), (zeros(2, 2, 4, dtype=torch.float64),) * 2),
    "autocast input float64": lambda m: under_autocast(lambda: m(INPUT.double())),
    "autocast input integer": lambda m: under_autocast(lambda: m(INPUT.long())),
    "autocast hx float64": lambda m: under_autocast(
        lambda: m(INPUT.bfloat16(), (zeros(2, 2, 4, dtype=torch.float64),) * 2)),
}


@pytest.mark.parametrize("call", SEQUENCE_FAILURES.values(), ids=SEQUENCE_FAILURES.keys())
def test_sequence_failures_raise_nn_lstm_s_exception_type(call):
    torch.manual_seed(0)
    lstm = nn.LSTM(3, 4, 2)
    with pytest.raises(Exception) as expected:
        call(lstm)
    for decay in ("none", "exp"):
        with pytest.raises(Exception) as caught:
            call(TimeLSTM.from_lstm(lstm, decay=decay))
        assert type(caught.value) is type(expected.value), (caught.value, expected.value)


def test_where_sequence_failures_deliberately_differ_from_nn_lstm():
    torch.manual_seed(0)
    lstm = nn.LSTM(3, 4, 2)
    module = TimeLSTM.from_lstm(lstm)
    # nn.LSTM skips its Python checks for a PackedSequence and its kernel raises RuntimeError; a
    # packed input is checked as nn.RNNBase.check_input checks any input (nn.GRU does so too).
    with pytest.raises(RuntimeError, match="mat1 and mat2 must have the same dtype"):
        lstm(packed(INPUT.double()))
    with pytest.raises(ValueError, match="input dtype torch.float64 does not match"):
        module(packed(INPUT.double()))
    # nn.LSTM indexes hx before looking at it: a lone tensor fails as hx[0] of the wrong rank, a
    # 1-tuple with an IndexError, a None with an AttributeError.
    with pytest.raises(RuntimeError):
        lstm(INPUT, zeros(2, 2, 4))
    with pytest.raises(TypeError, match=r"hx must be a tuple \(h_0, c_0\) of two tensors, got Tensor"):
        module(INPUT, zeros(2, 2, 4))
    with pytest.raises(IndexError):
        lstm(INPUT, (zeros(2, 2, 4),))
    with pytest.raises(RuntimeError, match="expected two hidden states"):
        module(INPUT, (zeros(2, 2, 4),))
    # an empty sequence is a sequence: its output is empty and the state is the initial one
    with pytest.raises(RuntimeError, match="Expected sequence length to be larger than 0"):
        lstm(torch.randn(0, 2, 3))
    output, (h_n, _) = module(torch.randn(0, 2, 3), GOOD_HX)
    assert output.shape == (0, 2, 4) and torch.equal(h_n, GOOD_HX[0])


CELL_INPUT, CELL_STATE = torch.randn(2, 3), zeros(2, 4)
CELL_FAILURES = {
    "input 3-D": lambda m: m(torch.randn(5, 2, 3)),
    "input 0-D": lambda m: m(torch.tensor(1.0)),
    "input size": lambda m: m(torch.randn(2, 7)),
    "input float64": lambda m: m(CELL_INPUT.double()),
    "input bfloat16 outside autocast": lambda m: m(CELL_INPUT.bfloat16()),
    "input integer": lambda m: m(CELL_INPUT.long()),
    "input device": lambda m: m(CELL_INPUT.to("meta")),
    "h size": lambda m: m(CELL_INPUT, (zeros(2, 5), CELL_STATE)),
    "c size": lambda m: m(CELL_INPUT, (CELL_STATE, zeros(2, 5))),
    "hx batch": lambda m: m(CELL_INPUT, (zeros(3, 4), zeros(3, 4))),
    "hx 1-D with batched input": lambda m: m(CELL_INPUT, (zeros(4), zeros(4))),
    "hx 2-D with unbatched input": lambda m: m(CELL_INPUT[0], (CELL_STATE, CELL_STATE)),
    "hx a tensor": lambda m: m(CELL_INPUT, CELL_STATE),
    "three hidden states": lambda m: m(CELL_INPUT, (CELL_STATE,) * 3),
    "h float64": lambda m: m(CELL_INPUT, (CELL_STATE.double(), CELL_STATE)),
    "hx device": lambda m: m(CELL_INPUT, (zeros(2, 4, device="meta"), CELL_STATE)),
    "autocast input float64": lambda m: under_autocast(lambda: m(CELL_INPUT.double())),
    "autocast h float64": lambda m: under_autocast(lambda: m(CELL_INPUT, (CELL_STATE.double(), CELL_STATE))),
}


@pytest.mark.parametrize("call", CELL_FAILURES.values(), ids=CELL_FAILURES.keys())
def test_cell_failures_raise_nn_lstm_cell_s_exception_type(call):
    torch.manual_seed(0)
    lstm_cell = nn.LSTMCell(3, 4)
    cell = TimeLSTMCell(3, 4)
    with pytest.raises(Exception) as expected:
        call(lstm_cell)
    with pytest.raises(Exception) as caught:
        call(cell)
    assert type(caught.value) is type(expected.value), (caught.value, expected.value)


def test_cell_refuses_a_c_of_another_dtype_that_nn_lstm_cell_promotes():
    # nn.LSTMCell refuses a float64 h (its GEMM) but lets a float64 c promote the new state to float64
    h, c = nn.LSTMCell(3, 4)(CELL_INPUT, (CELL_STATE, CELL_STATE.double()))
    assert c.dtype == torch.float64
    with pytest.raises(RuntimeError, match=r"hx\[1\] dtype torch.float64 does not match the input's"):
        TimeLSTMCell(3, 4)(CELL_INPUT, (CELL_STATE, CELL_STATE.double()))
