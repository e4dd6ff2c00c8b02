"""TimeLSTM as a drop-in for nn.LSTM, checked the way PyTorch checks nn.LSTM.

What PyTorch's own nn.LSTM tests exercise at module level (test/test_nn.py: args checks, initial
hidden state, cpu-vs-fused comparisons through ``all_weights``, weight norm, dropout state and
saving, weight tying, empty batches, variable-length sequences; common_modules.py: constructor
errors, unbatched inputs) is asked of TimeLSTM here: with decay="none" it must behave like nn.LSTM
with the same weights, bidirectional and proj_size included. With decay="exp" the bidirectional
module is compared with a composition of the plain-PyTorch reference, one sequence at a time.
"""

import copy
import io
import itertools
import pickle
import re

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from interestevo import TimeLSTM, TimeLSTMCell
from interestevo.reference import time_lstm_cell_ref

TOLERANCES = {torch.float32: dict(rtol=1e-4, atol=1e-5), torch.float64: dict(rtol=1e-9, atol=1e-10)}
LAYOUTS = [dict(bidirectional=b, proj_size=p) for b, p in itertools.product((False, True), (0, 3))]
LAYOUT_IDS = [f"{'bi' if c['bidirectional'] else 'uni'}-proj{c['proj_size']}" for c in LAYOUTS]


def twins(dtype=torch.float64, seed=0, input_size=4, hidden_size=5, **options):
    """An nn.LSTM and a TimeLSTM(decay="none") with the same weights."""
    torch.manual_seed(seed)
    lstm = nn.LSTM(input_size, hidden_size, **options).to(dtype)
    return lstm, TimeLSTM.from_lstm(lstm, decay="none")


def random_state(lstm, batch, dtype, requires_grad=True):
    layers = lstm.num_layers * (2 if lstm.bidirectional else 1)
    h = torch.randn(layers, batch, lstm.proj_size or lstm.hidden_size, dtype=dtype)
    c = torch.randn(layers, batch, lstm.hidden_size, dtype=dtype)
    return h.requires_grad_(requires_grad), c.requires_grad_(requires_grad)


def run_and_differentiate(module, inputs, hx, **kwargs):
    """Output, states and the gradients of a fixed random loss w.r.t. input, hx and parameters."""
    for param in module.parameters():
        param.grad = None
    leaves = [inputs] + list(hx)
    for leaf in leaves:
        leaf.grad = None
    output, (h_n, c_n) = module(inputs, hx, **kwargs)
    weights = torch.Generator().manual_seed(7)
    loss = sum((t * torch.randn(t.shape, generator=weights, dtype=t.dtype)).sum()
               for t in (output, h_n, c_n))
    loss.backward()
    grads = {name: p.grad for name, p in module.named_parameters()}
    return output, h_n, c_n, [leaf.grad for leaf in leaves], grads


def assert_same_run(lstm_run, time_run, tolerances):
    names = ("output", "h_n", "c_n")
    for name, expected, actual in zip(names, lstm_run[:3], time_run[:3]):
        torch.testing.assert_close(actual, expected, **tolerances, msg=lambda m: f"{name}: {m}")
    for index, (expected, actual) in enumerate(zip(lstm_run[3], time_run[3])):
        torch.testing.assert_close(actual, expected, **tolerances, msg=lambda m: f"grad {index}: {m}")
    for name, expected in lstm_run[4].items():
        torch.testing.assert_close(time_run[4][name], expected, **tolerances,
                                   msg=lambda m: f"grad {name}: {m}")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("layout", LAYOUTS, ids=LAYOUT_IDS)
@pytest.mark.parametrize("batch_first,bias", [(False, True), (True, False)])
def test_padded_outputs_states_and_every_gradient_match_nn_lstm(dtype, layout, batch_first, bias):
    lstm, time_lstm = twins(dtype, num_layers=2, batch_first=batch_first, bias=bias, **layout)
    steps, batch = 6, 3
    shape = (batch, steps, 4) if batch_first else (steps, batch, 4)
    inputs = torch.randn(shape, dtype=dtype, requires_grad=True)
    hx = random_state(lstm, batch, dtype)
    dt = torch.rand(shape[:2], dtype=dtype) * 50  # decay="none" ignores it
    expected = run_and_differentiate(lstm, inputs, hx)
    assert_same_run(expected, run_and_differentiate(time_lstm, inputs, hx, dt=dt), TOLERANCES[dtype])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("layout", LAYOUTS, ids=LAYOUT_IDS)
