"""pytest-benchmark tests of the core shapes, for spotting regressions between commits.

Opt-in: pyproject's testpaths is tests/, so a plain ``python -m pytest`` never collects this file.

    python -m pytest bench/test_bench_core.py --benchmark-autosave        # save a baseline (.benchmarks/)
    python -m pytest bench/test_bench_core.py --benchmark-compare         # compare with the last save
    python -m pytest bench/test_bench_core.py --benchmark-compare --benchmark-compare-fail=median:10%

Set INTERESTEVO_BENCH_DEVICE=cuda to run them on a GPU (the timer then synchronises each call).
"""
import os

import pytest
import torch

pytest.importorskip("pytest_benchmark")

from op_benchmark import DECOMPOSES, NAMED_SHAPES, build, make_inputs, matmul_flops, synchronize  # noqa: E402

CORE_SHAPES = ["target-b128", "target-b8", "rec-h64", "stream-b1-h128"]
CORE_COMPETITORS = ["exp+decomp", "none", "nn.LSTM"]
DEVICE = torch.device(os.environ.get("INTERESTEVO_BENCH_DEVICE", "cpu"))
SHAPES = {s.name: s for s in NAMED_SHAPES}


@pytest.mark.parametrize("mode", ["fwd", "fwdbwd"])
@pytest.mark.parametrize("competitor", CORE_COMPETITORS)
@pytest.mark.parametrize("shape_name", CORE_SHAPES)
def test_core_shape(benchmark, shape_name, competitor, mode):
    if DEVICE.type == "cuda" and not torch.cuda.is_available():
        pytest.skip("INTERESTEVO_BENCH_DEVICE=cuda but no CUDA GPU")
    shape = SHAPES[shape_name]
    lstm, inputs = make_inputs(shape, DEVICE, torch.float32)
    call = build(competitor, shape, lstm, inputs, compile_timeout=0)[mode]

    def run():
        call()
        synchronize(DEVICE)

    benchmark.group = f"{shape_name} {mode}"
    benchmark.extra_info.update(T=shape.T, B=shape.B, I=shape.I, H=shape.H, device=str(DEVICE),
                                threads=torch.get_num_threads(),
                                flops=matmul_flops(shape, competitor in DECOMPOSES, mode))
    run()  # warm-up outside the timing: first-call allocations, lazy initialisation
    run()
    benchmark(run)
