// The CPU backend's matrix products: MKL or oneDNN, whichever is faster on this CPU (gemm_cpu.h).
#include "gemm_cpu.h"

#include <ATen/Config.h>
#include <ATen/Context.h>
#include <c10/util/Exception.h>

#include <atomic>
#include <cstdlib>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

// The Fortran BLAS that libtorch_cpu carries (MKL on x86-64), called directly for the small
// per-step products, which each thread runs single-threaded on its block of rows: there MKL is
// at the CPU's peak on AMD too (measured). Weak, so a torch without it falls back to ATen.
extern "C" {
void sgemm_(const char*, const char*, const int*, const int*, const int*, const float*,
            const float*, const int*, const float*, const int*, const float*, float*,
            const int*) __attribute__((weak));
void dgemm_(const char*, const char*, const int*, const int*, const int*, const double*,
            const double*, const int*, const double*, const int*, const double*, double*,
            const int*) __attribute__((weak));
}

// oneDNN's matmul as ATen exports it: result = beta * result + alpha * mat1 @ mat2, on strided
// dense tensors (no copies for row-major or transposed operands). Weak: absent from a torch
// built without oneDNN.
namespace at::native {
TORCH_API void mkldnn_matmul(const at::Tensor& mat1, const at::Tensor& mat2,
                             const at::Tensor& result, float beta, float alpha)
    __attribute__((weak));
}

// oneDNN's batch-reduce GEMM micro-kernel as ATen exports it (float32: C (+)= A B, row-major, no
// transposes; ATen falls back to its BLAS where oneDNN's ukernel cannot run). Its kernels are
// JIT-compiled once per shape and cached per thread, so each call costs well under a microsecond:
// the right tool for the small per-step products. Weak: absent from older torch builds.
namespace at::native::cpublas {
TORCH_API void brgemm(int64_t m, int64_t n, int64_t k, int64_t ld_a, int64_t ld_b, int64_t ld_c,
                      bool add_c, const float* a, const float* b, float* c, bool is_vnni)
    __attribute__((weak));
}

