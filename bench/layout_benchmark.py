"""What bidirectional and proj_size cost: TimeLSTM against nn.LSTM with the same layout (issue 10).

    python bench/layout_benchmark.py                  # T=50 B=64 I=H=128, proj_size=64, 2 threads
    python bench/layout_benchmark.py --steps 20 --repeats 5

Bidirectional runs the fused op once per direction; proj_size runs the plain-PyTorch reference
cell step by step (the fused op has no projection). Competitors are interleaved round-robin in one
process so that machine noise hits them alike; each cell of the table is a median in milliseconds
and its ratio to nn.LSTM with the same layout.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch
from torch import nn

from interestevo import TimeLSTM


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def timed(run) -> float:
    start = time.perf_counter()
    run()
    return (time.perf_counter() - start) * 1e3


def step(module, inputs, dt, backward: bool):
    def run():
        if backward:
            module.zero_grad(set_to_none=True)
            output, (h_n, c_n) = module(inputs, dt=dt) if dt is not None else module(inputs)
            (output.sum() + h_n.sum() + c_n.sum()).backward()
        else:
            with torch.no_grad():
                module(inputs, dt=dt) if dt is not None else module(inputs)
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=128, help="input and hidden size")
    parser.add_argument("--proj-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    inputs = torch.randn(args.steps, args.batch, args.size)
    dt = torch.rand(args.steps, args.batch) * 10
    print(f"CPU: {cpu_model()}, torch {torch.__version__}, "
          f"{args.threads} threads, T={args.steps} B={args.batch} I=H={args.size}, float32")
    print("| layout | pass | nn.LSTM ms | TimeLSTM none ms (x) | TimeLSTM exp ms (x) |")
    print("|---|---|---|---|---|")
    for bidirectional, proj_size in ((False, 0), (True, 0), (False, args.proj_size),
                                     (True, args.proj_size)):
        lstm = nn.LSTM(args.size, args.size, bidirectional=bidirectional, proj_size=proj_size)
        plain = TimeLSTM.from_lstm(lstm, decay="none", decomposition=False)
        timed_lstm = TimeLSTM.from_lstm(lstm, decay="exp", decomposition=True)
        layout = ("bi" if bidirectional else "uni") + (f" proj={proj_size}" if proj_size else "")
        for backward in (True, False):
            runs = [step(lstm, inputs, None, backward), step(plain, inputs, dt, backward),
                    step(timed_lstm, inputs, dt, backward)]
            for run in runs:  # warm-up
                run()
            samples = [[], [], []]
            for _ in range(args.repeats):
                for index, run in enumerate(runs):
                    samples[index].append(timed(run))
            base, none, exp = (statistics.median(s) for s in samples)
            print(f"| {layout} | {'fwd+bwd' if backward else 'no_grad'} | {base:.1f} | "
                  f"{none:.1f} ({none / base:.2f}x) | {exp:.1f} ({exp / base:.2f}x) |", flush=True)


if __name__ == "__main__":
    main()