@pytest.mark.parametrize("batch_first", [False, True])
def test_packed_and_lengths_match_nn_lstm_packed(dtype, layout, batch_first):
    lstm, time_lstm = twins(dtype, seed=1, num_layers=2, batch_first=batch_first, **layout)
    lengths = torch.tensor([3, 6, 1, 4])  # unsorted: enforce_sorted=False reorders internally
    steps, batch = 6, 4
    shape = (batch, steps, 4) if batch_first else (steps, batch, 4)
    padded = torch.randn(shape, dtype=dtype)
    hx = random_state(lstm, batch, dtype)

    def packed_run(module):
        inputs = padded.clone().requires_grad_(True)
        packed = pack_padded_sequence(inputs, lengths, batch_first=batch_first, enforce_sorted=False)
        output, state = module(packed, hx)
        return inputs, pad_packed_sequence(output, batch_first=batch_first)[0], state

    def gradients(inputs, output, state, module):
        for param in module.parameters():
            param.grad = None
        for leaf in hx:
            leaf.grad = None
        weights = torch.Generator().manual_seed(7)  # the loss run_and_differentiate uses
        loss = sum((t * torch.randn(t.shape, generator=weights, dtype=dtype)).sum()
                   for t in (output, *state))
        loss.backward()
        return [inputs.grad, *(h.grad for h in hx)], {n: p.grad for n, p in module.named_parameters()}

    expected_in, expected_out, expected_state = packed_run(lstm)
    expected = (expected_out, *expected_state, *gradients(expected_in, expected_out, expected_state, lstm))
    actual_in, actual_out, actual_state = packed_run(time_lstm)
    actual = (actual_out, *actual_state, *gradients(actual_in, actual_out, actual_state, time_lstm))
    assert_same_run(expected, actual, TOLERANCES[dtype])

    # the same batch padded, with lengths: identical outputs (zeros past each length) and states
    inputs = padded.clone().requires_grad_(True)
    with_lengths = run_and_differentiate(time_lstm, inputs, hx, lengths=lengths)
    assert_same_run(expected, with_lengths, TOLERANCES[dtype])


@pytest.mark.parametrize("layout", LAYOUTS, ids=LAYOUT_IDS)
def test_reference_fallback_matches_nn_lstm_too(reference_mode, layout):
    reference_mode()  # the path taken without the compiled extension
    lstm, time_lstm = twins(torch.float64, seed=2, num_layers=2, **layout)
    lengths = torch.tensor([2, 5, 4])
    padded = torch.randn(5, 3, 4, dtype=torch.float64)
    hx = random_state(lstm, 3, torch.float64)
    packed = pack_padded_sequence(padded, lengths, enforce_sorted=False)
    expected, (h_e, c_e) = lstm(packed, hx)
    output, (h_n, c_n) = time_lstm(padded, hx, lengths=lengths)
    torch.testing.assert_close(output, pad_packed_sequence(expected)[0], **TOLERANCES[torch.float64])
    torch.testing.assert_close(h_n, h_e, **TOLERANCES[torch.float64])
    torch.testing.assert_close(c_n, c_e, **TOLERANCES[torch.float64])


@pytest.mark.parametrize("layout", LAYOUTS, ids=LAYOUT_IDS)
def test_parameter_names_shapes_order_and_all_weights_are_nn_lstm_s(layout):
    lstm = nn.LSTM(4, 6, num_layers=3, **layout)
    time_lstm = TimeLSTM(4, 6, num_layers=3, decay="none", decomposition=False, **layout)
    assert [(n, p.shape) for n, p in time_lstm.named_parameters()] == \
        [(n, p.shape) for n, p in lstm.named_parameters()]
    assert time_lstm._flat_weights_names == lstm._flat_weights_names
    assert time_lstm._all_weights == lstm._all_weights
    assert [[w.shape for w in ws] for ws in time_lstm.all_weights] == \
        [[w.shape for w in ws] for ws in lstm.all_weights]
    for attribute in ("mode", "input_size", "hidden_size", "num_layers", "bias", "batch_first",
                      "dropout", "bidirectional", "proj_size"):
        assert getattr(time_lstm, attribute) == getattr(lstm, attribute), attribute
    x = torch.randn(2, 3, 4)
    assert time_lstm.get_expected_hidden_size(x, None) == lstm.get_expected_hidden_size(x, None)
    assert time_lstm.get_expected_cell_size(x, None) == lstm.get_expected_cell_size(x, None)


@pytest.mark.parametrize("layout", LAYOUTS, ids=LAYOUT_IDS)
def test_weights_copied_through_all_weights_give_nn_lstm_s_outputs(layout):
    # how PyTorch's cpu-vs-cudnn comparisons copy one RNN's weights into another
    lstm = nn.LSTM(4, 5, num_layers=2, **layout).double()
    time_lstm = TimeLSTM(4, 5, num_layers=2, decay="log", **layout).double()
    for time_layer, lstm_layer in zip(time_lstm.all_weights, lstm.all_weights):
        for time_weight, lstm_weight in zip(time_layer, lstm_layer):  # the extra ones come last
            time_weight.data.copy_(lstm_weight.data)
    inputs = torch.randn(5, 2, 4, dtype=torch.float64)
    torch.testing.assert_close(time_lstm(inputs)[0], lstm(inputs)[0], **TOLERANCES[torch.float64])


def test_time_aware_parameters_follow_each_layer_and_direction():
    module = TimeLSTM(3, 4, bidirectional=True, proj_size=2)  # decay="exp", decomposition=True
    assert module._all_weights == [
        ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "weight_hr_l0",
         "weight_decomp_l0", "bias_decomp_l0", "decay_rate_l0"],
        ["weight_ih_l0_reverse", "weight_hh_l0_reverse", "bias_ih_l0_reverse", "bias_hh_l0_reverse",
         "weight_hr_l0_reverse", "weight_decomp_l0_reverse", "bias_decomp_l0_reverse",
         "decay_rate_l0_reverse"]]
    assert module.weight_hh_l0_reverse.shape == (16, 2) and module.weight_hr_l0.shape == (2, 4)
    assert module.weight_decomp_l0_reverse.shape == (4, 4)  # acts on the cell, which has size H
    assert "proj_size=2" in repr(module) and "bidirectional=True" in repr(module)


