"""The op as PyTorch sees it: gradcheck in float64, opcheck (schema, fake kernels, autograd
registration) and torch.compile with fullgraph=True."""

import pytest
import torch

from interestevo import TimeLSTM
from interestevo.ops import DECAY_MODE_IDS

from .helpers import MODES, requires_extension

pytestmark = requires_extension


def op_arguments(decay, decomposition, steps=4, batch=3, input_size=2, hidden=3, lengths=True,
                 dtype=torch.float64, device="cpu"):
    def rand(*shape):
        return torch.randn(*shape, dtype=dtype, device=device, requires_grad=True)

    return (
        rand(steps, batch, input_size),
        torch.rand(steps, batch, dtype=dtype, device=device) * 3,
        torch.tensor([steps, 0, 2][:batch], device=device) if lengths else None,
        rand(batch, hidden), rand(batch, hidden),
        rand(4 * hidden, input_size), rand(4 * hidden, hidden), rand(4 * hidden),
        rand(hidden, hidden) if decomposition else None,
        rand(hidden) if decomposition else None,
        rand(hidden) if decay == "exp" else None,
        DECAY_MODE_IDS[decay], decomposition,
    )


def differentiable_outputs(*args):
    return torch.ops.interestevo.time_lstm_forward(*args)[:3]


@pytest.mark.parametrize("decay,decomposition", MODES)
@pytest.mark.parametrize("lengths", [True, False])
def test_gradcheck(decay, decomposition, lengths):
    torch.manual_seed(0)
    args = op_arguments(decay, decomposition, lengths=lengths)
    assert torch.autograd.gradcheck(differentiable_outputs, args, eps=1e-6, atol=1e-7)


@pytest.mark.parametrize("decay,decomposition", MODES)
def test_opcheck(decay, decomposition):
    torch.manual_seed(1)
    args = op_arguments(decay, decomposition, dtype=torch.float32)
    torch.library.opcheck(torch.ops.interestevo.time_lstm_forward.default, args)


def test_opcheck_backward_op():
    torch.manual_seed(2)
    args = op_arguments("exp", True, dtype=torch.float32)
    detached = [a.detach() if isinstance(a, torch.Tensor) else a for a in args]
    (input, dt, lengths, h0, c0, w_ih, w_hh, bias, w_d, b_d, rate, mode, decomposition) = detached
    out, h_n, c_n, gates, hiddens, cells, short = torch.ops.interestevo.time_lstm_forward(*detached)
    backward_args = (torch.randn_like(out), torch.randn_like(h_n), torch.randn_like(c_n), input, dt,
                     lengths, w_ih, w_hh, w_d, rate, gates, hiddens, cells, short, mode, decomposition)
    torch.library.opcheck(torch.ops.interestevo.time_lstm_backward.default, backward_args)


@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
def test_torch_compile_fullgraph_matches_eager(backend):
    torch.manual_seed(3)
    module = TimeLSTM(4, 6, num_layers=2, batch_first=True)
    inputs, dt = torch.randn(3, 5, 4), torch.rand(3, 5) * 10
    lengths = torch.tensor([5, 2, 4])

    def loss_of(run):
        module.zero_grad(set_to_none=True)
        output, (h_n, c_n) = run(inputs, dt=dt, lengths=lengths)
        (output.square().sum() + h_n.sum() + c_n.sum()).backward()
        return output.detach(), [p.grad.clone() for p in module.parameters()]

    eager_out, eager_grads = loss_of(module)
    compiled = torch.compile(module, fullgraph=True, backend=backend)
    compiled_out, compiled_grads = loss_of(compiled)
    torch.testing.assert_close(compiled_out, eager_out)
    for compiled_grad, eager_grad in zip(compiled_grads, eager_grads):
        torch.testing.assert_close(compiled_grad, eager_grad)


@pytest.mark.parametrize("decay,decomposition", MODES)
@pytest.mark.parametrize("steps", [1, 4, 5])  # odd and even: the state buffers alternate
@pytest.mark.parametrize("lengths", [True, False])
def test_inference_op_matches_the_training_forward(decay, decomposition, steps, lengths):
    torch.manual_seed(4)
    args = [a.detach() if isinstance(a, torch.Tensor) else a
            for a in op_arguments(decay, decomposition, steps=steps, lengths=lengths)]
    if lengths:
        args[2] = torch.tensor([steps, 0, min(2, steps)])
    expected = torch.ops.interestevo.time_lstm_forward(*args)[:3]
    actual = torch.ops.interestevo.time_lstm_inference(*args)
    for a, e in zip(actual, expected):
        torch.testing.assert_close(a, e, rtol=0, atol=0)


@pytest.mark.parametrize("decay,decomposition", [("exp", True), ("log", False)])
def test_opcheck_inference_op(decay, decomposition):
    torch.manual_seed(5)
    args = [a.detach() if isinstance(a, torch.Tensor) else a
            for a in op_arguments(decay, decomposition, dtype=torch.float32)]
    torch.library.opcheck(torch.ops.interestevo.time_lstm_inference.default, tuple(args))


