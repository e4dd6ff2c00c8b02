"""CUDA kernels against the CPU op and the reference, per dtype (skipped without a GPU)."""

import contextlib
import copy

import pytest
import torch

from interestevo import TimeLSTM, extension_info, ops
from interestevo.validation import no_value_checks

from .helpers import MODES, reference_only, requires_extension, run_with_grads
from .kernel_cases import assert_close_scaled, make_case, op_gradients, reference_gradients

pytestmark = [
    requires_extension,
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]
# Per storage dtype: the cell's math is float32 inside, but states are stored in the dtype.
TOLERANCES = {
    torch.float64: dict(rtol=1e-9, atol=1e-10),
    torch.float32: dict(rtol=1e-4, atol=2e-5),
    torch.float16: dict(rtol=3e-3, atol=5e-3),
    torch.bfloat16: dict(rtol=3e-2, atol=5e-2),
}


def test_cuda_lengths_on_the_gpu_and_on_another_current_device():
    torch.manual_seed(2)
    module = TimeLSTM(4, 8).cuda()
    inputs, dt = torch.randn(5, 3, 4, device="cuda"), torch.rand(5, 3, device="cuda")
    on_cpu, _ = module(inputs, dt=dt, lengths=torch.tensor([5, 0, 2]))
    on_gpu, _ = module(inputs, dt=dt, lengths=torch.tensor([5, 0, 2], device="cuda"))
    torch.testing.assert_close(on_gpu, on_cpu)


def test_opcheck_on_cuda():
    from .test_op_registration import op_arguments
    args = op_arguments("exp", True, dtype=torch.float32, device="cuda")
    torch.library.opcheck(torch.ops.interestevo.time_lstm_forward.default, args)


def test_cuda_kernels_are_registered():
    assert extension_info()["cuda_kernels"]


@pytest.mark.parametrize("decay,decomposition", MODES)
@pytest.mark.parametrize("dtype", list(TOLERANCES))
def test_cuda_matches_cpu(decay, decomposition, dtype):
    torch.manual_seed(0)
    module = TimeLSTM(16, 32, num_layers=2, decay=decay, decomposition=decomposition).double()
    inputs = torch.randn(12, 5, 16, dtype=torch.float64)
    dt = torch.rand(12, 5, dtype=torch.float64) * 20
    lengths = torch.tensor([12, 0, 7, 1, 12])
    (out_e, h_e, c_e), grads_e = run_with_grads(module, inputs, dt=dt, lengths=lengths)
    cuda_module = copy.deepcopy(module).to("cuda", dtype)
    (out, h_n, c_n), grads = run_with_grads(
        cuda_module, inputs.to("cuda", dtype), dt=dt.to("cuda"), lengths=lengths)
    tol = TOLERANCES[dtype]
    # Compare in float64 on the CPU, relative to each tensor's scale for the low-precision dtypes.
    for actual, expected in [(out, out_e), (h_n, h_e), (c_n, c_e)] + [(grads[k], grads_e[k]) for k in grads_e]:
        actual = actual.double().cpu()
        scale = max(1.0, expected.abs().max().item())
        torch.testing.assert_close(actual / scale, expected / scale, **tol)


def test_cuda_matches_reference_float32_on_the_gpu():
    torch.manual_seed(1)
    module = TimeLSTM(8, 24, num_layers=2).cuda()
    inputs, dt = torch.randn(10, 4, 8, device="cuda"), torch.rand(10, 4, device="cuda") * 5
    fused = run_with_grads(module, inputs, dt=dt)
    with reference_only():
        expected = run_with_grads(module, inputs, dt=dt)
    for a, e in zip(fused[0], expected[0]):
        torch.testing.assert_close(a, e, **TOLERANCES[torch.float32])
    for name in expected[1]:
        torch.testing.assert_close(fused[1][name], expected[1][name], **TOLERANCES[torch.float32])


def test_cuda_runs_on_the_current_stream_without_host_sync():
    module = TimeLSTM(8, 16).cuda()
    inputs, dt = torch.randn(6, 3, 8, device="cuda"), torch.rand(6, 3, device="cuda")
    expected, _ = module(inputs, dt=dt)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        output, _ = module(inputs, dt=dt)
    torch.cuda.current_stream().wait_stream(stream)
    torch.testing.assert_close(output, expected)
    # the op itself never synchronises with the host
    args = [inputs, dt.float(), None, torch.zeros(3, 16, device="cuda"), torch.zeros(3, 16, device="cuda"),
            module.weight_ih_l0, module.weight_hh_l0, None, module.weight_decomp_l0,
            module.bias_decomp_l0, module.decay_rate_l0, 2, True]
    torch.cuda.set_sync_debug_mode("error")
    try:
        with torch.no_grad():
            torch.ops.interestevo.time_lstm_inference(*args)
    finally:
        torch.cuda.set_sync_debug_mode("default")


# The emulated-CUDA cases (test_emulated_cuda.py), here on the real kernels.
SHAPES = [(5, 3, 4, 5), (9, 9, 6, 37)]  # one block; three blocks (B*H > 256) with odd H


@pytest.mark.parametrize("shape", SHAPES, ids=["one-block", "three-blocks-odd-H"])
@pytest.mark.parametrize("dtype", list(TOLERANCES), ids=str)
@pytest.mark.parametrize("decay,decomposition", MODES)
def test_cuda_op_matches_the_reference(decay, decomposition, dtype, shape):
    case = make_case(decay, decomposition, dtype, *shape, seed=MODES.index((decay, decomposition)),
                     device="cuda")
    actual = op_gradients(torch.ops.interestevo, case)
    expected = reference_gradients(case)
    assert actual.keys() == expected.keys()
    for name in expected:
        assert_close_scaled(actual[name], expected[name], dtype, name)