@pytest.mark.parametrize("layout", LAYOUTS, ids=LAYOUT_IDS)
@pytest.mark.parametrize("batch_first", [False, True])
def test_unbatched_input_is_a_batch_of_one(layout, batch_first):
    lstm, time_lstm = twins(torch.float64, num_layers=2, batch_first=batch_first, **layout)
    inputs = torch.randn(5, 4, dtype=torch.float64)
    h, c = (s[:, 0] for s in random_state(lstm, 1, torch.float64, requires_grad=False))
    expected, (h_e, c_e) = lstm(inputs, (h, c))
    output, (h_n, c_n) = time_lstm(inputs, (h, c))
    assert output.shape == expected.shape and h_n.shape == h_e.shape and c_n.shape == c_e.shape
    for actual, wanted in ((output, expected), (h_n, h_e), (c_n, c_e)):
        torch.testing.assert_close(actual, wanted, **TOLERANCES[torch.float64])


@pytest.mark.parametrize("layout", LAYOUTS, ids=LAYOUT_IDS)
def test_zero_initial_state_is_the_default(layout):
    module = TimeLSTM(6, 5, num_layers=2, **layout)
    inputs, dt = torch.randn(4, 3, 6), torch.rand(4, 3) * 5
    zeros = tuple(torch.zeros(shape) for shape in module._state_shapes(3))
    output1, state1 = module(inputs, zeros, dt=dt)
    output2, state2 = module(inputs, dt=dt)
    torch.testing.assert_close(output1, output2, rtol=0, atol=0)
    torch.testing.assert_close(state1, state2, rtol=0, atol=0)


# ---- the error contract: nn.LSTM's exception types, our messages -----------------------------

# (arguments, error, message, what nn.LSTM does: "same" message, same "type" only, or None where
# nn.LSTM accepts the value and TimeLSTM is stricter)
CONSTRUCTOR_ERRORS = [
    ((10, 0), ValueError, "hidden_size must be .*greater than zero", "same"),
    ((0, 10), ValueError, "input_size must be .*greater than zero", "same"),
    ((10, 10, 0), ValueError, "num_layers must be .*greater than zero", "same"),
    ((3.0, 5), TypeError, "input_size should be of type int, got: float", "same"),
    (("10", 5), TypeError, "input_size should be of type int, got: str", "same"),
    ((3, 5.0), TypeError, "hidden_size should be of type int, got: float", "same"),
    ((3, 5, 2.0), TypeError, "num_layers should be of type int, got: float", "type"),
    ((3, 5, 1, 0), TypeError, "bias should be of type bool, got: int", "same"),
    ((3, 5, 1, "True"), TypeError, "bias should be of type bool, got: str", "same"),
    ((3, 5, 1, True, 1), TypeError, "batch_first should be of type bool, got: int", "same"),
    ((3, 5, 1, True, "False"), TypeError, "batch_first should be of type bool, got: str", "same"),
    ((3, 5, 2, True, False, 1.5), ValueError, r"dropout should be a number in .*\[0, 1\]", "same"),
    ((3, 5, 2, True, False, True), ValueError, r"dropout should be a number in .*\[0, 1\]", "same"),
    ((3, 5, 1, True, False, 0.0, False, -1), ValueError,
     "proj_size should be a positive integer or zero", "same"),
    ((3, 5, 1, True, False, 0.0, False, 5), ValueError,
     "proj_size has to be smaller than hidden_size", "same"),
    ((3, 5, 1, True, False, 0.0, False, 2.0), TypeError, "proj_size should be of type int", "type"),
    ((3, 5, 1, True, False, 0.0, "yes"), TypeError, "bidirectional should be of type bool", None),
]


@pytest.mark.parametrize("arguments,error,message,nn_lstm", CONSTRUCTOR_ERRORS)
def test_constructor_errors_have_nn_lstm_s_types(arguments, error, message, nn_lstm):
    with pytest.raises(error, match=message):
        TimeLSTM(*arguments)
    if nn_lstm is not None:
        with pytest.raises(error, match=message if nn_lstm == "same" else None):
            nn.LSTM(*arguments)


def test_positional_arguments_are_nn_lstm_s():
    module = TimeLSTM(3, 6, 2, False, True, 0.25, True, 2)
    assert (module.num_layers, module.bias, module.batch_first, module.dropout,
            module.bidirectional, module.proj_size) == (2, False, True, 0.25, True, 2)
    assert TimeLSTM(3, 6, bidirectional=1).bidirectional is True  # nn.LSTM accepts 0/1 too


def bad_shapes(proj_size):
    """(input shape, h shape, c shape) each wrong in one way, from (T, B, I) = (6, 4, 3),
    2 layers, H = 5: the cases of PyTorch's rnn/projection args checks."""
    h_size = proj_size or 5
    good_input, good_h, good_c = (6, 4, 3), (2, 4, h_size), (2, 4, 5)
    return [
        ((6, 7, 3), good_h, good_c),              # input batch size
        (good_input, (2, 7, h_size), (2, 7, 5)),  # hidden batch size
        ((6, 4, 7), good_h, good_c),              # input size
        (good_input, (2, 4, 7), (2, 4, 7)),       # hidden size
        (good_input, (7, 4, h_size), (7, 4, 5)),  # number of layers
        (good_input, (5, 4, h_size), good_c),     # h alone
        (good_input, good_h, (7, 4, 5)),          # c alone
    ]