def test_no_grad_uses_the_inference_op_and_matches():
    torch.manual_seed(6)
    module = TimeLSTM(3, 5, num_layers=2)
    inputs, dt = torch.randn(7, 2, 3), torch.rand(7, 2)
    with_grad, _ = module(inputs, dt=dt)
    with torch.no_grad():
        without_grad, _ = module(inputs, dt=dt)
    torch.testing.assert_close(without_grad, with_grad.detach(), rtol=0, atol=0)


def test_opcheck_with_a_transposed_input():
    # batch_first hands the op a non-contiguous input; fake kernels must report the real strides
    torch.manual_seed(7)
    args = list(op_arguments("exp", True, dtype=torch.float32))
    args[0] = args[0].detach().transpose(0, 1).contiguous().transpose(0, 1).requires_grad_(True)
    assert not args[0].is_contiguous()
    torch.library.opcheck(torch.ops.interestevo.time_lstm_forward.default, tuple(args))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_nan_is_propagated_not_hidden(dtype):
    module = TimeLSTM(3, 20).to(dtype)
    inputs = torch.randn(4, 2, 3, dtype=dtype)
    inputs[1, 0, 0] = float("nan")
    output, _ = module(inputs, dt=torch.rand(4, 2, dtype=dtype))
    assert torch.isnan(output[1:, 0]).all() and not torch.isnan(output[:, 1]).any()


@pytest.mark.parametrize("gate", ["input", "forget", "candidate", "output"])
@pytest.mark.parametrize("decay,decomposition", MODES)
def test_nan_in_one_gate_reaches_the_output(gate, decay, decomposition):
    """A NaN weight in any one gate's row makes that unit's output NaN, as in nn.LSTM: no gate's
    activation may turn NaN into a number (the CPU's fast tanh once gave tanh(NaN) = 1)."""
    module = TimeLSTM(4, 19, decay=decay, decomposition=decomposition)  # odd H: a SIMD tail
    unit = 17
    with torch.no_grad():
        module.weight_ih_l0[["input", "forget", "candidate", "output"].index(gate) * 19 + unit] = float("nan")
    output, _ = module(torch.ones(3, 2, 4), dt=torch.ones(3, 2))
    assert torch.isnan(output[:, :, unit]).all()
    if gate == "output":  # the other units see the NaN only through h at the next step
        assert not torch.isnan(output[0, :, :unit]).any()


def test_op_checks_parameter_shapes():
    args = list(op_arguments("exp", True, dtype=torch.float32))
    args[7] = torch.zeros(5)  # bias must be (4H,)
    with pytest.raises(RuntimeError, match=r"bias must have shape \[12\]"):
        torch.ops.interestevo.time_lstm_forward(*args)


@pytest.mark.parametrize("requires_grad", [False, True])
def test_autocast_does_not_reach_inside_the_op(requires_grad):
    # CPU autocast: the CPU kernels compute in float32 and hand back the autocast dtype, as nn.LSTM
    torch.manual_seed(8)
    module = TimeLSTM(8, 8, batch_first=True)
    inputs = torch.randn(3, 20, 8, requires_grad=requires_grad)
    dt = torch.rand(3, 20)
    expected, (h_e, c_e) = module(inputs, dt=dt)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        output, (h_n, c_n) = module(inputs, dt=dt)
    for actual, wanted in ((output, expected), (h_n, h_e), (c_n, c_e)):
        assert actual.dtype == torch.bfloat16
        torch.testing.assert_close(actual, wanted.to(torch.bfloat16), rtol=0, atol=0)
    if requires_grad:
        grad = torch.autograd.grad(output.float().sum(), inputs)[0]
        assert grad.dtype == torch.float32
        torch.testing.assert_close(grad, torch.autograd.grad(expected.sum(), inputs)[0])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_cpu_kernels_refuse_half_types_clearly(dtype):
    module = TimeLSTM(3, 4).to(dtype)
    with pytest.raises(NotImplementedError, match="CPU kernels take float32 or float64.*run on CUDA"):
        module(torch.randn(5, 2, 3, dtype=dtype), dt=torch.rand(5, 2))


def test_fake_kernel_refuses_dt_in_a_half_dtype_like_the_real_one():
    from torch._subclasses.fake_tensor import FakeTensorMode
    args = [a.detach().to(torch.bfloat16) if isinstance(a, torch.Tensor) and a.is_floating_point() else a
            for a in op_arguments("exp", True, dtype=torch.float32)]
    with FakeTensorMode(allow_non_fake_inputs=True):
        with pytest.raises(RuntimeError, match=r"dt must be torch.float32 \(the math dtype of torch.bfloat16"):
            torch.ops.interestevo.time_lstm_forward(*args)
