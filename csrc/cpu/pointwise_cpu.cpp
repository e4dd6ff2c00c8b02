// The CPU backend: each step loops over batch rows (in parallel) and over hidden units in SIMD
// vectors, calling the shared cell math in cell.h.
//
// ATen's vector types are selected by CPU_CAPABILITY; setup.py compiles this extension for the
// widest SIMD of the build machine (AVX512 or AVX2 on x86-64; ops.py refuses to load it on a CPU
// without that) and generic vectors elsewhere.
#if defined(INTERESTEVO_AVX512)
#define CPU_CAPABILITY AVX512
#define CPU_CAPABILITY_AVX512
#elif defined(INTERESTEVO_AVX2)
#define CPU_CAPABILITY AVX2
#define CPU_CAPABILITY_AVX2
#else
#define CPU_CAPABILITY DEFAULT
#endif
#include <ATen/cpu/vec/vec.h>

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstring>

namespace interestevo {

// exp_u20 (within 20 ulp) is markedly faster than exp, and tanh through it faster than Sleef's
// tanh; the results stay within the tolerances the tests hold the op to against the reference.
// exp_u20 clamps its argument, which would turn NaN into a number: NaN is passed through instead.
template <typename T>
inline at::vec::Vectorized<T> ie_exp(const at::vec::Vectorized<T>& x) {
  return at::vec::Vectorized<T>::blendv(x.exp_u20(), x, x.isnan());
}
template <typename T>
inline at::vec::Vectorized<T> ie_tanh(const at::vec::Vectorized<T>& x) {
  using Vec = at::vec::Vectorized<T>;
  return Vec(1) - Vec(2) / (ie_exp(x + x) + Vec(1));  // ie_exp: tanh(NaN) is NaN, not 1
}
template <typename T>
inline at::vec::Vectorized<T> ie_log1p(const at::vec::Vectorized<T>& x) { return x.log1p(); }

}  // namespace interestevo

#include "../cell.h"
#include "../dispatch.h"
#include "../time_lstm.h"
#include "gemm_cpu.h"