@pytest.mark.parametrize("proj_size", [0, 2])
def test_wrong_input_and_hidden_sizes_raise_runtime_error_like_nn_lstm(proj_size):
    lstm = nn.LSTM(3, 5, 2, proj_size=proj_size)
    time_lstm = TimeLSTM(3, 5, 2, proj_size=proj_size)
    for input_shape, h_shape, c_shape in bad_shapes(proj_size):
        arguments = (torch.randn(input_shape), (torch.randn(h_shape), torch.randn(c_shape)))
        with pytest.raises(RuntimeError) as expected:
            lstm(*arguments)
        with pytest.raises(RuntimeError) as caught:
            time_lstm(*arguments)
        assert type(caught.value) is type(expected.value)


@pytest.mark.parametrize("proj_size", [0, 10])
def test_forward_errors_name_what_was_expected(proj_size):
    # PyTorch's test_cudnn_forward_exception, on the CPU
    lstm = nn.LSTM(10, 20, batch_first=True, proj_size=proj_size)
    time_lstm = TimeLSTM(10, 20, batch_first=True, proj_size=proj_size)
    wrong_hidden = (torch.zeros(1, 2, 19), torch.zeros(1, 2, 19))
    for module in (lstm, time_lstm):
        with pytest.raises(RuntimeError, match="Expected hidden.*size.*got"):
            module(torch.randn(2, 3, 10), wrong_hidden)
        with pytest.raises(RuntimeError, match=re.escape("input.size(-1) must be equal to input_size")):
            module(torch.randn(2, 3, 3))
    h, c = torch.zeros(1, 2, proj_size or 20), torch.zeros(1, 2, 19)
    with pytest.raises(RuntimeError, match=re.escape(
            "Expected hidden[1] size (1, 2, 20), got [1, 2, 19]")):
        time_lstm(torch.randn(2, 3, 10), (h, c))


def test_hidden_dimensions_device_and_dtype_errors_are_runtime_errors():
    module = TimeLSTM(3, 4)
    inputs = torch.randn(5, 2, 3)
    with pytest.raises(RuntimeError, match="For batched 3-D input, hx and cx should also be 3-D"):
        module(inputs, (torch.zeros(2, 4), torch.zeros(2, 4)))
    with pytest.raises(RuntimeError, match="For unbatched 2-D input, hx and cx should also be 2-D"):
        module(inputs[:, 0], (torch.zeros(1, 1, 4), torch.zeros(1, 1, 4)))
    with pytest.raises(RuntimeError, match="input is on meta but the parameters are on cpu"):
        module(torch.randn(5, 2, 3, device="meta"))
    with pytest.raises(RuntimeError, match=r"hx\[0\] is on meta but the input is on cpu"):
        module(inputs, (torch.zeros(1, 2, 4, device="meta"), torch.zeros(1, 2, 4)))
    with pytest.raises(RuntimeError, match=r"hx\[1\] dtype torch.float64 does not match"):
        module(inputs, (torch.zeros(1, 2, 4), torch.zeros(1, 2, 4, dtype=torch.float64)))
    with pytest.raises(ValueError, match="input dtype torch.float64 does not match"):  # as nn.LSTM
        module(inputs.double())
    with pytest.raises(RuntimeError, match="input must have 3 dimensions, got 2"):
        module.check_forward_args(inputs[0], (torch.zeros(1, 2, 4),) * 2, None)
    module.check_forward_args(inputs, (torch.zeros(1, 2, 4),) * 2, None)  # fits: no error


# ---- what utilities and users do with nn.LSTM -----------------------------------------------

@pytest.mark.parametrize("name,proj_size", [("weight_ih_l0", 0), ("weight_hr_l0", 16)])
def test_weight_norm_through_the_rnn_helpers(name, proj_size):
    torch.manual_seed(4)
    module = TimeLSTM(32, 32, proj_size=proj_size, decay="none", decomposition=False)
    inputs = torch.randn(3, 2, 32)
    expected, _ = module(inputs)
    parameters = len(module._flat_weights)
    module = torch.nn.utils.weight_norm(module, name=name)
    assert sum(isinstance(p, nn.Parameter) for p in module._flat_weights) == parameters - 1
    torch.testing.assert_close(module(inputs)[0], expected)  # w = g v / |v| is the same weight
    with torch.no_grad():
        getattr(module, f"{name}_g").mul_(2)  # the forward uses the normed weight, recomputed
    assert not torch.allclose(module(inputs)[0], expected)
    module = torch.nn.utils.remove_weight_norm(module, name=name)
    assert sum(isinstance(p, nn.Parameter) for p in module._flat_weights) == parameters
    assert name in module._parameters and name in dict(module.named_parameters())
    assert not any(n.startswith(f"{name}_") for n in dict(module.named_parameters()))


def test_weight_norm_through_parametrizations():
    torch.manual_seed(4)
    module = TimeLSTM(8, 8, bidirectional=True, proj_size=4)
    inputs = torch.randn(3, 2, 8)
    expected, _ = module(inputs)
    torch.nn.utils.parametrizations.weight_norm(module, "weight_hr_l0_reverse")
    assert sum(isinstance(p, nn.Parameter) for p in module._flat_weights) == \
        len(module._flat_weights) - 1
    output, _ = module(inputs)
    torch.testing.assert_close(output, expected)
    output.sum().backward()
    assert module.parametrizations.weight_hr_l0_reverse.original1.grad.abs().sum() > 0


