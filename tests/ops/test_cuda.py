"""CUDA kernels against the CPU op and the reference, per dtype (skipped without a GPU)."""

import copy

import pytest
import torch

from interestevo import TimeLSTM, extension_info

from .helpers import MODES, reference_only, requires_extension, run_with_grads

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
        cuda_module, inputs.to("cuda", dtype), dt=dt.to("cuda", dtype), lengths=lengths)
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