namespace interestevo {
namespace {

// Rows per parallel chunk: enough units that a thread's start-up cost is amortised.
int64_t grain_rows(int64_t hidden) { return std::max<int64_t>(1, 4096 / std::max<int64_t>(hidden, 1)); }

template <typename scalar_t>
at::vec::Vectorized<scalar_t> load_or_zero(const scalar_t* data, int64_t offset, int n) {
  return data ? at::vec::Vectorized<scalar_t>::loadu(data + offset, n) : at::vec::Vectorized<scalar_t>(0);
}

bool row_finished(const int64_t* lengths, int64_t row, int64_t step) {
  return lengths != nullptr && step >= lengths[row];
}

template <typename scalar_t, int DECAY, bool DECOMP>
void forward_rows(const StepForward& st, int64_t begin, int64_t end) {
  using Vec = at::vec::Vectorized<scalar_t>;
  const int64_t H = st.hidden;
  const auto* dt = static_cast<const scalar_t*>(st.dt);
  const auto* rate = static_cast<const scalar_t*>(st.rate);
  const auto* bias = static_cast<const scalar_t*>(st.bias);
  const auto* bias_decomp = static_cast<const scalar_t*>(st.bias_decomp);
  for (int64_t b = begin; b < end; ++b) {
    auto* gates = static_cast<scalar_t*>(st.gates) + b * 4 * H;
    const auto* c_prev = static_cast<const scalar_t*>(st.c_prev) + b * H;
    const auto* h_prev = static_cast<const scalar_t*>(st.h_prev) + b * H;
    auto* c = static_cast<scalar_t*>(st.c) + b * H;
    auto* h = static_cast<scalar_t*>(st.h) + b * H;
    auto* output = static_cast<scalar_t*>(st.output) + b * H;
    if (row_finished(st.lengths, b, st.step)) {  // padding step: the state passes through
      std::memcpy(c, c_prev, H * sizeof(scalar_t));
      std::memcpy(h, h_prev, H * sizeof(scalar_t));
      std::memset(output, 0, H * sizeof(scalar_t));
      // saved activations are outputs of the op too: keep them deterministic
      std::memset(gates, 0, 4 * H * sizeof(scalar_t));
      if (DECOMP) std::memset(static_cast<scalar_t*>(st.s) + b * H, 0, H * sizeof(scalar_t));
      continue;
    }
    const Vec dt_b(dt[b]);
    for (int64_t j = 0; j < H; j += Vec::size()) {
      const int n = static_cast<int>(std::min<int64_t>(Vec::size(), H - j));
      const Vec s_pre = DECOMP ? Vec::loadu(static_cast<const scalar_t*>(st.s_pre) + b * H + j, n) +
                                     load_or_zero(bias_decomp, j, n)
                               : Vec(0);
      const Vec rate_j = DECAY == kDecayExp ? Vec::loadu(rate + j, n) : Vec(0);
      const auto r = cell_forward<DECAY, DECOMP>(
          Vec::loadu(gates + j, n) + load_or_zero(bias, j, n),
          Vec::loadu(gates + H + j, n) + load_or_zero(bias, H + j, n),
          Vec::loadu(gates + 2 * H + j, n) + load_or_zero(bias, 2 * H + j, n),
          Vec::loadu(gates + 3 * H + j, n) + load_or_zero(bias, 3 * H + j, n), s_pre,
          Vec::loadu(c_prev + j, n), dt_b, rate_j);
      r.i.store(gates + j, n);
      r.f.store(gates + H + j, n);
      r.u.store(gates + 2 * H + j, n);
      r.o.store(gates + 3 * H + j, n);
      if (DECOMP) r.s.store(static_cast<scalar_t*>(st.s) + b * H + j, n);
      r.c.store(c + j, n);
      r.h.store(h + j, n);
      r.h.store(output + j, n);
    }
  }
}

template <typename scalar_t, int DECAY, bool DECOMP>
void backward_rows(const StepBackward& st, int64_t begin, int64_t end) {
  using Vec = at::vec::Vectorized<scalar_t>;
  const int64_t H = st.hidden;
  const auto* dt = static_cast<const scalar_t*>(st.dt);
  const auto* rate = static_cast<const scalar_t*>(st.rate);
  for (int64_t b = begin; b < end; ++b) {
    const auto* dh = static_cast<const scalar_t*>(st.dh) + b * H;
    const auto* dc = static_cast<const scalar_t*>(st.dc) + b * H;
    auto* dz = static_cast<scalar_t*>(st.dz) + b * 4 * H;
    auto* dh_prev = static_cast<scalar_t*>(st.dh_prev) + b * H;
    auto* dc_prev = static_cast<scalar_t*>(st.dc_prev) + b * H;
    auto* ds_pre = DECOMP ? static_cast<scalar_t*>(st.ds_pre) + b * H : nullptr;
    if (row_finished(st.lengths, b, st.step)) {  // identity step: gradients pass straight through
      std::memcpy(dh_prev, dh, H * sizeof(scalar_t));
      std::memcpy(dc_prev, dc, H * sizeof(scalar_t));
      std::memset(dz, 0, 4 * H * sizeof(scalar_t));
      if (DECOMP) std::memset(ds_pre, 0, H * sizeof(scalar_t));
      continue;
    }
    const auto* grad_output = static_cast<const scalar_t*>(st.grad_output) + b * H;
    const auto* gates = static_cast<const scalar_t*>(st.gates) + b * 4 * H;
    const auto* c = static_cast<const scalar_t*>(st.c) + b * H;
    const auto* c_prev = static_cast<const scalar_t*>(st.c_prev) + b * H;
    const Vec dt_b(dt[b]);
    for (int64_t j = 0; j < H; j += Vec::size()) {
      const int n = static_cast<int>(std::min<int64_t>(Vec::size(), H - j));
      const Vec s = DECOMP ? Vec::loadu(static_cast<const scalar_t*>(st.s) + b * H + j, n) : Vec(0);
      const Vec rate_j = DECAY == kDecayExp ? Vec::loadu(rate + j, n) : Vec(0);
      const auto g = cell_backward<DECAY, DECOMP>(
          Vec::loadu(dh + j, n) + Vec::loadu(grad_output + j, n), Vec::loadu(dc + j, n),
          Vec::loadu(gates + j, n), Vec::loadu(gates + H + j, n), Vec::loadu(gates + 2 * H + j, n),
          Vec::loadu(gates + 3 * H + j, n), s, Vec::loadu(c + j, n), Vec::loadu(c_prev + j, n),
          dt_b, rate_j);
      g.dzi.store(dz + j, n);
      g.dzf.store(dz + H + j, n);
      g.dzu.store(dz + 2 * H + j, n);
      g.dzo.store(dz + 3 * H + j, n);
      if (DECOMP) g.ds_pre.store(ds_pre + j, n);
      Vec(0).store(dh_prev + j, n);
      g.dc_prev.store(dc_prev + j, n);
      if (DECAY == kDecayExp) {
        auto* drate = static_cast<scalar_t*>(st.drate) + b * H + j;
        (Vec::loadu(drate, n) + g.drate).store(drate, n);
      }
    }
  }
}

void check_cpu_dtype(const CellKind& kind) {
  TORCH_CHECK_NOT_IMPLEMENTED(kind.dtype == at::kFloat || kind.dtype == at::kDouble,
                              "time_lstm: the CPU kernels take float32 or float64, got ", kind.dtype,
                              "; float16 and bfloat16 run on CUDA");
}

void cpu_forward_step(const StepForward& st, const CellKind& kind) {
  check_cpu_dtype(kind);
  AT_DISPATCH_FLOATING_TYPES(kind.dtype, "time_lstm_forward_cpu", [&] {
    dispatch_cell_mode(kind.decay, kind.decomposition, [&](auto decay, auto decomp) {
      at::parallel_for(0, st.batch, grain_rows(st.hidden), [&](int64_t begin, int64_t end) {
        forward_rows<scalar_t, decltype(decay)::value, decltype(decomp)::value>(st, begin, end);
      });
    });
  });
}

void cpu_backward_step(const StepBackward& st, const CellKind& kind) {
  check_cpu_dtype(kind);
  AT_DISPATCH_FLOATING_TYPES(kind.dtype, "time_lstm_backward_cpu", [&] {
    dispatch_cell_mode(kind.decay, kind.decomposition, [&](auto decay, auto decomp) {
      at::parallel_for(0, st.batch, grain_rows(st.hidden), [&](int64_t begin, int64_t end) {
        backward_rows<scalar_t, decltype(decay)::value, decltype(decomp)::value>(st, begin, end);
      });
    });
  });
}

// Each thread takes one block of batch rows through every step: no barrier per step, and each
// thread's per-step GEMMs run single-threaded, where MKL is at the CPU's peak from 16 rows and
// oneDNN's micro-kernel from 4 (B=8, H=64 on 2 threads: forward 0.27 -> 0.18 ms, AMD EPYC Zen 5).
// Smaller batches go through the steps as one block.
void cpu_row_blocks(int64_t rows, at::ScalarType dtype, int64_t hidden, RowBlockFn fn) {
  const int64_t min_rows_per_thread = cpu_gemm_is_micro_kernel(dtype, hidden) ? 4 : 16;
  const int64_t threads = at::get_num_threads();
  if (threads < 2 || rows < 2 * min_rows_per_thread || at::in_parallel_region()) return fn(0, rows);
  const int64_t per_thread = std::max(min_rows_per_thread, (rows + threads - 1) / threads);
  at::parallel_for(0, rows, per_thread, [&](int64_t begin, int64_t end) { fn(begin, end); });
}

}  // namespace

const PointwiseBackend& cpu_backend() {
  static const PointwiseBackend backend{cpu_forward_step, cpu_backward_step, cpu_gemm, cpu_matmul,
                                        cpu_row_blocks, cpu_projects_inputs_per_step};
  return backend;
}

}  // namespace interestevo