def test_tied_weights_like_cudnn_weight_tying():
    lstm, time_lstm = twins(torch.float64, bidirectional=True, proj_size=2)
    for module in (lstm, time_lstm):
        module.bias_ih_l0_reverse = module.bias_ih_l0
    assert "bias_ih_l0_reverse" not in dict(time_lstm.named_parameters())  # shared, listed once
    inputs = torch.randn(4, 3, 4, dtype=torch.float64)
    hx = random_state(lstm, 3, torch.float64)
    assert_same_run(run_and_differentiate(lstm, inputs.requires_grad_(), hx),
                    run_and_differentiate(time_lstm, inputs, hx), TOLERANCES[torch.float64])


@pytest.mark.parametrize("layout", LAYOUTS, ids=LAYOUT_IDS)
def test_save_load_pickle_deepcopy_and_flatten_parameters(layout):
    torch.manual_seed(5)
    module = TimeLSTM(4, 6, num_layers=2, **layout).eval()
    inputs, dt = torch.randn(5, 2, 4), torch.rand(5, 2) * 3
    expected, expected_state = module(inputs, dt=dt)
    buffer = io.BytesIO()
    torch.save(module, buffer)
    buffer.seek(0)
    copies = [torch.load(buffer, weights_only=False), pickle.loads(pickle.dumps(module)),
              copy.deepcopy(module)]
    for loaded in copies:
        loaded.flatten_parameters()
        output, state = loaded(inputs, dt=dt)
        torch.testing.assert_close(output, expected, rtol=0, atol=0)
        torch.testing.assert_close(state, expected_state, rtol=0, atol=0)
        assert loaded._flat_weights_names == module._flat_weights_names


def test_a_time_lstm_pickled_before_bidirectional_and_proj_size_still_loads():
    torch.manual_seed(6)
    module = TimeLSTM(3, 4, num_layers=2)
    inputs = torch.randn(5, 2, 3)
    expected, _ = module(inputs)
    old = copy.copy(module)
    for attribute in ("bidirectional", "proj_size", "_all_weights", "_flat_weights_names"):
        del old.__dict__[attribute]  # what an older interestevo pickled
    loaded = pickle.loads(pickle.dumps(old))
    assert loaded.bidirectional is False and loaded.proj_size == 0
    assert loaded._flat_weights_names == module._flat_weights_names
    torch.testing.assert_close(loaded(inputs)[0], expected, rtol=0, atol=0)


@pytest.mark.parametrize("layout", LAYOUTS, ids=LAYOUT_IDS)
def test_functional_call_and_export(layout):
    torch.manual_seed(7)
    module = TimeLSTM(3, 5, **layout)
    inputs, dt = torch.randn(4, 2, 3), torch.rand(4, 2)
    doubled = {name: p.detach() * 2 for name, p in module.named_parameters()}
    called, _ = torch.func.functional_call(module, doubled, (inputs,), {"dt": dt})
    twin = copy.deepcopy(module)
    with torch.no_grad():
        for param in twin.parameters():
            param.mul_(2)
    torch.testing.assert_close(called, twin(inputs, dt=dt)[0])
    exported = torch.export.export(module, (inputs,), {"dt": dt})
    torch.testing.assert_close(exported.module()(inputs, dt=dt)[0], module(inputs, dt=dt)[0])


@pytest.mark.parametrize("layout", LAYOUTS, ids=LAYOUT_IDS)
def test_empty_batch_runs_forward_and_backward(layout):
    module = TimeLSTM(3, 4, num_layers=2, **layout)
    inputs = torch.zeros(5, 0, 3, requires_grad=True)
    output, (h_n, c_n) = module(inputs)
    directions = 2 if layout["bidirectional"] else 1
    assert output.shape == (5, 0, directions * (layout["proj_size"] or 4))
    assert h_n.shape == (2 * directions, 0, layout["proj_size"] or 4)
    output.sum().backward()
    assert inputs.grad.shape == inputs.shape


def test_backward_twice_with_retained_graph_gives_the_same_gradients():
    module = TimeLSTM(4, 5, num_layers=2, bidirectional=True, proj_size=3)
    inputs = torch.randn(6, 2, 4, requires_grad=True)
    output, _ = module(inputs, dt=torch.rand(6, 2))
    grads = []
    for _ in range(2):
        module.zero_grad()
        inputs.grad = None
        output.sum().backward(retain_graph=True)
        grads.append([inputs.grad.clone()] + [p.grad.clone() for p in module.parameters()])
    for first, second in zip(*grads):
        torch.testing.assert_close(first, second, rtol=0, atol=0)


def test_dropout_can_be_changed_after_construction():
    torch.manual_seed(8)
    module = TimeLSTM(6, 8, num_layers=2, bidirectional=True)
    inputs = torch.randn(3, 2, 6)
    baseline, _ = module(inputs)
    for p in (0.5, 0.0, 1.0):
        module.dropout = p
        module.train()
        first, second = module(inputs)[0], module(inputs)[0]
        assert torch.equal(first, second) == (p in (0.0, 1.0)), p
        module.eval()
        torch.testing.assert_close(module(inputs)[0], baseline)


# ---- decay="exp": the reverse direction and Δt, against a plain-PyTorch composition ------------

