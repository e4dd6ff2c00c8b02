"""The fused operator against the plain-PyTorch reference: outputs and every gradient, in every
mode, on random shapes, with lengths, hx, several layers, batch_first, packed and unbatched input."""

import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from interestevo import TimeLSTM

from .helpers import MODES, assert_close_all, reference_only, requires_extension, run_with_grads

pytestmark = requires_extension
FLOAT64 = dict(rtol=1e-9, atol=1e-10)
FLOAT32 = dict(rtol=2e-4, atol=2e-5)


def compare(module, inputs, hx=None, tolerances=FLOAT64, **kwargs):
    fused = run_with_grads(module, inputs, hx, **kwargs)
    with reference_only():
        expected = run_with_grads(module, inputs, hx, **kwargs)
    assert_close_all(fused, expected, **tolerances)
    return fused


def random_lengths(batch, steps, generator):
    lengths = torch.randint(0, steps + 1, (batch,), generator=generator)
    lengths[0] = steps  # always one full-length row
    return lengths


@pytest.mark.parametrize("decay,decomposition", MODES)
@pytest.mark.parametrize("num_layers", [1, 2, 3])
def test_modes_and_layers_match_reference(decay, decomposition, num_layers):
    torch.manual_seed(num_layers)
    module = TimeLSTM(5, 7, num_layers=num_layers, decay=decay, decomposition=decomposition).double()
    inputs = torch.randn(9, 4, 5, dtype=torch.float64)
    dt = torch.rand(9, 4, dtype=torch.float64) * 30
    hx = (torch.randn(num_layers, 4, 7, dtype=torch.float64), torch.randn(num_layers, 4, 7, dtype=torch.float64))
    lengths = torch.tensor([9, 0, 4, 1])
    compare(module, inputs, hx, dt=dt, lengths=lengths)


