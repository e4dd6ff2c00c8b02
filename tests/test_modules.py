"""TimeLSTM/TimeLSTMCell as drop-ins: nn.LSTM equivalence, from_lstm, parameters, the cell."""

import math

import pytest
import torch
from torch import nn

from interestevo import TimeLSTM, TimeLSTMCell
from interestevo.modules import DECAY_RATE_RANGE

LSTM_TOLERANCE = dict(rtol=0, atol=1e-5)


def lstm_and_copy(num_layers=2, batch_first=False, bias=True, **options):
    torch.manual_seed(0)
    lstm = nn.LSTM(6, 10, num_layers=num_layers, batch_first=batch_first, bias=bias)
    return lstm, TimeLSTM.from_lstm(lstm, **options)


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_decay_none_is_nn_lstm(batch_first, bias):
    lstm, time_lstm = lstm_and_copy(batch_first=batch_first, bias=bias, decay="none")
    inputs = torch.randn(4, 7, 6) if batch_first else torch.randn(7, 4, 6)
    hx = (torch.randn(2, 4, 10), torch.randn(2, 4, 10))
    dt = torch.rand(inputs.shape[:2]) * 100  # ignored by decay="none"
    expected, (h_e, c_e) = lstm(inputs, hx)
    output, (h_n, c_n) = time_lstm(inputs, hx, dt=dt)
    torch.testing.assert_close(output, expected, **LSTM_TOLERANCE)
    torch.testing.assert_close(h_n, h_e, **LSTM_TOLERANCE)
    torch.testing.assert_close(c_n, c_e, **LSTM_TOLERANCE)


@pytest.mark.parametrize("decay,decomposition", [("exp", True), ("exp", False), ("log", True)])
def test_without_dt_every_mode_is_nn_lstm_with_same_gradients(decay, decomposition):
    lstm, time_lstm = lstm_and_copy(decay=decay, decomposition=decomposition)
    inputs = torch.randn(5, 3, 6, requires_grad=True)
    expected, _ = lstm(inputs)
    expected.sum().backward()
    expected_grad = inputs.grad.clone()
    inputs.grad = None
    output, _ = time_lstm(inputs)  # dt=None means 0: g = 1 exactly
    output.sum().backward()
    torch.testing.assert_close(output, expected, **LSTM_TOLERANCE)
    torch.testing.assert_close(inputs.grad, expected_grad, **LSTM_TOLERANCE)
    for name, param in lstm.named_parameters():
        torch.testing.assert_close(getattr(time_lstm, name).grad, param.grad, **LSTM_TOLERANCE)


def test_positional_contract_and_unbatched_like_nn_lstm():
    lstm, time_lstm = lstm_and_copy(decay="none")
    inputs = torch.randn(5, 6)
    expected, (h_e, c_e) = lstm(inputs)
    output, (h_n, c_n) = time_lstm(inputs)
    assert output.shape == expected.shape and h_n.shape == h_e.shape == (2, 10)
    torch.testing.assert_close(output, expected, **LSTM_TOLERANCE)


def test_parameter_names_shapes_and_init():
    module = TimeLSTM(3, 8, num_layers=2)
    shapes = {name: tuple(p.shape) for name, p in module.named_parameters()}
    assert shapes == {
        "weight_ih_l0": (32, 3), "weight_hh_l0": (32, 8), "bias_ih_l0": (32,), "bias_hh_l0": (32,),
        "weight_decomp_l0": (8, 8), "bias_decomp_l0": (8,), "decay_rate_l0": (8,),
        "weight_ih_l1": (32, 8), "weight_hh_l1": (32, 8), "bias_ih_l1": (32,), "bias_hh_l1": (32,),
        "weight_decomp_l1": (8, 8), "bias_decomp_l1": (8,), "decay_rate_l1": (8,),
    }
    rates = torch.nn.functional.softplus(module.decay_rate_l0.double())
    low, high = DECAY_RATE_RANGE
    assert math.isclose(rates.min().item(), low, rel_tol=1e-4)
    assert math.isclose(rates.max().item(), high, rel_tol=1e-4)
    log_rates = rates.log()
    assert torch.allclose(log_rates.diff(), log_rates.diff()[0].expand(7), rtol=1e-3)  # log-uniform
    bound = 1 / math.sqrt(8)
    assert module.weight_hh_l1.abs().max() <= bound
    assert {n for n, _ in TimeLSTM(3, 8, decay="log", decomposition=False).named_parameters()} == {
        "weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"}


def test_dt_changes_memory_and_longer_gaps_forget_more():
    torch.manual_seed(1)
    module = TimeLSTM(2, 4, decay="exp", decomposition=False)
    inputs = torch.randn(2, 1, 2)
    _, (_, c_short) = module(inputs, dt=torch.tensor([[0.0], [0.1]]))
    _, (_, c_long) = module(inputs, dt=torch.tensor([[0.0], [1e4]]))
    _, (h_first, c_first) = module(inputs[:1])
    # after a huge gap the memory cell is emptied: the step starts from c* = 0
    _, (_, c_emptied) = module(inputs[1:], (h_first, torch.zeros_like(c_first)))
    assert not torch.allclose(c_short, c_long)
    torch.testing.assert_close(c_long, c_emptied, atol=1e-3, rtol=0)


def test_cell_steps_equal_the_sequence():
    torch.manual_seed(2)
    sequence = TimeLSTM(3, 5).double()
    cell = TimeLSTMCell(3, 5).double()
    cell.load_state_dict({name[:-3]: p for name, p in sequence.state_dict().items()})
    inputs = torch.randn(6, 2, 3, dtype=torch.float64)
    dt = torch.rand(6, 2, dtype=torch.float64) * 5
    output, (h_n, c_n) = sequence(inputs, dt=dt)
    h = c = torch.zeros(2, 5, dtype=torch.float64)
    for step in range(6):
        h, c = cell(inputs[step], (h, c), dt=dt[step])
        torch.testing.assert_close(h, output[step])
    torch.testing.assert_close(c, c_n[0])
    h1, c1 = cell(inputs[0, 0], dt=torch.tensor(0.5, dtype=torch.float64))  # unbatched
    assert h1.shape == (5,) and c1.shape == (5,)


def test_cell_without_dt_is_nn_lstm_cell():
    torch.manual_seed(3)
    reference = nn.LSTMCell(4, 6)
    cell = TimeLSTMCell(4, 6, decay="log")
    cell.load_state_dict(reference.state_dict(), strict=False)
    x, hx = torch.randn(3, 4), (torch.randn(3, 6), torch.randn(3, 6))
    for actual, expected in zip(cell(x, hx), reference(x, hx)):
        torch.testing.assert_close(actual, expected, **LSTM_TOLERANCE)


def test_repr_and_state_dict_round_trip():
    module = TimeLSTM(3, 4, num_layers=2, batch_first=True, decay="log")
    assert "decay='log'" in repr(module) and "batch_first=True" in repr(module)
    copy = TimeLSTM(3, 4, num_layers=2, batch_first=True, decay="log")
    copy.load_state_dict(module.state_dict())
    inputs = torch.randn(2, 3, 3)
    torch.testing.assert_close(copy(inputs)[0], module(inputs)[0])
