// The CUDA kernels' bodies: one (batch row, hidden unit) of a forward or backward step, written
// once for the device and the host. csrc/cuda/time_lstm_cuda.cu launches them one thread per unit;
// csrc/cpu/emulated_cuda.cpp runs the very same functions on the CPU by looping over the CUDA grid,
// so CI tests the CUDA kernels' code (float16/bfloat16 storage included) without a GPU.
//
// Storage is scalar_t (float64, float32, float16, bfloat16); the math is at::opmath_type<scalar_t>
// (float32 for the half types). Δt and the decay rates are always in the math type.
#pragma once

#include <ATen/OpMathType.h>
#include <c10/macros/Macros.h>

#include "cell.h"
#include "time_lstm.h"

namespace interestevo {

constexpr int kThreadsPerBlock = 256;

inline int64_t blocks_for(int64_t units) {
  return (units + kThreadsPerBlock - 1) / kThreadsPerBlock;
}

// The unit a thread works on, from the CUDA grid coordinates.
C10_HOST_DEVICE inline int64_t grid_unit(int64_t block, int64_t block_size, int64_t thread) {
  return block * block_size + thread;
}

C10_HOST_DEVICE inline bool row_is_finished(const int64_t* lengths, int64_t row, int64_t step) {
  return lengths != nullptr && step >= lengths[row];
}

template <typename scalar_t, int DECAY, bool DECOMP>
C10_HOST_DEVICE inline void forward_unit(const StepForward& st, int64_t unit) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t H = st.hidden;
  if (unit >= st.batch * H) return;
  const int64_t b = unit / H, j = unit % H;
  auto* gates = static_cast<scalar_t*>(st.gates) + b * 4 * H + j;
  const scalar_t c_prev = static_cast<const scalar_t*>(st.c_prev)[unit];
  if (row_is_finished(st.lengths, b, st.step)) {  // padding step: the state passes through
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
  acc_t z[4];
  for (int gate = 0; gate < 4; ++gate) {
    z[gate] = acc_t(gates[gate * H]) + (bias ? acc_t(bias[gate * H + j]) : acc_t(0));
  }
  const acc_t rate = DECAY == kDecayExp ? static_cast<const acc_t*>(st.rate)[j] : acc_t(0);
  const acc_t dt = static_cast<const acc_t*>(st.dt)[b];
  const auto r = cell_forward<DECAY, DECOMP, acc_t>(z[0], z[1], z[2], z[3], s_pre, acc_t(c_prev),
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
C10_HOST_DEVICE inline void backward_unit(const StepBackward& st, int64_t unit) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t H = st.hidden;
  if (unit >= st.batch * H) return;
  const int64_t b = unit / H, j = unit % H;
  auto* dz = static_cast<scalar_t*>(st.dz) + b * 4 * H + j;
  const scalar_t dh = static_cast<const scalar_t*>(st.dh)[unit];
  const scalar_t dc = static_cast<const scalar_t*>(st.dc)[unit];
  if (row_is_finished(st.lengths, b, st.step)) {  // identity step: gradients pass straight through
    static_cast<scalar_t*>(st.dh_prev)[unit] = dh;
    static_cast<scalar_t*>(st.dc_prev)[unit] = dc;
    dz[0] = dz[H] = dz[2 * H] = dz[3 * H] = scalar_t(0);
    if (DECOMP) static_cast<scalar_t*>(st.ds_pre)[unit] = scalar_t(0);
    return;
  }
  const auto* gates = static_cast<const scalar_t*>(st.gates) + b * 4 * H + j;
  const acc_t s = DECOMP ? acc_t(static_cast<const scalar_t*>(st.s)[unit]) : acc_t(0);
  const acc_t rate = DECAY == kDecayExp ? static_cast<const acc_t*>(st.rate)[j] : acc_t(0);
  const acc_t dt = static_cast<const acc_t*>(st.dt)[b];
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

}  // namespace interestevo
