// The CUDA backend: one thread per (batch row, hidden unit) runs the shared cell math of cell.h in
// float32 (float64 for double); storage may be float16/bfloat16. Launches go on the current stream
// and nothing here synchronises with the host. The driver and its GEMMs are shared with the CPU.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAException.h>
#include <torch/library.h>

#include "../cell.h"
#include "../dispatch.h"
#include "../time_lstm.h"

namespace interestevo {
namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ bool row_finished(const int64_t* lengths, int64_t row, int64_t step) {
  return lengths != nullptr && step >= lengths[row];
}

template <typename scalar_t, int DECAY, bool DECOMP>
__global__ void forward_kernel(StepForward st) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t H = st.hidden;
  const int64_t unit = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (unit >= st.batch * H) return;
  const int64_t b = unit / H, j = unit % H;
  auto* gates = static_cast<scalar_t*>(st.gates) + b * 4 * H + j;
  const scalar_t c_prev = static_cast<const scalar_t*>(st.c_prev)[unit];
  if (row_finished(st.lengths, b, st.step)) {
    static_cast<scalar_t*>(st.c)[unit] = c_prev;
    static_cast<scalar_t*>(st.h)[unit] = static_cast<const scalar_t*>(st.h_prev)[unit];
    static_cast<scalar_t*>(st.output)[unit] = scalar_t(0);
    gates[0] = gates[H] = gates[2 * H] = gates[3 * H] = scalar_t(0);  // deterministic saved outputs
    if (DECOMP) static_cast<scalar_t*>(st.s)[unit] = scalar_t(0);
    return;
  }
  const auto* bias = static_cast<const scalar_t*>(st.bias);
  const auto* bias_decomp = static_cast<const scalar_t*>(st.bias_decomp);
  const acc_t s_pre = DECOMP ? acc_t(static_cast<const scalar_t*>(st.s_pre)[unit]) +
                                   (bias_decomp ? acc_t(bias_decomp[j]) : acc_t(0))
                             : acc_t(0);
  const auto z = [&](int gate) {
    return acc_t(gates[gate * H]) + (bias ? acc_t(bias[gate * H + j]) : acc_t(0));
  };
  const acc_t rate = DECAY == kDecayExp ? static_cast<const acc_t*>(st.rate)[j] : acc_t(0);
  const acc_t dt = static_cast<const scalar_t*>(st.dt)[b];
  const auto r = cell_forward<DECAY, DECOMP, acc_t>(z(0), z(1), z(2), z(3), s_pre, acc_t(c_prev),
                                                    dt, rate);
  gates[0] = r.i;
  gates[H] = r.f;
  gates[2 * H] = r.u;
  gates[3 * H] = r.o;
  if (DECOMP) static_cast<scalar_t*>(st.s)[unit] = r.s;
  static_cast<scalar_t*>(st.c)[unit] = r.c;
  static_cast<scalar_t*>(st.h)[unit] = r.h;
  static_cast<scalar_t*>(st.output)[unit] = r.h;
}

template <typename scalar_t, int DECAY, bool DECOMP>
__global__ void backward_kernel(StepBackward st) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t H = st.hidden;
  const int64_t unit = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (unit >= st.batch * H) return;
  const int64_t b = unit / H, j = unit % H;
  auto* dz = static_cast<scalar_t*>(st.dz) + b * 4 * H + j;
  const scalar_t dh = static_cast<const scalar_t*>(st.dh)[unit];
  const scalar_t dc = static_cast<const scalar_t*>(st.dc)[unit];
  if (row_finished(st.lengths, b, st.step)) {
    static_cast<scalar_t*>(st.dh_prev)[unit] = dh;
    static_cast<scalar_t*>(st.dc_prev)[unit] = dc;
    dz[0] = dz[H] = dz[2 * H] = dz[3 * H] = scalar_t(0);
    if (DECOMP) static_cast<scalar_t*>(st.ds_pre)[unit] = scalar_t(0);
    return;
  }
  const auto* gates = static_cast<const scalar_t*>(st.gates) + b * 4 * H + j;
  const acc_t s = DECOMP ? acc_t(static_cast<const scalar_t*>(st.s)[unit]) : acc_t(0);
  const acc_t rate = DECAY == kDecayExp ? static_cast<const acc_t*>(st.rate)[j] : acc_t(0);
  const acc_t dt = static_cast<const scalar_t*>(st.dt)[b];
  const acc_t dh_total = acc_t(dh) + acc_t(static_cast<const scalar_t*>(st.grad_output)[unit]);
  const auto g = cell_backward<DECAY, DECOMP, acc_t>(
      dh_total, acc_t(dc), acc_t(gates[0]), acc_t(gates[H]), acc_t(gates[2 * H]),
      acc_t(gates[3 * H]), s, acc_t(static_cast<const scalar_t*>(st.c)[unit]),
      acc_t(static_cast<const scalar_t*>(st.c_prev)[unit]), dt, rate);
  dz[0] = g.dzi;
  dz[H] = g.dzf;
  dz[2 * H] = g.dzu;
  dz[3 * H] = g.dzo;
  if (DECOMP) static_cast<scalar_t*>(st.ds_pre)[unit] = g.ds_pre;
  static_cast<scalar_t*>(st.dh_prev)[unit] = scalar_t(0);
  static_cast<scalar_t*>(st.dc_prev)[unit] = g.dc_prev;
  if (DECAY == kDecayExp) static_cast<acc_t*>(st.drate)[unit] += g.drate;
}

int64_t blocks_for(int64_t units) { return (units + kThreads - 1) / kThreads; }

void cuda_forward_step(const StepForward& st, const CellKind& kind) {
  const int64_t units = st.batch * st.hidden;
  if (units == 0) return;
  auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, kind.dtype, "time_lstm_forward_cuda", [&] {
    dispatch_cell_mode(kind.decay, kind.decomposition, [&](auto decay, auto decomp) {
      forward_kernel<scalar_t, decltype(decay)::value, decltype(decomp)::value>
          <<<blocks_for(units), kThreads, 0, stream>>>(st);
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
          <<<blocks_for(units), kThreads, 0, stream>>>(st);
    });
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

const PointwiseBackend& cuda_backend() {
  static const PointwiseBackend backend{cuda_forward_step, cuda_backward_step, aten_gemm};
  return backend;
}

}  // namespace

TORCH_LIBRARY_IMPL(interestevo, CUDA, m) {
  m.impl("time_lstm_forward", &BoundOps<cuda_backend>::forward);
  m.impl("time_lstm_inference", &BoundOps<cuda_backend>::inference);
  m.impl("time_lstm_backward", &BoundOps<cuda_backend>::backward);
}

}  // namespace interestevo