namespace interestevo {
namespace {

// Products of a small batch (B=8, H=64: 6.5M multiply-adds) gained nothing measurable from
// oneDNN, whose per-call set-up is about 15 us; those of B=128, H=128 (420M) run a third faster.
constexpr int64_t kOneDnnMinMultiplyAdds = int64_t{1} << 24;

CpuGemmLibrary library_from_environment() {
  const char* value = std::getenv("INTERESTEVO_CPU_GEMM");
  return value == nullptr || *value == '\0' ? CpuGemmLibrary::kAuto
                                            : parse_cpu_gemm_library(value);
}

std::atomic<CpuGemmLibrary>& library_setting() {
  static std::atomic<CpuGemmLibrary> setting{library_from_environment()};
  return setting;
}

// ATen's mkldnn_matmul refuses CPUs without AVX-512 BW/VL/DQ (AVX2-only ones such as AMD Zen 2
// and 3), float32 included.
bool cpu_runs_onednn_matmul() {
#if defined(__x86_64__) || defined(__i386__)
  static const bool supported = __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
                                __builtin_cpu_supports("avx512dq");
  return supported;
#else
  return false;
#endif
}

// torch.backends.mkldnn.flags(enabled=False) turns it off here too.
bool onednn_available() {
  return &at::native::mkldnn_matmul != nullptr && at::hasMKLDNN() &&
         at::globalContext().userEnabledMkldnn() && cpu_runs_onednn_matmul();
}

bool is_amd_cpu() {
#if defined(__x86_64__) || defined(__i386__)
  static const bool amd = [] {
    unsigned int eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (__get_cpuid(0, &eax, &ebx, &ecx, &edx) == 0) return false;
    char vendor[13] = {};
    std::memcpy(vendor, &ebx, 4);
    std::memcpy(vendor + 4, &edx, 4);
    std::memcpy(vendor + 8, &ecx, 4);
    return std::strcmp(vendor, "AuthenticAMD") == 0;
  }();
  return amd;
#else
  return false;
#endif
}

bool use_onednn(at::ScalarType dtype, int64_t m, int64_t n, int64_t k) {
  if (dtype != at::kFloat || !onednn_available()) return false;
  switch (cpu_gemm_library()) {
    case CpuGemmLibrary::kMkl: return false;
    case CpuGemmLibrary::kOneDnn: return true;
    case CpuGemmLibrary::kAuto: break;
  }
  return is_amd_cpu() && m * n * k >= kOneDnnMinMultiplyAdds;
}

// oneDNN's micro-kernel against MKL's sgemm_, single-threaded, AMD EPYC (Zen 5, AVX-512):
// 64x128 @ 128x512 240 against 97 GFLOP/s, 8x64 @ 64x256 1.6 against 5.5 us (MKL takes its AVX2
// code on AMD CPUs). Only where AVX-512 runs it.
bool brgemm_available(at::ScalarType dtype) {
  if (dtype != at::kFloat || &at::native::cpublas::brgemm == nullptr ||
      !at::globalContext().userEnabledMkldnn() || !cpu_runs_onednn_matmul()) {
    return false;
  }
  return cpu_gemm_library() != CpuGemmLibrary::kMkl;
}

// On Intel, MKL keeps its own speed and wins once a layer's recurrent weights (W_hh, W_d) outgrow
// the core's L2 (Xeon, Emerald Rapids, 2 MB L2, float32 forward, interleaved, micro-kernel against
// MKL: T=100 B=64 H=512, 5 MB, 342 against 170 ms; T=50 B=64 H=320, 2 MB, 42 against 34 ms;
// T=50 B=8 H=256, 1.25 MB, 3.9 against 4.3 ms). On AMD CPUs MKL takes its AVX2 code and is the
// slower at every size.
constexpr int64_t kIntelMicroKernelMaxWeightBytes = 5 * 256 * 256 * 4;

bool use_brgemm(at::ScalarType dtype, int64_t layer_hidden) {
  if (!brgemm_available(dtype)) return false;
  if (is_amd_cpu() || cpu_gemm_library() == CpuGemmLibrary::kOneDnn) return true;
  const int64_t recurrent_weight_bytes = 5 * layer_hidden * layer_hidden * int64_t{sizeof(float)};
  return recurrent_weight_bytes <= kIntelMicroKernelMaxWeightBytes;
}

// Row-major C = A B is column-major C^T = B^T A^T: BLAS gets B first.
template <typename scalar_t, typename Fn>
void blas_gemm(Fn* fn, const GemmCall& g) {
  const char no_trans = 'N';
  const int m = static_cast<int>(g.n), n = static_cast<int>(g.m), k = static_cast<int>(g.k);
  const int ldb = static_cast<int>(g.ldb), lda = static_cast<int>(g.lda), ldc = static_cast<int>(g.ldc);
  const scalar_t alpha = 1, beta = static_cast<scalar_t>(g.beta);
  fn(&no_trans, &no_trans, &m, &n, &k, &alpha, static_cast<const scalar_t*>(g.b), &ldb,
     static_cast<const scalar_t*>(g.a), &lda, &beta, static_cast<scalar_t*>(g.c), &ldc);
}

}  // namespace

CpuGemmLibrary parse_cpu_gemm_library(const std::string& name) {
  if (name == "auto") return CpuGemmLibrary::kAuto;
  if (name == "mkl") return CpuGemmLibrary::kMkl;
  if (name == "onednn") return CpuGemmLibrary::kOneDnn;
  TORCH_CHECK_VALUE(false, "interestevo: the CPU GEMM library (INTERESTEVO_CPU_GEMM) must be ",
                    "'auto', 'mkl' or 'onednn', got '", name, "'");
}

std::string cpu_gemm_library_name(CpuGemmLibrary library) {
  switch (library) {
    case CpuGemmLibrary::kMkl: return "mkl";
    case CpuGemmLibrary::kOneDnn: return "onednn";
    case CpuGemmLibrary::kAuto: break;
  }
  return "auto";
}

CpuGemmLibrary cpu_gemm_library() { return library_setting().load(std::memory_order_relaxed); }

void set_cpu_gemm_library(CpuGemmLibrary library) { library_setting().store(library); }

void cpu_gemm(const GemmCall& g, const at::TensorOptions& options) {
  if (g.m == 0 || g.n == 0) return;
  const auto dtype = options.dtype().toScalarType();
  if (use_brgemm(dtype, g.layer_hidden)) {
    at::native::cpublas::brgemm(g.m, g.n, g.k, g.lda, g.ldb, g.ldc, g.beta != 0.0,
                                static_cast<const float*>(g.a), static_cast<const float*>(g.b),
                                static_cast<float*>(g.c), false);
    return;
  }
  if (dtype == at::kFloat && sgemm_ != nullptr) return blas_gemm<float>(sgemm_, g);
  if (dtype == at::kDouble && dgemm_ != nullptr) return blas_gemm<double>(dgemm_, g);
  aten_gemm(g, options);
}

bool cpu_gemm_is_micro_kernel(at::ScalarType dtype, int64_t hidden) {
  return use_brgemm(dtype, hidden);
}

// oneDNN's micro-kernel on a thread's rows is at the core's peak, as the large threaded product is,
// when enough rows share each weight read and the weights stay in the core's cache (AMD EPYC Zen 5,
// inference against one input GEMM: B=8, H=64 0.85 against 0.96 of nn.LSTM's time; B=1, H=128
// 1.98 against 1.39; B=8, H=256, 2.4 MB of weights, 1.9 against 1.55), or, on AMD CPUs, when the
// batch is large. Not so on Intel, where the large product is MKL's (Xeon, T=50 H=256, 2.4 MB:
// B=64 24.8 against 21.4 ms forward; H=128, 0.6 MB: B=256 21.7 against 24.0 ms).
bool cpu_projects_inputs_per_step(at::ScalarType dtype, int64_t batch, int64_t input_size,
                                  int64_t hidden) {
  constexpr int64_t kCachedWeightBytes = 1024 * 1024, kMinRows = 8, kRowsSharingWeights = 64;
  const int64_t weight_bytes = (4 * hidden * (input_size + hidden) + hidden * hidden) * 4;
  const bool weights_in_cache = batch >= kMinRows && weight_bytes <= kCachedWeightBytes;
  const bool rows_share_weights = batch >= kRowsSharingWeights && is_amd_cpu();
  return use_brgemm(dtype, hidden) && (weights_in_cache || rows_share_weights);
}

at::Tensor cpu_matmul(const at::Tensor& a, const at::Tensor& b) {
  if (a.numel() == 0 || b.numel() == 0 ||
      !use_onednn(a.scalar_type(), a.size(0), b.size(1), a.size(1))) {
    return at::mm(a, b);
  }
  at::Tensor result = at::empty({a.size(0), b.size(1)}, a.options());
  at::native::mkldnn_matmul(a, b, result, 0.0f, 1.0f);
  return result;
}

}  // namespace interestevo