@settings(max_examples=25, deadline=None)
@given(
    mode=st.sampled_from(MODES),
    steps=st.integers(1, 12),
    batch=st.integers(1, 6),
    input_size=st.integers(1, 9),
    hidden_size=st.integers(1, 19),  # odd sizes exercise the partial SIMD vectors
    num_layers=st.integers(1, 2),
    batch_first=st.booleans(),
    use_lengths=st.booleans(),
    bias=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_random_shapes_match_reference(mode, steps, batch, input_size, hidden_size, num_layers,
                                       batch_first, use_lengths, bias, seed):
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    decay, decomposition = mode
    module = TimeLSTM(input_size, hidden_size, num_layers=num_layers, bias=bias, batch_first=batch_first,
                      decay=decay, decomposition=decomposition).double()
    shape = (batch, steps) if batch_first else (steps, batch)
    inputs = torch.randn(*shape, input_size, dtype=torch.float64, generator=generator)
    dt = torch.rand(*shape, dtype=torch.float64, generator=generator) * 100
    lengths = random_lengths(batch, steps, generator) if use_lengths else None
    compare(module, inputs, dt=dt, lengths=lengths)


@pytest.mark.parametrize("decay,decomposition", MODES)
def test_float32_matches_reference(decay, decomposition):
    torch.manual_seed(3)
    module = TimeLSTM(16, 24, num_layers=2, decay=decay, decomposition=decomposition)
    inputs = torch.randn(20, 5, 16)
    dt = torch.rand(20, 5) * 48
    compare(module, inputs, tolerances=FLOAT32, dt=dt, lengths=torch.tensor([20, 13, 0, 1, 20]))


def test_unbatched_matches_batched_of_one():
    torch.manual_seed(4)
    module = TimeLSTM(3, 5, num_layers=2).double()
    inputs = torch.randn(7, 3, dtype=torch.float64)
    dt = torch.rand(7, dtype=torch.float64)
    hx = (torch.randn(2, 5, dtype=torch.float64), torch.randn(2, 5, dtype=torch.float64))
    (output, h_n, c_n), _ = compare(module, inputs, hx, dt=dt)
    batched, (h_b, c_b) = module(inputs.unsqueeze(1), tuple(s.unsqueeze(1) for s in hx), dt=dt.unsqueeze(1))
    assert output.shape == (7, 5) and h_n.shape == (2, 5) and c_n.shape == (2, 5)
    torch.testing.assert_close(output, batched.squeeze(1).detach())
    torch.testing.assert_close(h_n, h_b.squeeze(1).detach())
    torch.testing.assert_close(c_n, c_b.squeeze(1).detach())


def test_packed_sequence_matches_lengths():
    torch.manual_seed(5)
    module = TimeLSTM(4, 6).double()
    inputs = torch.randn(8, 3, 4, dtype=torch.float64)
    dt = torch.rand(8, 3, dtype=torch.float64)
    lengths = torch.tensor([5, 8, 2])
    packed = pack_padded_sequence(inputs, lengths, enforce_sorted=False)
    packed_dt = pack_padded_sequence(dt, lengths, enforce_sorted=False)
    hx = (torch.randn(1, 3, 6, dtype=torch.float64), torch.randn(1, 3, 6, dtype=torch.float64))
    out_packed, (h_p, c_p) = module(packed, hx, dt=packed_dt)
    out_padded_dt, _ = module(packed, hx, dt=dt)  # dt may also be padded, in the original order
    expected, (h_e, c_e) = module(inputs, hx, dt=dt, lengths=lengths)
    unpacked, unpacked_lengths = pad_packed_sequence(out_packed)
    torch.testing.assert_close(unpacked, expected[: int(lengths.max())])
    torch.testing.assert_close(pad_packed_sequence(out_padded_dt)[0], unpacked)
    torch.testing.assert_close(h_p, h_e)
    torch.testing.assert_close(c_p, c_e)
    assert unpacked_lengths.tolist() == lengths.tolist()
    assert torch.equal(out_packed.sorted_indices, packed.sorted_indices)


def test_lengths_freeze_state_and_zero_outputs():
    torch.manual_seed(6)
    module = TimeLSTM(3, 4).double()
    inputs = torch.randn(6, 2, 3, dtype=torch.float64)
    dt = torch.rand(6, 2, dtype=torch.float64)
    output, (h_n, c_n) = module(inputs, dt=dt, lengths=torch.tensor([6, 3]))
    short, (h_s, c_s) = module(inputs[:3, 1:], dt=dt[:3, 1:])
    assert torch.all(output[3:, 1] == 0)
    torch.testing.assert_close(output[:3, 1:], short)
    torch.testing.assert_close(h_n[:, 1:], h_s)
    torch.testing.assert_close(c_n[:, 1:], c_s)
    _, (h_zero, c_zero) = module(inputs, dt=dt, lengths=torch.tensor([0, 0]))
    assert torch.all(h_zero == 0) and torch.all(c_zero == 0)  # zero length keeps h_0 = 0


def test_dropout_between_layers_is_applied_in_training_only():
    torch.manual_seed(7)
    module = TimeLSTM(4, 8, num_layers=2, dropout=0.5)
    inputs, dt = torch.randn(5, 3, 4), torch.rand(5, 3)
    module.eval()
    first, _ = module(inputs, dt=dt)
    second, _ = module(inputs, dt=dt)
    torch.testing.assert_close(first, second)
    module.train()
    torch.manual_seed(0)
    noisy, _ = module(inputs, dt=dt)
    assert not torch.allclose(noisy, first)


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("decay,decomposition", MODES)
def test_any_thread_count_matches_reference(threads, decay, decomposition):
    """Each thread takes a block of batch rows through all steps: uneven blocks (16, 16, 5 rows on
    3 threads), rows of length 0 and a given hx; training and inference."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        torch.manual_seed(threads)
        module = TimeLSTM(6, 11, decay=decay, decomposition=decomposition).double()
        inputs = torch.randn(8, 37, 6, dtype=torch.float64)
        dt = torch.rand(8, 37, dtype=torch.float64) * 30
        hx = (torch.randn(1, 37, 11, dtype=torch.float64), torch.randn(1, 37, 11, dtype=torch.float64))
        lengths = torch.randint(0, 9, (37,), generator=torch.Generator().manual_seed(threads))
        lengths[[0, 16, 32]] = 8
        lengths[[1, 17, 33]] = 0
        compare(module, inputs, hx, dt=dt, lengths=lengths)
        with torch.no_grad(), reference_only():
            expected = module(inputs, hx, dt=dt, lengths=lengths)
        with torch.no_grad():  # the inference op (nothing saved) too
            torch.testing.assert_close(module(inputs, hx, dt=dt, lengths=lengths), expected, **FLOAT64)
    finally:
        torch.set_num_threads(before)


@pytest.fixture
def cpu_gemm_library():
    """Sets the library of the CPU backend's large products for one test, then restores it."""
    before = torch.ops.interestevo._cpu_gemm_library()
    yield lambda name: torch.ops.interestevo._cpu_gemm_library(name)
    torch.ops.interestevo._cpu_gemm_library(before)


# (batch, hidden): with oneDNN's micro-kernel (float32, AVX-512), each step projects its own inputs
# for 8 rows with small weights (and 70 rows on AMD CPUs), while 3 rows, and 8 rows with I=40,
# H=256 (1.5 MB of weights), take one input GEMM over all steps; 70 and 8 rows split into row
# blocks per thread. With H=300 "auto" keeps MKL for every product on Intel CPUs.
PROJECTION_PATHS = [(70, 48), (8, 48), (8, 256), (3, 48), (70, 300)]


@pytest.mark.parametrize("library", ["mkl", "onednn", "auto"])
@pytest.mark.parametrize("decay,decomposition", MODES)
@pytest.mark.parametrize("batch,hidden", PROJECTION_PATHS)
def test_every_cpu_gemm_library_matches_reference(cpu_gemm_library, library, decay, decomposition,
                                                  batch, hidden):
    """"auto" takes oneDNN for the large products on AMD CPUs only, and its micro-kernel for the
    per-step ones on every CPU with AVX-512 (on Intel up to H=256); "onednn" forces both wherever
    AVX-512 runs them (on other CPUs it keeps MKL, as ATen's oneDNN matmul refuses them), "mkl"
    neither."""
    assert cpu_gemm_library(library) == library
    torch.manual_seed(11)
    steps = 30 if hidden < 100 else 6
    module = TimeLSTM(40, hidden, num_layers=2, decay=decay, decomposition=decomposition)
    inputs, dt = torch.randn(steps, batch, 40), torch.rand(steps, batch) * 48
    lengths = torch.randint(0, steps + 1, (batch,), generator=torch.Generator().manual_seed(5))
    lengths[0] = steps
    compare(module, inputs, tolerances=FLOAT32, dt=dt, lengths=lengths)
    with torch.no_grad(), reference_only():
        expected = module(inputs, dt=dt, lengths=lengths)
    with torch.no_grad():
        torch.testing.assert_close(module(inputs, dt=dt, lengths=lengths), expected, **FLOAT32)


def test_cpu_gemm_library_names_are_checked(cpu_gemm_library):
    with pytest.raises(ValueError, match="'auto', 'mkl' or 'onednn', got 'blas'"):
        cpu_gemm_library("blas")