def reference_direction(x, gaps, weights, decay, decomposition, h, c):
    """One sequence (T, 1, I) through the reference cell, projecting when weight_hr is given."""
    if x.shape[0] == 0:
        return x.new_zeros(0, h.shape[-1]), h, c
    outputs = []
    for t in range(x.shape[0]):
        cell_h, c = time_lstm_cell_ref(x[t], gaps[t], h, c, weights["weight_ih"], weights["weight_hh"],
                                       weights["bias_ih"], weights["bias_hh"], weights["weight_decomp"],
                                       weights["bias_decomp"], weights["decay_rate"], decay, decomposition)
        h = F.linear(cell_h, weights["weight_hr"]) if weights["weight_hr"] is not None else cell_h
        outputs.append(h)
    return torch.cat(outputs), h, c


def reference_bidirectional(module, x, dt, length, h0, c0):
    """Row by row: the forward direction over dt, the reverse over the real steps backwards with
    the gap to the next event (dt[t + 1], 0 for the last event) at each step."""
    x, dt = x[:length].unsqueeze(1), dt[:length].unsqueeze(1)
    next_gaps = torch.cat([dt[1:], torch.zeros_like(dt[:1])])
    h_n, c_n = [], []
    for layer in range(module.num_layers):
        outputs = []
        for direction, suffix in enumerate(("", "_reverse")):
            weights = {name: getattr(module, f"{name}_l{layer}{suffix}", None) for name in (
                "weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr", "weight_decomp",
                "bias_decomp", "decay_rate")}
            k = 2 * layer + direction
            state = (h0[k:k + 1], c0[k:k + 1])
            if direction == 0:
                out, h, c = reference_direction(x, dt, weights, module.decay, module.decomposition, *state)
            else:
                out, h, c = reference_direction(x.flip(0), next_gaps.flip(0), weights, module.decay,
                                                module.decomposition, *state)
                out = out.flip(0)
            outputs.append(out)
            h_n.append(h)
            c_n.append(c)
        x = torch.cat(outputs, dim=-1).unsqueeze(1)
    return x.squeeze(1), torch.cat(h_n), torch.cat(c_n)


@pytest.mark.parametrize("proj_size", [0, 3])
@pytest.mark.parametrize("decomposition", [True, False])
def test_exp_bidirectional_matches_a_reference_composition_with_next_event_gaps(proj_size,
                                                                                decomposition):
    torch.manual_seed(9)
    module = TimeLSTM(4, 5, num_layers=2, bidirectional=True, proj_size=proj_size, decay="exp",
                      decomposition=decomposition).double()
    with torch.no_grad():
        for name, param in module.named_parameters():
            if name.startswith("decay_rate"):
                param.uniform_(-1, 1)  # rates ~1 per unit of dt: every gap matters
    steps, batch = 6, 4
    lengths = torch.tensor([6, 2, 0, 4])
    x = torch.randn(steps, batch, 4, dtype=torch.float64, requires_grad=True)
    dt = torch.rand(steps, batch, dtype=torch.float64) * 3
    h0, c0 = (s.detach().requires_grad_() for s in random_state(module, batch, torch.float64))
    output, (h_n, c_n) = module(x, (h0, c0), dt=dt, lengths=lengths)

    weights = torch.Generator().manual_seed(1)
    def loss(out, h, c):
        return sum((t * torch.randn(t.shape, generator=weights, dtype=t.dtype)).sum() for t in (out, h, c))

    loss(output, h_n, c_n).backward()
    actual_grads = [x.grad, h0.grad, c0.grad] + [p.grad for p in module.parameters()]
    x.grad = h0.grad = c0.grad = None
    module.zero_grad()

    rows = [reference_bidirectional(module, x[:, b], dt[:, b], int(lengths[b]), h0[:, b], c0[:, b])
            for b in range(batch)]
    width = 2 * (proj_size or 5)
    expected = torch.stack([torch.cat([out, out.new_zeros(steps - out.shape[0], width)])
                            for out, _, _ in rows], dim=1)
    expected_h = torch.stack([h for _, h, _ in rows], dim=1)
    expected_c = torch.stack([c for _, _, c in rows], dim=1)
    weights.manual_seed(1)
    loss(expected, expected_h, expected_c).backward()
    expected_grads = [x.grad, h0.grad, c0.grad] + [p.grad for p in module.parameters()]

    tolerances = TOLERANCES[torch.float64]
    torch.testing.assert_close(output, expected, **tolerances)
    torch.testing.assert_close(h_n, expected_h, **tolerances)
    torch.testing.assert_close(c_n, expected_c, **tolerances)
    for name, actual, wanted in zip(["x", "h0", "c0"] + [n for n, _ in module.named_parameters()],
                                    actual_grads, expected_grads):
        torch.testing.assert_close(actual, wanted, **tolerances, msg=lambda m: f"grad {name}: {m}")


