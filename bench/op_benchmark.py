"""The operator benchmark: TimeLSTM against nn.LSTM and the plain-PyTorch reference (issue 4).

    python bench/op_benchmark.py --device cpu            # full CPU grid -> bench/results/op_cpu_<intel|amd>.*
    python bench/op_benchmark.py --device cpu --quick    # only the shapes the targets name
    python bench/op_benchmark.py --device cuda --dtype float32,bfloat16 --tf32 off,on

All competitors run side by side in one process, interleaved round-robin so that machine noise hits
them alike. Each (shape, mode) reports the median of many timed samples after warm-up (CUDA events on
GPU, perf_counter on CPU), peak memory, and the achieved GFLOP/s of the matrix work against a "GEMM
floor": the same GEMMs, timed bare in the same run. Results go to <out>/<tag>.json after every shape
(so a run cut short keeps what it measured); report.py turns them into Markdown and PNG.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

os.environ.setdefault("KINETO_LOG_LEVEL", "5")  # quiet the profiler used for CPU memory ("no GPU" errors)

import torch  # noqa: E402

import interestevo  # noqa: E402
from interestevo import TimeLSTM, reference  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


# ------------------------------------------------------------------------------------------ shapes
@dataclass(frozen=True)
class Shape:
    name: str
    T: int  # steps
    B: int  # batch
    I: int  # input size  # noqa: E741
    H: int  # hidden size
    group: str  # "named" (tables, memory) or "sweep" (plots)


NAMED_SHAPES = [
    # the issue-2 CPU targets first: they are what a short run must not miss
    Shape("target-b128", 50, 128, 128, 128, "named"),
    Shape("target-b8", 50, 8, 64, 64, "named"),
    Shape("fastrnns", 100, 64, 512, 512, "named"),
    Shape("rec-h64", 50, 256, 64, 64, "named"),
    Shape("rec-h128", 50, 256, 128, 128, "named"),
    Shape("stream-b1-h128", 50, 1, 128, 128, "named"),
    Shape("stream-b1-h256", 50, 1, 256, 256, "named"),
    Shape("stream-b8-h128", 50, 8, 128, 128, "named"),
    Shape("stream-b8-h256", 50, 8, 256, 256, "named"),
]
SWEEP_T = 50
SWEEP = {  # hidden sizes x batch sizes (I = H); a point equal to a named shape is not run twice
    "cpu": ([32, 64, 128, 256], [1, 8, 64]),
    "cuda": ([64, 128, 256, 512, 1024], [8, 64, 256, 1024]),
}
QUICK_SHAPES = {"cpu": ["target-b128", "target-b8"], "cuda": ["fastrnns", "target-b128"]}
COMPILE_SHAPES = {"cpu": ["target-b8", "target-b128"], "cuda": ["fastrnns"]}  # compiling costs minutes


def grid(device: str, quick: bool) -> list[Shape]:
    if quick:
        return [s for s in NAMED_SHAPES if s.name in QUICK_SHAPES[device]]
    shapes = list(NAMED_SHAPES)
    seen = {(s.T, s.B, s.I, s.H) for s in shapes}
    hidden_sizes, batch_sizes = SWEEP[device]
    for B in batch_sizes:
        for H in hidden_sizes:
            if (SWEEP_T, B, H, H) not in seen:
                shapes.append(Shape(f"sweep-b{B}-h{H}", SWEEP_T, B, H, H, "sweep"))
    return shapes


# ------------------------------------------------------------------------------------- competitors
TIMELSTM_MODES = {  # competitor name -> TimeLSTM options
    "exp+decomp": dict(decay="exp", decomposition=True),
    "exp": dict(decay="exp", decomposition=False),
    "log+decomp": dict(decay="log", decomposition=True),
    "none": dict(decay="none", decomposition=False),
}
COMPETITORS = [*TIMELSTM_MODES, "nn.LSTM", "reference", "reference+compile", "gemm", "gemm+decomp"]
SWEEP_COMPETITORS = ["exp+decomp", "none", "nn.LSTM", "reference"]
LOW_PRECISION_SKIP = {"reference", "reference+compile"}  # the targets compare the reference in fp32
MODES = ("fwd", "fwdbwd")
# Which matrix work each competitor does (for FLOPs and its GEMM floor).
DECOMPOSES = {"exp+decomp", "log+decomp", "reference", "reference+compile", "gemm+decomp"}


def matmul_flops(shape: Shape, decomp: bool, mode: str) -> float:
    """FLOPs of the GEMMs: input projection, recurrent (and decomposition) products; backward = 2x."""
    T, B, I, H = shape.T, shape.B, shape.I, shape.H
    forward = 2 * T * B * 4 * H * (I + H) + (2 * T * B * H * H if decomp else 0)
    return forward if mode == "fwd" else 3 * forward


def model_calls(forward: Callable, params: list, x, dt, grad) -> dict[str, Callable]:
    """Inference under no_grad; training as forward + the gradients of input and every parameter."""
    def fwd():
        with torch.no_grad():
            forward(x, dt)

    def fwdbwd():
        out = forward(x, dt)
        torch.autograd.grad(out, [x, *params], grad)

    return {"fwd": fwd, "fwdbwd": fwdbwd}


def reference_forward(module: TimeLSTM, cell: Callable | None = None) -> Callable:
    """The package's plain-PyTorch reference on ``module``'s weights; with ``cell`` (a compiled
    ``time_lstm_cell_ref``), the same loop over time calling that cell."""
    names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_decomp", "bias_decomp", "decay_rate")
    params = [getattr(module, f"{n}_l0", None) for n in names]
    options = (module.decay, module.decomposition)

    def forward(x, dt):
        h0 = x.new_zeros(x.shape[1], module.hidden_size)
        if cell is None:
            return reference.time_lstm_layer_ref(x, dt, None, h0, h0, *params, *options)[0]
        h, c, outputs = h0, h0.clone(), []
        for t in range(x.shape[0]):
            h, c = cell(x[t], dt[t], h, c, *params, *options)
            outputs.append(h)
        return torch.stack(outputs)

    return forward


def gemm_floor_calls(shape: Shape, decomp: bool, device, dtype) -> dict[str, Callable]:
    """The GEMMs of an LSTM layer (``decomp``: plus the decomposition's), bare, as a fused kernel
    would issue them: one input projection, T recurrent products; backward T more and the
    weight/input gradients as big GEMMs after the loop."""
    T, B, I, H = shape.T, shape.B, shape.I, shape.H

    def r(*size):
        return torch.randn(*size, device=device, dtype=dtype)

    x, w_ih, w_hh, w_d, h, g_step = r(T * B, I), r(4 * H, I), r(4 * H, H), r(H, H), r(B, H), r(B, 4 * H)
    g_all, h_all, s_all = r(T * B, 4 * H), r(T * B, H), r(T * B, H)
    proj, z, s, gh, gc = r(T * B, 4 * H), r(B, 4 * H), r(B, H), r(B, H), r(B, H)
    gw_ih, gw_hh, gx, gw_d = r(4 * H, I), r(4 * H, H), r(T * B, I), r(H, H)

    def fwd():
        torch.mm(x, w_ih.t(), out=proj)
        for _ in range(T):
            torch.mm(h, w_hh.t(), out=z)
            if decomp:
                torch.mm(h, w_d.t(), out=s)

    def fwdbwd():
        fwd()
        for _ in range(T):
            torch.mm(g_step, w_hh, out=gh)
            if decomp:
                torch.mm(s, w_d, out=gc)
        torch.mm(g_all.t(), x, out=gw_ih)
        torch.mm(g_all.t(), h_all, out=gw_hh)
        torch.mm(g_all, w_ih, out=gx)
        if decomp:
            torch.mm(s_all.t(), h_all, out=gw_d)

    return {"fwd": fwd, "fwdbwd": fwdbwd}


def build(name: str, shape: Shape, lstm: torch.nn.LSTM, inputs: tuple, compile_timeout: int):
    """Returns {mode: callable} for competitor ``name`` at ``shape``."""
    x, dt, grad = inputs
    device, dtype = x.device, x.dtype
    if name == "gemm" or name == "gemm+decomp":
        return gemm_floor_calls(shape, name == "gemm+decomp", device, dtype)
    if name == "nn.LSTM":
        return model_calls(lambda x, dt: lstm(x)[0], list(lstm.parameters()), x, dt, grad)
    if name in TIMELSTM_MODES:
        check_extension(device)
    options = TIMELSTM_MODES.get(name, TIMELSTM_MODES["exp+decomp"])
    module = TimeLSTM.from_lstm(lstm, **options)
    params = list(module.parameters())
    if name in TIMELSTM_MODES:
        return model_calls(lambda x, dt: module(x, dt=dt)[0], params, x, dt, grad)
    if name == "reference":
        return model_calls(reference_forward(module), params, x, dt, grad)
    if name == "reference+compile":
        # The cell is compiled (the loop stays in Python): compiling the unrolled sequence took
        # minutes per shape on the 2-core CPU. Compilation happens here, outside the timing.
        torch._dynamo.reset()  # a fresh cache per shape: never hit the recompile limit (silent eager)
        cell = torch.compile(reference.time_lstm_cell_ref, dynamic=False)
        calls = model_calls(reference_forward(module, cell), params, x, dt, grad)
        with time_limit(compile_timeout, "torch.compile warm-up"):
            for call in calls.values():
                call()
        return calls
    raise ValueError(f"unknown competitor {name!r}; expected one of {', '.join(COMPETITORS)}")


def check_extension(device: torch.device) -> None:
    """TimeLSTM must be timed on the compiled op, never silently on the reference fallback."""
    info = interestevo.extension_info()
    if interestevo.ops.use_reference():
        raise RuntimeError(f"the compiled op is not in use ({info['reason_not_loaded'] or 'INTERESTEVO_REFERENCE is set'})")
    if device.type == "cuda" and not info["cuda_kernels"]:
        raise RuntimeError("interestevo._C was built without CUDA kernels")


@contextlib.contextmanager
def time_limit(seconds: int, what: str):
    """Raises TimeoutError in the main thread if the block runs longer than ``seconds``."""
    def expire(signum, frame):
        raise TimeoutError(f"{what} took longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# -------------------------------------------------------------------------------------- measuring
def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_once(call: Callable, inner: int, device: torch.device) -> float:
    """Seconds per call, averaged over ``inner`` back-to-back calls."""
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(inner):
            call()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3 / inner
    began = time.perf_counter()
    for _ in range(inner):
        call()
    return (time.perf_counter() - began) / inner


def peak_memory_mb(call: Callable, device: torch.device) -> float | None:
    """Peak bytes allocated during one call, over what was allocated before it, in MiB.

    GPU: torch.cuda.max_memory_allocated. CPU: the running total of torch's CPU allocator as the
    profiler records it (tracemalloc and RSS do not see torch's allocations reliably); None if that
    profiler API is unavailable.
    """
    if device.type == "cuda":
        synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        call()
        synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - before) / 2**20
    try:
        from torch._C._profiler import _EventType
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            call()
        totals, stack = [0], list(prof.profiler.kineto_results.experimental_event_tree())
        while stack:
            event = stack.pop()
            if event.tag == _EventType.Allocation:
                totals.append(event.extra_fields.total_allocated)
            stack.extend(event.children)
        return max(totals) / 2**20
    except Exception:  # an internal API: report "n/a" rather than a wrong number
        return None


def make_inputs(shape: Shape, device, dtype) -> tuple[torch.nn.LSTM, tuple]:
    """The nn.LSTM whose weights every competitor copies, and (x, dt, grad of the output)."""
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(shape.I, shape.H, device=device, dtype=dtype)
    x = torch.randn(shape.T, shape.B, shape.I, device=device, dtype=dtype, requires_grad=True)
    dt = torch.rand(shape.T, shape.B, device=device, dtype=dtype) * 24  # hours, up to a day
    grad = torch.randn(shape.T, shape.B, shape.H, device=device, dtype=dtype)
    return lstm, (x, dt, grad)


def measure_shape(shape: Shape, names: list[str], device: torch.device, dtype: torch.dtype, args) -> list[dict]:
    """Builds every competitor, warms it up, times all of them round-robin, then measures memory."""
    lstm, inputs = make_inputs(shape, device, dtype)
    records, runs = [], []  # runs: (name, mode, call, inner, seconds per sample)
    for name in names:
        try:
            calls = build(name, shape, lstm, inputs, args.compile_timeout)
        except Exception as error:  # noqa: BLE001 - a competitor that cannot run is reported, not fatal
            records += [error_record(name, mode, error) for mode in args.modes]
            continue
        for mode in args.modes:
            try:
                warm_began = time.perf_counter()
                for _ in range(args.warmup):  # a slow call needs fewer: stop after a second
                    calls[mode]()
                    synchronize(device)
                    if time.perf_counter() - warm_began > 1.0:
                        break
                single = time_once(calls[mode], 1, device)
            except Exception as error:  # noqa: BLE001
                records.append(error_record(name, mode, error))
                continue
            inner = max(1, math.ceil(args.min_sample_s / max(single, 1e-9)))
            runs.append((name, mode, calls[mode], inner, single * inner))
    for mode in args.modes:
        batch = [run for run in runs if run[1] == mode]
        if not batch:
            continue
        round_time = sum(run[4] for run in batch)
        # At least min_reps samples; 3 when one round alone outlasts the budget (fastrnns on a CPU).
        least = args.min_reps if round_time < args.budget else min(args.min_reps, 3)
        reps = int(min(args.max_reps, max(least, args.budget / max(round_time, 1e-9))))
        samples = {run[0]: [] for run in batch}
        for rep in range(reps):
            offset = rep % len(batch)  # rotate the order so no competitor always runs first
            for name, _, call, inner, _ in batch[offset:] + batch[:offset]:
                samples[name].append(time_once(call, inner, device))
        for name, _, call, inner, _ in batch:
            memory = None if args.no_memory or shape.group != "named" or name.startswith("gemm") \
                else peak_memory_mb(call, device)
            records.append(timing_record(name, mode, shape, samples[name], inner, memory))
    add_floors(records, shape)
    return records


def error_record(name: str, mode: str, error: Exception) -> dict:
    message = f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''}"
    return {"competitor": name, "mode": mode, "error": message[:300]}


def timing_record(name: str, mode: str, shape: Shape, samples: list[float], inner: int,
                  memory: float | None) -> dict:
    ms = sorted(s * 1e3 for s in samples)
    median = quantile(ms, 0.5)
    flops = matmul_flops(shape, name in DECOMPOSES, mode)
    return {"competitor": name, "mode": mode, "median_ms": median, "p25_ms": quantile(ms, 0.25),
            "p75_ms": quantile(ms, 0.75), "min_ms": ms[0], "samples": len(ms), "inner": inner,
            "flops": flops, "gflops": flops / median / 1e6, "peak_mem_mb": memory}


def add_floors(records: list[dict], shape: Shape) -> None:
    """Efficiency of each competitor: the bare time of its GEMMs over its own time."""
    floors = {(r["competitor"], r["mode"]): r["median_ms"] for r in records
              if r["competitor"].startswith("gemm") and "median_ms" in r}
    for r in records:
        floor = floors.get(("gemm+decomp" if r["competitor"] in DECOMPOSES else "gemm", r["mode"]))
        if "median_ms" in r and floor is not None:
            r["floor_ms"] = floor
            r["floor_gflops"] = r["flops"] / floor / 1e6
            r["efficiency"] = floor / r["median_ms"]


def quantile(sorted_values: list[float], q: float) -> float:
    position = q * (len(sorted_values) - 1)
    low, high = math.floor(position), math.ceil(position)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def peak_gemm_gflops(device: torch.device, dtype: torch.dtype) -> float:
    """One large square GEMM: the machine's matrix ceiling for this dtype and TF32 setting."""
    n = 8192 if device.type == "cuda" else 2048
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    for _ in range(3):
        a @ b
    synchronize(device)
    seconds = sorted(time_once(lambda: a @ b, 1, device) for _ in range(5))[2]
    return 2 * n**3 / seconds / 1e9


# ------------------------------------------------------------------------------ configuration, env
def set_tf32(enabled: bool) -> None:
    """The same TF32 setting for cuBLAS (TimeLSTM's GEMMs, the reference) and cuDNN (nn.LSTM)."""
    try:
        torch.backends.cuda.matmul.allow_tf32 = enabled
        torch.backends.cudnn.allow_tf32 = enabled
    except RuntimeError:  # a torch that refuses the legacy flags once the fp32_precision API was used
        precision = "tf32" if enabled else "ieee"
        torch.backends.cuda.matmul.fp32_precision = precision
        torch.backends.cudnn.rnn.fp32_precision = precision


def tf32_state(device: torch.device) -> dict:
    """The flags that decide whether float32 matrix work may run in a reduced precision."""
    flags = {"cpu": ["mkldnn.matmul.fp32_precision"],
             "cuda": ["cuda.matmul.allow_tf32", "cudnn.allow_tf32", "cuda.matmul.fp32_precision",
                      "cudnn.rnn.fp32_precision"]}[device.type]
    state = {}
    for flag in flags:  # the fp32_precision API is newer than torch 2.4: report what exists
        with contextlib.suppress(Exception):
            value = torch.backends
            for part in flag.split("."):
                value = getattr(value, part)
            state[flag] = value
    return state


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def cpu_vendor() -> str:
    """intel, amd (Zen 4), amd_zen5 or the machine name, plus ``_avx2`` on x86 CPUs without
    AVX-512: one result file per kind of CPU (MKL's speed differs by vendor, oneDNN's matmul needs
    AVX-512, and Zen 5 runs AVX-512 at full width where Zen 4 splits it in two)."""
    with contextlib.suppress(OSError):
        fields = (line.split(":", 1) for line in Path("/proc/cpuinfo").read_text().splitlines() if ":" in line)
        info = {key.strip(): value.strip() for key, value in fields}
        vendor = info.get("vendor_id", "")
        if vendor:
            name = {"GenuineIntel": "intel", "AuthenticAMD": "amd"}.get(vendor, vendor.lower())
            family = info.get("cpu family", "")
            if name == "amd" and family.isdigit() and int(family) >= 26:
                name = "amd_zen5"
            return name if torch.backends.cpu.get_cpu_capability().startswith("AVX512") else f"{name}_avx2"
    return platform.machine().lower()


def lstm_kernel(device: torch.device, dtype: torch.dtype) -> str:
    """Which ATen kernel nn.LSTM runs here (oneDNN, cuDNN or the native loop), from a profile."""
    try:
        from torch.profiler import profile

        lstm = torch.nn.LSTM(8, 8, device=device, dtype=dtype)
        x = torch.randn(3, 2, 8, device=device, dtype=dtype)
        with profile() as prof:
            lstm(x)[0].sum().backward()
        names = sorted({e.name for e in prof.events() if e.name.startswith("aten::")
                        and any(k in e.name for k in ("rnn", "lstm", "mkldnn"))})
        return ", ".join(names) or "unknown"
    except Exception as error:  # noqa: BLE001
        return f"unknown ({type(error).__name__})"


def git_commit() -> str | None:
    with contextlib.suppress(Exception):
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return commit + ("+uncommitted" if dirty else "") if commit else None
    return None


def environment(device: torch.device, args) -> dict:
    env = {
        "date_utc": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python " + " ".join([f"bench/{Path(sys.argv[0]).name}", *sys.argv[1:]]),
        "git": git_commit(), "python": platform.python_version(), "platform": platform.platform(),
        "torch": torch.__version__, "torch_cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "cpu": cpu_model(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "logical_cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "mkldnn": torch.backends.mkldnn.is_available(), "interestevo": interestevo.extension_info(),
        "load_average_start": os.getloadavg(), "quick": args.quick, "budget_s": args.budget,
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update(gpu=props.name, gpu_capability=f"{props.major}.{props.minor}",
                   gpu_memory_gib=round(props.total_memory / 2**30, 1),
                   cudnn_benchmark=torch.backends.cudnn.benchmark)
    return env


def configs(device: torch.device, args) -> list[dict]:
    """(dtype, TF32) pairs to run; TF32 only matters for float32 on CUDA. TF32-on runs last, after
    the other dtypes: a deadline then cuts the variant that matters least."""
    out = []
    for dtype_name in args.dtype.split(","):
        dtype = getattr(torch, dtype_name)
        tf32_options = [None]
        if device.type == "cuda" and dtype == torch.float32:
            tf32_options = [{"on": True, "off": False}[v] for v in args.tf32.split(",")]
        for tf32 in tf32_options:
            label = dtype_name if tf32 is None else f"{dtype_name}, TF32 {'on' if tf32 else 'off'}"
            out.append({"label": label, "dtype": dtype_name, "tf32": tf32})
    return sorted(out, key=lambda config: config["tf32"] is True)  # stable: the given order otherwise


def competitors_for(shape: Shape, config: dict, device: str, args) -> list[str]:
    names = args.competitors.split(",") if args.competitors else (
        COMPETITORS if shape.group == "named" else SWEEP_COMPETITORS)
    if config["dtype"] != "float32" and not args.competitors:
        names = [n for n in names if n not in LOW_PRECISION_SKIP]
    if "reference+compile" in names and not args.competitors:
        compile_shapes = args.compile_shapes.split(",") if args.compile_shapes is not None \
            else COMPILE_SHAPES[device]
        first_config = config is args.configs[0]
        if shape.name not in compile_shapes or not first_config:
            names = [n for n in names if n != "reference+compile"]
    return names


def write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str))
    os.replace(tmp, path)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--dtype", default="float32", help="comma list: float32,bfloat16,float16,float64")
    p.add_argument("--tf32", default="off,on", help="CUDA float32: off, on or off,on (every competitor alike)")
    p.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    p.add_argument("--quick", action="store_true", help="only the shapes the targets name, short budget")
    p.add_argument("--shapes", help="comma list of shape names (default: the device's grid)")
    p.add_argument("--competitors", help=f"comma list from {','.join(COMPETITORS)} (default: all)")
    p.add_argument("--compile-shapes", help="shapes for reference+compile (default: the target shapes on CPU, fastrnns on GPU)")
    p.add_argument("--compile-timeout", type=int, default=240, help="seconds for one torch.compile warm-up")
    p.add_argument("--modes", default=",".join(MODES), help="fwd (no grad), fwdbwd (training) or both")
    p.add_argument("--budget", type=float, help="timing seconds per (shape, mode) (default 5 CPU, 0.3 GPU)")
    p.add_argument("--min-reps", type=int, help="samples per competitor at least (default 5 CPU, 10 GPU)")
    p.add_argument("--max-reps", type=int, default=200)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--min-sample-ms", type=float, default=2.0, help="calls per sample are repeated up to this")
    p.add_argument("--deadline", type=float, help="start no new shape after this many seconds")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory runs")
    p.add_argument("--out", default=str(HERE / "results"))
    p.add_argument("--tag", help="output file stem (default op_cuda, or op_cpu_<vendor> (intel, amd, amd_avx2): one "
                                 "file per kind of CPU; _quick appended with --quick)")
    p.add_argument("--no-report", action="store_true", help="write JSON only (report.py renders it)")
    args = p.parse_args(argv)
    gpu = args.device == "cuda"
    args.modes = args.modes.split(",")
    args.budget = args.budget if args.budget is not None else (0.3 if gpu else 5.0) * (0.4 if args.quick else 1)
    args.min_reps = args.min_reps if args.min_reps is not None else (10 if gpu else 5)
    args.min_sample_s = args.min_sample_ms / 1e3
    device_tag = f"op_cpu_{cpu_vendor()}" if args.device == "cpu" else f"op_{args.device}"
    args.tag = args.tag or device_tag + ("_quick" if args.quick else "")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("op_benchmark: --device cuda, but torch sees no CUDA GPU", file=sys.stderr)
        return 2
    device = torch.device(args.device)
    shapes = grid(args.device, args.quick)
    if args.shapes:
        wanted = args.shapes.split(",")
        shapes = [s for s in NAMED_SHAPES + grid(args.device, False) if s.name in wanted]
        shapes = list({s.name: s for s in shapes}.values())
    args.configs = configs(device, args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{args.tag}.json"
    data = {"kind": "op", "device": args.device, "env": environment(device, args), "configs": [],
            "results": [], "skipped": []}
    began = time.perf_counter()
    print(f"op_benchmark: {len(shapes)} shapes x {len(args.configs)} configs on {device} "
          f"({data['env']['cpu'] if args.device == 'cpu' else data['env']['gpu']}), "
          f"{torch.get_num_threads()} threads; load average {os.getloadavg()[0]:.2f}", flush=True)
    if os.getloadavg()[0] > 0.75 * (os.cpu_count() or 1):
        print("op_benchmark: WARNING the machine is busy (see `uptime`): absolute times are unreliable, "
              "and on a CPU even the ratios suffer when threads wait for a busy core", flush=True)
    # Named shapes of every config first, then the sweeps: a deadline cuts the plots, not the tables.
    tasks = [(c, s) for group in ("named", "sweep") for c in args.configs for s in shapes if s.group == group]
    for config, shape in tasks:
        if config["label"] not in {c["label"] for c in data["configs"]}:
            dtype = getattr(torch, config["dtype"])
            if config["tf32"] is not None:
                set_tf32(config["tf32"])
            data["configs"].append({**config, "tf32_flags": tf32_state(device), "nn_lstm_kernel": lstm_kernel(device, dtype),
                                    "peak_gemm_gflops": peak_gemm_gflops(device, dtype)})
        if args.deadline is not None and time.perf_counter() - began > args.deadline:
            data["skipped"].append({"config": config["label"], "shape": shape.name, "reason": "deadline"})
            continue
        if config["tf32"] is not None:
            set_tf32(config["tf32"])
        load = os.getloadavg()[0]
        shape_began = time.perf_counter()
        names = competitors_for(shape, config, args.device, args)
        records = measure_shape(shape, names, device, getattr(torch, config["dtype"]), args)
        for r in records:
            r.update(config=config["label"], dtype=config["dtype"], tf32=config["tf32"], shape=shape.name,
                     **{k: v for k, v in asdict(shape).items() if k != "name"}, load_average=load)
        data["results"] += records
        data["env"]["load_average_end"] = os.getloadavg()
        data["env"]["seconds"] = round(time.perf_counter() - began, 1)
        write_json(path, data)
        errors = sum("error" in r for r in records)
        print(f"  {config['label']:<22} {shape.name:<16} {time.perf_counter() - shape_began:6.1f} s"
              f"{f', {errors} errors' if errors else ''}", flush=True)
    if data["skipped"]:
        print(f"op_benchmark: deadline reached, {len(data['skipped'])} shape runs skipped", flush=True)
    write_json(path, data)
    print(f"op_benchmark: wrote {path} in {time.perf_counter() - began:.0f} s", flush=True)
    if not args.no_report:
        import report

        report.main([str(path)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
