"""Builds interestevo._C, the fused time-aware LSTM operator.

Install with ``pip install --no-build-isolation .`` so the extension is compiled against the torch
that is installed. Environment variables:

  INTERESTEVO_CPU_ONLY=1   build without the CUDA kernels even when a CUDA toolkit is found
  INTERESTEVO_CPU_VECTORS  avx2 or generic: cap the CPU kernels' SIMD (default: the widest this CPU
                           has, AVX512 or AVX2; the extension then refuses CPUs without it)
  CUDA_HOME                the CUDA toolkit (found automatically in its standard places)
  TORCH_CUDA_ARCH_LIST     CUDA architectures (default: the visible GPU's, else "8.0;9.0")
  MAX_JOBS                 parallel compile jobs (lower it when the build runs out of memory)
"""

import glob
import os
import platform
import shutil
import sys
from pathlib import Path

from setuptools import setup

ROOT = Path(__file__).parent.resolve()
DEFAULT_CUDA_ARCHS = "8.0;9.0"


def log(message: str) -> None:
    print(f"interestevo build: {message}", file=sys.stderr, flush=True)


def is_cuda_toolkit(path: str) -> bool:
    """A real toolkit has nvcc and the runtime library (a wrapper script's folder has neither)."""
    root = Path(path)
    has_runtime = any(
        (root / lib).exists()
        for lib in ("lib64/libcudart.so", "lib/libcudart.so", "targets/x86_64-linux/lib/libcudart.so",
                    "targets/sbsa-linux/lib/libcudart.so")
    )
    return (root / "bin" / "nvcc").exists() and has_runtime


def find_cuda_toolkit():
    """CUDA_HOME if it is real, else the standard locations, else the folder of nvcc on PATH."""
    candidates = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"]
    candidates += sorted(glob.glob("/usr/local/cuda-*"), reverse=True)
    nvcc = shutil.which("nvcc")
    if nvcc:
        candidates.append(str(Path(nvcc).resolve().parent.parent))
    for candidate in candidates:
        if candidate and is_cuda_toolkit(candidate):
            return str(Path(candidate).resolve())
    return None


def configure_cuda(torch):
    """Returns the toolkit path when the CUDA kernels will be built, else None (and says why)."""
    if os.environ.get("INTERESTEVO_CPU_ONLY", "0") not in ("", "0"):
        log("INTERESTEVO_CPU_ONLY is set: building the CPU kernels only.")
        return None
    if torch.version.cuda is None:
        log(f"torch {torch.__version__} has no CUDA support: building the CPU kernels only.")
        return None
    toolkit = find_cuda_toolkit()
    if toolkit is None:
        log("no CUDA toolkit (nvcc + libcudart) found; set CUDA_HOME to build the CUDA kernels. "
            "Building the CPU kernels only.")
        return None
    # cpp_extension reads CUDA_HOME when it is imported, so set it first.
    os.environ["CUDA_HOME"] = toolkit
    os.environ["PATH"] = f"{toolkit}/bin{os.pathsep}{os.environ.get('PATH', '')}"
    if not os.environ.get("TORCH_CUDA_ARCH_LIST"):  # set explicitly, so the build info records it
        visible = sorted({"%d.%d" % torch.cuda.get_device_capability(i)
                          for i in range(torch.cuda.device_count())})
        os.environ["TORCH_CUDA_ARCH_LIST"] = ";".join(visible) or DEFAULT_CUDA_ARCHS
    log(f"building CUDA kernels with the toolkit in {toolkit} for architectures "
        f"{os.environ['TORCH_CUDA_ARCH_LIST']}.")
    return toolkit


def cpu_vectors(torch) -> str:
    """The widest SIMD this build machine has, as torch sees it: AVX512, AVX2 or generic.

    INTERESTEVO_CPU_VECTORS=avx2|generic caps it (e.g. to build for older CPUs than this one)."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return "generic"
    wanted = os.environ.get("INTERESTEVO_CPU_VECTORS", "").upper()
    available = torch.backends.cpu.get_cpu_capability()
    order = ["generic", "AVX2", "AVX512"]
    best = available if available in order else "generic"
    if wanted in ("GENERIC", "AVX2", "AVX512"):
        requested = {"GENERIC": "generic", "AVX2": "AVX2", "AVX512": "AVX512"}[wanted]
        best = order[min(order.index(best), order.index(requested))]
    return best


VECTOR_FLAGS = {
    "generic": [],
    "AVX2": ["-mavx2", "-mfma", "-DINTERESTEVO_AVX2"],
    "AVX512": ["-mavx2", "-mfma", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq",
               "-DINTERESTEVO_AVX512"],
}


def write_build_info(torch, with_cuda: bool, vectors: str) -> None:
    """Records what the extension was built for; ops.py checks it before loading the library."""
    archs = os.environ.get("TORCH_CUDA_ARCH_LIST", "") if with_cuda else ""
    text = (
        '"""Written by setup.py at build time: what interestevo._C was compiled for."""\n'
        f"TORCH_VERSION = {torch.__version__!r}\n"
        f"CUDA_VERSION = {torch.version.cuda if with_cuda else None!r}\n"
        f"WITH_CUDA = {with_cuda!r}\n"
        f"CUDA_ARCH_LIST = {archs!r}\n"
        f"CPU_VECTORS = {vectors!r}\n"
    )
    target = ROOT / "interestevo" / "_build_info.py"
    tmp = target.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, target)


def extension_modules():
    import torch

    toolkit = configure_cuda(torch)
    from torch.utils.cpp_extension import CppExtension, CUDAExtension

    vectors = cpu_vectors(torch)
    log(f"CPU kernels use {vectors} vectors.")
    cxx_flags = ["-O3", "-fvisibility=hidden", "-fopenmp"] + VECTOR_FLAGS[vectors]
    # emulated_cuda.cpp: the CUDA kernels' code run on the CPU, for the tests (built on every build)
    sources = ["csrc/ops.cpp", "csrc/time_lstm.cpp", "csrc/cpu/pointwise_cpu.cpp", "csrc/cpu/gemm_cpu.cpp",
               "csrc/cpu/emulated_cuda.cpp"]
    write_build_info(torch, toolkit is not None, vectors)
    if toolkit is None:
        return [CppExtension("interestevo._C", sources, extra_compile_args={"cxx": cxx_flags},
                             extra_link_args=["-fopenmp"])]
    return [CUDAExtension(
        "interestevo._C",
        sources + ["csrc/cuda/time_lstm_cuda.cu"],
        extra_compile_args={"cxx": cxx_flags, "nvcc": ["-O3", "--expt-relaxed-constexpr", "--threads", "2"]},
        extra_link_args=["-fopenmp"],
    )]


def build_ext_class():
    from torch.utils.cpp_extension import BuildExtension

    return BuildExtension.with_options(use_ninja=True)


setup(ext_modules=extension_modules(), cmdclass={"build_ext": build_ext_class()})
