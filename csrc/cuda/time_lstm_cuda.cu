// The CUDA backend: index arithmetic and launches only. Each kernel is one thread per (batch row,
// hidden unit) running a per-unit function of step_units.h, which the CPU also runs (emulated_cuda.cpp)
// so that the kernels' code is tested without a GPU. Launches go on the current stream and nothing
// here synchronises with the host. The driver and its GEMMs are shared with the CPU.
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAException.h>
#include <torch/library.h>

#include "../dispatch.h"
#include "../step_units.h"
#include "../time_lstm.h"

namespace interestevo {
namespace {

template <typename scalar_t, int DECAY, bool DECOMP>
__global__ void forward_kernel(StepForward st) {
  forward_unit<scalar_t, DECAY, DECOMP>(st, grid_unit(blockIdx.x, blockDim.x, threadIdx.x));
}

template <typename scalar_t, int DECAY, bool DECOMP>
__global__ void backward_kernel(StepBackward st) {
  backward_unit<scalar_t, DECAY, DECOMP>(st, grid_unit(blockIdx.x, blockDim.x, threadIdx.x));
}

void cuda_forward_step(const StepForward& st, const CellKind& kind) {
  const int64_t units = st.batch * st.hidden;
  if (units == 0) return;
  auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, kind.dtype, "time_lstm_forward_cuda", [&] {
    dispatch_cell_mode(kind.decay, kind.decomposition, [&](auto decay, auto decomp) {
      forward_kernel<scalar_t, decltype(decay)::value, decltype(decomp)::value>
          <<<blocks_for(units), kThreadsPerBlock, 0, stream>>>(st);
    });
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

void cuda_backward_step(const StepBackward& st, const CellKind& kind) {
  const int64_t units = st.batch * st.hidden;
  if (units == 0) return;
  auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, kind.dtype, "time_lstm_backward_cuda", [&] {
    dispatch_cell_mode(kind.decay, kind.decomposition, [&](auto decay, auto decomp) {
      backward_kernel<scalar_t, decltype(decay)::value, decltype(decomp)::value>
          <<<blocks_for(units), kThreadsPerBlock, 0, stream>>>(st);
    });
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

const PointwiseBackend& cuda_backend() {
  static const PointwiseBackend backend{cuda_forward_step, cuda_backward_step, aten_gemm, aten_matmul,
                                        whole_batch, nullptr};
  return backend;
}

}  // namespace

TORCH_LIBRARY_IMPL(interestevo, CUDA, m) {
  m.impl("time_lstm_forward", &BoundOps<cuda_backend>::forward);
  m.impl("time_lstm_inference", &BoundOps<cuda_backend>::inference);
  m.impl("time_lstm_backward", &BoundOps<cuda_backend>::backward);
}

}  // namespace interestevo