def test_reverse_direction_forgets_across_the_gap_to_the_next_event():
    torch.manual_seed(10)
    module = TimeLSTM(2, 3, bidirectional=True, decay="exp", decomposition=False).double()
    x = torch.randn(3, 1, 2, dtype=torch.float64)
    short = torch.tensor([[0.0], [0.0], [0.0]], dtype=torch.float64)
    long_gap = torch.tensor([[0.0], [0.0], [1e6]], dtype=torch.float64)  # between events 1 and 2
    out_short, _ = module(x, dt=short)
    out_long, _ = module(x, dt=long_gap)
    forward, reverse = slice(0, 3), slice(3, 6)
    # forward direction: the gap lies before event 2, so events 0 and 1 are unchanged
    torch.testing.assert_close(out_long[:2, :, forward], out_short[:2, :, forward])
    # reverse direction: event 2 is read first (nothing to forget), event 1 comes after the gap
    torch.testing.assert_close(out_long[2, :, reverse], out_short[2, :, reverse])
    assert not torch.allclose(out_long[1, :, reverse], out_short[1, :, reverse])
    # ... exactly as if the reverse pass resumed at event 1 with its memory cell emptied
    h_after_event_2 = out_long[2:3, :, reverse]
    hx = (torch.cat([torch.zeros_like(h_after_event_2), h_after_event_2]),
          torch.zeros(2, 1, 3, dtype=torch.float64))
    resumed, _ = module(x[:2], hx, dt=short[:2])
    torch.testing.assert_close(out_long[:2, :, reverse], resumed[:, :, reverse])


@pytest.mark.parametrize("proj_size", [0, 2])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_variable_length_packed_equals_each_sequence_alone(bidirectional, proj_size):
    # PyTorch's test_variable_sequence, with decay="exp" and elapsed times
    torch.manual_seed(11)
    module = TimeLSTM(3, 4, num_layers=2, bidirectional=bidirectional,
                      proj_size=proj_size).double()
    lengths = [5, 3, 4, 1]
    sequences = [torch.randn(n, 3, dtype=torch.float64) for n in lengths]
    gaps = [torch.rand(n, dtype=torch.float64) * 4 for n in lengths]
    padded = nn.utils.rnn.pad_sequence(sequences)
    packed = pack_padded_sequence(padded, lengths, enforce_sorted=False)
    packed_dt = pack_padded_sequence(nn.utils.rnn.pad_sequence(gaps), lengths, enforce_sorted=False)
    output, (h_n, c_n) = module(packed, dt=packed_dt)
    unpacked, _ = pad_packed_sequence(output)
    for b, (sequence, gap) in enumerate(zip(sequences, gaps)):
        alone, (h, c) = module(sequence.unsqueeze(1), dt=gap.unsqueeze(1))
        torch.testing.assert_close(unpacked[:lengths[b], b], alone[:, 0], **TOLERANCES[torch.float64])
        torch.testing.assert_close(h_n[:, b], h[:, 0], **TOLERANCES[torch.float64])
        torch.testing.assert_close(c_n[:, b], c[:, 0], **TOLERANCES[torch.float64])


def test_cell_size_errors_are_runtime_errors_like_nn_lstm_cell():
    # PyTorch's test_RNN_cell_no_broadcasting, for the LSTM cell
    cell, lstm_cell = TimeLSTMCell(10, 20), nn.LSTMCell(10, 20)
    good = torch.randn(3, 20)
    cases = [(torch.randn(3, 10), (torch.randn(1, 20), good)),   # hidden batch size
             (torch.randn(3, 10), (good, torch.randn(3, 1))),    # hidden size
             (torch.randn(3, 1), (good, good))]                  # input size
    for inputs, hx in cases:
        with pytest.raises(RuntimeError) as expected:
            lstm_cell(inputs, hx)
        with pytest.raises(RuntimeError) as caught:
            cell(inputs, hx)
        assert type(caught.value) is type(expected.value)


# ---- under torch.autocast: what nn.LSTM does with a preceding layer's half activations ---------

HALF_TOLERANCES = {torch.bfloat16: dict(rtol=3e-2, atol=5e-2), torch.float16: dict(rtol=3e-3, atol=5e-3)}


def assert_close_to_float32(actual, expected, dtype, name):
    """actual (in or from dtype) against the float32 run, relative to the expected tensor's scale."""
    scale = max(1.0, expected.detach().abs().max().item())
    torch.testing.assert_close(actual.detach().float() / scale, expected.detach().float() / scale,
                               msg=lambda m: f"{name}: {m}", **HALF_TOLERANCES[dtype])


