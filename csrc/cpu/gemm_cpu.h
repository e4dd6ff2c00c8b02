// The CPU backend's matrix products and the library that computes them.
//
// libtorch_cpu carries two: MKL (sgemm_, and at::mm's choice for float32) and oneDNN. The
// per-step products (cpu_gemm) go to oneDNN's brgemm micro-kernel for float32 on CPUs with
// AVX-512 (on Intel only while a layer's recurrent weights fit the core's L2), to MKL otherwise.
// For the large products over all steps (cpu_matmul), MKL's threaded kernels run a third slower
// than oneDNN's on AMD CPUs, while on Intel MKL is the faster (both measured): "auto" takes oneDNN
// for float32 on AMD CPUs, MKL otherwise. "mkl" turns oneDNN off for both.
#pragma once

#include "../time_lstm.h"

#include <string>

namespace interestevo {

enum class CpuGemmLibrary { kAuto, kMkl, kOneDnn };

// The library in use; INTERESTEVO_CPU_GEMM (auto, mkl, onednn) gives the first value.
CpuGemmLibrary cpu_gemm_library();
void set_cpu_gemm_library(CpuGemmLibrary library);
CpuGemmLibrary parse_cpu_gemm_library(const std::string& name);
std::string cpu_gemm_library_name(CpuGemmLibrary library);

void cpu_gemm(const GemmCall& call, const at::TensorOptions& options);
// Whether cpu_gemm takes oneDNN's brgemm for the products of a layer of this hidden size.
bool cpu_gemm_is_micro_kernel(at::ScalarType dtype, int64_t hidden);
bool cpu_projects_inputs_per_step(at::ScalarType dtype, int64_t batch, int64_t input_size,
                                  int64_t hidden);
at::Tensor cpu_matmul(const at::Tensor& a, const at::Tensor& b);

}  // namespace interestevo