@pytest.mark.parametrize("dtype", list(TOLERANCES), ids=str)
@pytest.mark.parametrize("decay,decomposition", MODES)
def test_cuda_op_matches_the_emulated_kernels(decay, decomposition, dtype):
    case = make_case(decay, decomposition, dtype, 9, 9, 6, 37, seed=7, device="cuda")
    on_cpu = make_case(decay, decomposition, dtype, 9, 9, 6, 37, seed=7)
    actual = op_gradients(torch.ops.interestevo, case)
    emulated = op_gradients(getattr(torch.ops, ops.EMULATED_CUDA_NAMESPACE), on_cpu)
    for name in emulated:  # same code, same storage dtype: only the GEMMs' rounding differs
        assert_close_scaled(actual[name], emulated[name], dtype, name)


@pytest.mark.parametrize("dtype", list(TOLERANCES), ids=str)
@pytest.mark.parametrize("decay,decomposition", MODES)
def test_cuda_inference_op_matches_its_training_forward(decay, decomposition, dtype):
    for steps in (4, 5):
        case = make_case(decay, decomposition, dtype, steps, 9, 3, 33, seed=steps, device="cuda")
        forward = torch.ops.interestevo.time_lstm_forward(*case.op_args)[:3]
        inference = torch.ops.interestevo.time_lstm_inference(*case.op_args)
        for a, e in zip(inference, forward):
            torch.testing.assert_close(a, e, rtol=0, atol=0)


def test_cuda_autocast_runs_timelstm_in_bfloat16():
    torch.manual_seed(3)
    module = TimeLSTM(8, 16, num_layers=2).cuda()
    inputs, dt = torch.randn(7, 4, 8, device="cuda"), torch.rand(7, 4, device="cuda") * 1e5
    with torch.autocast("cuda", dtype=torch.bfloat16):
        output, (h_n, _) = module(inputs, dt=dt)
    output.float().sum().backward()
    expected, _ = module(inputs, dt=dt)
    assert output.dtype == torch.bfloat16 and h_n.dtype == torch.bfloat16
    assert all(p.grad.dtype == torch.float32 for p in module.parameters())
    torch.testing.assert_close(output.float(), expected.detach(), **TOLERANCES[torch.bfloat16])


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
def test_cuda_autocast_takes_half_activations_from_a_preceding_layer(dtype):
    torch.manual_seed(5)
    linear = torch.nn.Linear(5, 8).cuda()
    lstm = torch.nn.LSTM(8, 16, num_layers=2).cuda()
    module = TimeLSTM.from_lstm(lstm)
    inputs, dt = torch.randn(7, 4, 5, device="cuda"), torch.rand(7, 4, device="cuda") * 1e5
    hx = (torch.randn(2, 4, 16, device="cuda"), torch.randn(2, 4, 16, device="cuda"))
    expected, _ = module(linear(inputs), hx, dt=dt)
    with torch.autocast("cuda", dtype=dtype):
        activations = linear(inputs)
        output, (h_n, c_n) = module(activations, hx, dt=dt)
        theirs, _ = lstm(activations, hx)
    assert activations.dtype == output.dtype == h_n.dtype == c_n.dtype == dtype
    if dtype == torch.float16:  # under bfloat16 cuDNN's autocast wrapper hands back float16
        assert theirs.dtype == dtype
    assert_close_scaled(output, expected, dtype, "output")


@pytest.mark.parametrize("explicit", [True, False], ids=["no_value_checks", "capture-detected"])
def test_cuda_graph_capture_and_replay(explicit):
    torch.manual_seed(4)
    module = TimeLSTM(8, 16, num_layers=2).cuda().eval()
    static_x = torch.randn(6, 3, 8, device="cuda")
    static_dt = torch.rand(6, 3, device="cuda") * 5
    static_lengths = torch.tensor([6, 2, 0], device="cuda")
    checks = no_value_checks if explicit else contextlib.nullcontext
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.no_grad(), checks():
        with torch.cuda.stream(side):  # warm-up off the default stream, as capture requires
            for _ in range(2):
                module(static_x, dt=static_dt, lengths=static_lengths)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_out, (static_h, _) = module(static_x, dt=static_dt, lengths=static_lengths)
    new_x, new_dt = torch.randn_like(static_x), torch.rand_like(static_dt) * 5
    static_x.copy_(new_x)
    static_dt.copy_(new_dt)
    static_lengths.copy_(torch.tensor([3, 6, 1], device="cuda"))
    graph.replay()
    with torch.no_grad():
        expected, (expected_h, _) = module(new_x, dt=new_dt, lengths=torch.tensor([3, 6, 1], device="cuda"))
    torch.testing.assert_close(static_out, expected)
    torch.testing.assert_close(static_h, expected_h)


def test_cuda_kernels_queue_on_the_current_stream_behind_its_work():
    module = TimeLSTM(8, 16).cuda()
    inputs, dt = torch.randn(6, 3, 8, device="cuda"), torch.rand(6, 3, device="cuda")
    with torch.no_grad():
        expected, _ = module(inputs, dt=dt)
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            scratch = torch.zeros_like(inputs)
            torch.cuda._sleep(200_000_000)  # the op must queue behind this, on this stream
            scratch.copy_(inputs)
            with no_value_checks():  # the default checks read dt on the host, which waits
                output, _ = module(scratch, dt=dt)
        assert not stream.query()  # still sleeping: nothing was run elsewhere and synchronised
        torch.cuda.current_stream().wait_stream(stream)
    torch.testing.assert_close(output, expected)