@pytest.mark.parametrize("layout", LAYOUTS, ids=LAYOUT_IDS)
def test_bfloat16_activations_under_cpu_autocast_run_as_through_nn_lstm(layout):
    torch.manual_seed(15)
    linear = nn.Linear(6, 4)
    lstm, time_lstm = twins(torch.float32, seed=15, num_layers=2, batch_first=True, **layout)
    inputs = torch.randn(3, 7, 6)
    expected, (h_e, c_e) = time_lstm(linear(inputs))
    (expected.square().sum() + c_e.sum()).backward()
    float32_grads = {name: p.grad for name, p in time_lstm.named_parameters()}
    time_lstm.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        activations = linear(inputs)
        theirs, (h_t, c_t) = lstm(activations)
        output, (h_n, c_n) = time_lstm(activations)
    assert activations.dtype == torch.bfloat16
    for name, ours, nn_lstm_s, wanted in (("output", output, theirs, expected), ("h_n", h_n, h_t, h_e),
                                          ("c_n", c_n, c_t, c_e)):
        assert ours.dtype == nn_lstm_s.dtype == torch.bfloat16
        assert_close_to_float32(ours, wanted, torch.bfloat16, name)
        assert_close_to_float32(nn_lstm_s, wanted, torch.bfloat16, f"nn.LSTM's {name}")
    (output.float().square().sum() + c_n.float().sum()).backward()
    assert linear.weight.grad is not None
    for name, param in time_lstm.named_parameters():
        if float32_grads[name] is None:  # decay="none" leaves the decomposition unused
            assert param.grad is None
            continue
        assert param.grad.dtype == torch.float32
        assert_close_to_float32(param.grad, float32_grads[name], torch.bfloat16, f"grad {name}")


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
@pytest.mark.parametrize("path", ["fused", "reference", "proj"])
def test_cpu_autocast_computes_in_float32_and_returns_the_autocast_dtype(path, dtype, reference_mode):
    # float32 states with half activations, Δt and every decay term: nn.LSTM's CPU autocast
    # returns the autocast dtype; ours computes in float32 and rounds once at the end
    reference_mode(path == "reference")
    torch.manual_seed(16)
    module = TimeLSTM(4, 6, num_layers=2, bidirectional=True, proj_size=3 if path == "proj" else 0)
    inputs, dt, lengths = torch.randn(5, 3, 4), torch.rand(5, 3) * 10, torch.tensor([5, 2, 4])
    hx = (torch.randn(4, 3, module.proj_size or 6), torch.randn(4, 3, 6))
    half = inputs.to(dtype)
    expected, (h_e, c_e) = module(half.float(), hx, dt=dt, lengths=lengths)
    with torch.autocast("cpu", dtype=dtype):
        output, (h_n, c_n) = module(half, hx, dt=dt, lengths=lengths)
    for actual, wanted in ((output, expected), (h_n, h_e), (c_n, c_e)):
        assert actual.dtype == dtype
        torch.testing.assert_close(actual, wanted.to(dtype), rtol=0, atol=0)


def test_cell_under_cpu_autocast_returns_the_autocast_dtype():
    torch.manual_seed(17)
    cell, linear = TimeLSTMCell(4, 6), nn.Linear(3, 4)
    inputs, dt, hx = torch.randn(5, 3), torch.rand(5) * 10, (torch.randn(5, 6), torch.randn(5, 6))
    expected = cell(linear(inputs), hx, dt=dt)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        actual = cell(linear(inputs), hx, dt=dt)
    for name, ours, wanted in zip(("h", "c"), actual, expected):
        assert ours.dtype == torch.bfloat16
        assert_close_to_float32(ours, wanted, torch.bfloat16, name)


def test_compile_fullgraph_under_cpu_autocast_matches_eager():
    torch.manual_seed(18)
    module = TimeLSTM(4, 6, num_layers=2, bidirectional=True, batch_first=True)
    inputs, dt, lengths = torch.randn(3, 5, 4), torch.rand(3, 5), torch.tensor([5, 2, 4])
    compiled = torch.compile(module, fullgraph=True, backend="aot_eager")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        actual, expected = compiled(inputs, dt=dt, lengths=lengths), module(inputs, dt=dt, lengths=lengths)
    assert actual[0].dtype == torch.bfloat16
    torch.testing.assert_close(actual, expected, rtol=0, atol=0)


# ---- transforms: compile, vmap, functorch grad ------------------------------------------------

@pytest.mark.parametrize("proj_size", [0, 2])
def test_compile_fullgraph_bidirectional_matches_eager(proj_size):
    torch.manual_seed(12)
    module = TimeLSTM(4, 6, num_layers=2, bidirectional=True, proj_size=proj_size, batch_first=True)
    inputs, dt, lengths = torch.randn(3, 5, 4), torch.rand(3, 5), torch.tensor([5, 2, 4])
    compiled = torch.compile(module, fullgraph=True, backend="aot_eager")
    for actual, expected in zip(compiled(inputs, dt=dt, lengths=lengths),
                                module(inputs, dt=dt, lengths=lengths)):
        torch.testing.assert_close(actual, expected)


@pytest.mark.parametrize("proj_size", [0, 2])
def test_vmap_over_independent_batches_equals_a_loop(proj_size):
    torch.manual_seed(13)
    module = TimeLSTM(3, 4, bidirectional=True, proj_size=proj_size)
    inputs, dt = torch.randn(3, 5, 2, 3), torch.rand(5, 2)  # dt shared: its value checks read it
    mapped = torch.func.vmap(lambda x: module(x, dt=dt)[0])(inputs)
    looped = torch.stack([module(x, dt=dt)[0] for x in inputs])
    torch.testing.assert_close(mapped, looped)


@pytest.mark.parametrize("proj_size", [0, 2])
def test_func_grad_on_the_plain_pytorch_path(reference_mode, proj_size):
    # the fused op's autograd does not support functorch's grad; the reference and proj paths do
    reference_mode()
    torch.manual_seed(14)
    module = TimeLSTM(3, 4, bidirectional=True, proj_size=proj_size)
    inputs, dt = torch.randn(5, 2, 3), torch.rand(5, 2)

    def loss(params):
        return torch.func.functional_call(module, params, (inputs,), {"dt": dt})[0].square().sum()

    params = {name: p.detach() for name, p in module.named_parameters()}
    grads = torch.func.grad(loss)(params)
    expected = torch.autograd.grad(loss(dict(module.named_parameters())), list(module.parameters()))
    for (name, grad), wanted in zip(grads.items(), expected):
        torch.testing.assert_close(grad, wanted, msg=lambda m: f"{name}: {m}")
