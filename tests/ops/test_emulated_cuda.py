"""The CUDA kernels' code, run on the CPU (csrc/cpu/emulated_cuda.cpp loops over the CUDA grid and
calls the per-unit functions the .cu kernels call), through the real sequence driver and its GEMMs:
against the float64 reference for every decay mode, decomposition and storage dtype."""

import copy

import pytest
import torch

from interestevo import TimeLSTM, ops

from .helpers import MODES, requires_extension
from .kernel_cases import (TOLERANCES, assert_close_scaled, make_case, op_gradients,
                           reference_gradients)

pytestmark = requires_extension
EMULATED = getattr(torch.ops, ops.EMULATED_CUDA_NAMESPACE)
DTYPES = list(TOLERANCES)
# (steps, batch, input, hidden): one block; several blocks (B*H > 256) with odd H and a tail block
SHAPES = [(5, 3, 4, 5), (9, 9, 6, 37)]


@pytest.mark.parametrize("shape", SHAPES, ids=["one-block", "three-blocks-odd-H"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("decay,decomposition", MODES)
def test_emulated_kernels_match_the_reference(decay, decomposition, dtype, shape):
    case = make_case(decay, decomposition, dtype, *shape, seed=MODES.index((decay, decomposition)))
    actual = op_gradients(EMULATED, case)
    expected = reference_gradients(case)
    assert actual.keys() == expected.keys()
    for name in expected:
        assert_close_scaled(actual[name], expected[name], dtype, name)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("decay,decomposition", MODES)
def test_emulated_inference_op_matches_its_training_forward(decay, decomposition, dtype):
    for steps in (4, 5):  # the inference op's state buffers alternate: odd and even T
        case = make_case(decay, decomposition, dtype, steps, 9, 3, 33, seed=steps)
        forward = EMULATED.time_lstm_forward(*case.op_args)[:3]
        inference = EMULATED.time_lstm_inference(*case.op_args)
        for a, e in zip(inference, forward):
            torch.testing.assert_close(a, e, rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("decay,decomposition", MODES)
def test_emulated_kernels_agree_with_the_cpu_kernels(decay, decomposition, dtype):
    case = make_case(decay, decomposition, dtype, 7, 9, 5, 31, seed=5)
    emulated = op_gradients(EMULATED, case)
    cpu = op_gradients(torch.ops.interestevo, case)
    tolerance = dict(rtol=1e-12, atol=1e-12) if dtype == torch.float64 else dict(rtol=1e-5, atol=1e-6)
    for name in cpu:
        torch.testing.assert_close(emulated[name], cpu[name], msg=lambda m: f"{name}: {m}", **tolerance)


def test_all_rows_of_zero_length_keep_the_given_state():
    case = make_case("exp", True, torch.bfloat16, 4, 9, 3, 37, seed=2, lengths=[0] * 9)
    output, h_n, c_n, *_ = EMULATED.time_lstm_forward(*case.op_args)
    assert torch.all(output == 0)
    assert torch.equal(h_n, case.op_args[3]) and torch.equal(c_n, case.op_args[4])


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
def test_timelstm_trains_in_half_types_on_the_emulated_kernels(dtype):
    torch.manual_seed(0)
    module = TimeLSTM(6, 37, num_layers=2, batch_first=True).to(dtype)
    module64 = copy.deepcopy(module).double()  # the same rounded weights
    inputs = torch.randn(9, 8, 6, dtype=torch.float64)
    dt = torch.rand(9, 8, dtype=torch.float64) * 1e5  # past float16's 65504: dt stays float32
    lengths = torch.tensor([8, 0, 3, 8, 1, 5, 8, 2, 7])
    with ops._emulated_cuda_kernels():
        output, (h_n, c_n) = module(inputs.to(dtype), dt=dt, lengths=lengths)
        (output.float().square().sum() + h_n.float().sum()).backward()
    expected, (h_e, c_e) = module64(inputs.to(dtype).double(), dt=dt, lengths=lengths)
    (expected.square().sum() + h_e.sum()).backward()
    assert output.dtype == dtype and torch.isfinite(output).all()
    assert_close_scaled(output, expected.detach(), dtype, "output")
    assert_close_scaled(c_n, c_e.detach(), dtype, "c_n")
    for (name, param), param64 in zip(module.named_parameters(), module64.parameters()):
        assert param.grad.dtype == dtype
        assert_close_scaled(param.grad, param64.grad, dtype, name)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
def test_autocast_runs_the_op_in_the_autocast_dtype(dtype):
    case = make_case("exp", True, torch.float32, 5, 9, 4, 29, seed=3)
    with torch.autocast("cpu", dtype=dtype):
        output, h_n, c_n = EMULATED.time_lstm_forward(*case.op_args)[:3]
        inference = EMULATED.time_lstm_inference(*case.op_args)
    cast = [a.to(dtype) if isinstance(a, torch.Tensor) and a.is_floating_point() and i != 1 else a
            for i, a in enumerate(case.op_args)]  # dt (argument 1) stays float32
    expected = EMULATED.time_lstm_forward(*cast)[:3]
    for a, e in zip((output, h_n, c_n), expected):
        assert a.dtype == dtype
        torch.testing.assert_close(a, e, rtol=0, atol=0)
    for a, e in zip(inference, expected):
        torch.testing.assert_close(a, e, rtol=0, atol=0)


def test_timelstm_under_autocast_runs_in_bfloat16_with_float32_weights():
    torch.manual_seed(1)
    module = TimeLSTM(6, 16, num_layers=2)
    inputs, dt = torch.randn(7, 4, 6), torch.rand(7, 4) * 10
    with ops._emulated_cuda_kernels():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            output, (h_n, _) = module(inputs, dt=dt)
        output.float().sum().backward()
        expected, _ = module(inputs, dt=dt)
    assert output.dtype == torch.bfloat16 and h_n.dtype == torch.bfloat16
    assert all(p.grad.dtype == torch.float32 and p.grad.abs().sum() > 0 for p in module.parameters())
    assert_close_scaled(output, expected.detach(), torch.bfloat16, "output")


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
def test_half_activations_under_autocast_run_the_half_kernels(dtype):
    # CUDA's path: a preceding layer's half activations with float32 weights and states go through
    # the op's autocast kernel, which casts weights and states and runs the half kernels: the same
    # bits as a half copy of the module (no bias: the op sums bias_ih + bias_hh before the cast)
    torch.manual_seed(4)
    module = TimeLSTM(6, 37, num_layers=2, bias=False)
    linear = torch.nn.Linear(5, 6)
    inputs, dt = torch.randn(9, 8, 5), torch.rand(9, 8) * 1e5
    lengths = torch.tensor([9, 0, 3, 9, 1, 5, 9, 2])
    hx = (torch.randn(2, 8, 37), torch.randn(2, 8, 37))
    half = copy.deepcopy(module).to(dtype)
    expected, (h_e, c_e) = module(linear(inputs), hx, dt=dt, lengths=lengths)  # float32, CPU kernels
    with ops._emulated_cuda_kernels():
        with torch.autocast("cpu", dtype=dtype):
            activations = linear(inputs)
            output, (h_n, c_n) = module(activations, hx, dt=dt, lengths=lengths)
        (output.float().square().sum() + h_n.float().sum()).backward()
        same = half(activations.detach(), tuple(s.to(dtype) for s in hx), dt=dt, lengths=lengths)
    assert activations.dtype == dtype
    for name, actual, bits, wanted in (("output", output, same[0], expected), ("h_n", h_n, same[1][0], h_e),
                                       ("c_n", c_n, same[1][1], c_e)):
        assert actual.dtype == dtype
        torch.testing.assert_close(actual, bits, rtol=0, atol=0)
        assert_close_scaled(actual, wanted, dtype, name)
    assert linear.weight.grad is not None
    assert all(p.grad.dtype == torch.float32 and p.grad.abs().sum() > 0 for p in module.parameters())


def test_opcheck_emulated_op_in_bfloat16():
    # schema, fake kernels and autograd registration of the private op, in a half storage dtype
    case = make_case("exp", True, torch.bfloat16, 4, 3, 2, 5, seed=4)
    args = [a.detach().requires_grad_(a.is_floating_point() and i != 1)
            if isinstance(a, torch.Tensor) else a for i, a in enumerate(case.op_args)]
    torch.library.opcheck(EMULATED.time_lstm_forward.default, tuple(args))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
def test_dt_in_the_storage_dtype_is_refused_by_the_op(dtype):
    case = make_case("log", False, dtype, 3, 2, 2, 4)
    args = list(case.op_args)
    args[1] = args[1].to(dtype)
    with pytest.raises(RuntimeError, match=r"dt must be Float \(the math dtype of .* input\)"):
        EMULATED.time_lstm_forward(*args)


@pytest.mark.parametrize("dtype,expected", [(torch.float64, torch.float64), (torch.float32, torch.float32),
                                            (torch.float16, torch.float32), (torch.bfloat16, torch.float32)])
def test_module_hands_the_op_dt_in_the_math_dtype(dtype, expected, monkeypatch):
    seen = []
    real = ops.time_lstm_layer
    monkeypatch.setattr(ops, "time_lstm_layer", lambda x, dt, *rest: seen.append(dt.dtype) or real(x, dt, *rest))
    module = TimeLSTM(2, 3, decay="log").to(dtype)
    with ops._emulated_cuda_kernels():
        module(torch.randn(4, 2, 2, dtype=dtype), dt=torch.full((4, 2), 70000.0, dtype=torch.float64))
    assert seen == [expected]
