// The sequence driver and its tiny backend interface.
//
// One driver (time_lstm.cpp) runs a whole layer over time: the GEMMs are ATen calls, which dispatch
// by device, and each step's pointwise work goes through a PointwiseBackend. The CPU backend loops
// over cell.h with SIMD vectors; the CUDA backend launches one kernel over the same header.
#pragma once

#include <ATen/ATen.h>

#include <c10/util/FunctionRef.h>

#include <optional>
#include <tuple>

namespace interestevo {

// Everything that selects a pointwise kernel.
struct CellKind {
  at::ScalarType dtype;  // storage dtype of every buffer but `rate` and `drate`
  int decay;             // DecayMode
  bool decomposition;    // false whenever decay is kDecayNone (the short-term term is then inert)
};

// One forward step. All buffers are contiguous, rows are batch entries, H = hidden.
struct StepForward {
  void* gates;            // (B, 4H) in: pre-activations less the bias; out: activated i, f, u, o
  const void* bias;       // (4H,) b_ih + b_hh, or null
  const void* s_pre;      // (B, H) W_d c_prev (less b_d), or null
  const void* bias_decomp;// (H,) b_d, or null
  void* s;                // (B, H) out: tanh(s_pre), or null
  const void* c_prev;     // (B, H)
  const void* h_prev;     // (B, H)
  void* c;                // (B, H) out
  void* h;                // (B, H) out
  void* output;           // (B, H) out: h, or zeros once a row is past its length
  const void* dt;         // (B,)
  const void* rate;       // (H,) softplus(decay_rate) in the math dtype, or null
  const int64_t* lengths; // (B,) or null
  int64_t step, batch, hidden;
};

// One backward step, mirror of StepForward.
struct StepBackward {
  const void* grad_output; // (B, H) dL/d output_t
  const void* dh;          // (B, H) dL/dh_t carried from step t+1
  const void* dc;          // (B, H) dL/dc_t carried from step t+1
  const void* gates;       // (B, 4H) saved activations
  const void* s;           // (B, H) saved short-term memory, or null
  const void* c;           // (B, H) c_t
  const void* c_prev;      // (B, H) c_{t-1}
  const void* dt;
  const void* rate;
  const int64_t* lengths;
  void* dz;                // (B, 4H) out
  void* ds_pre;            // (B, H) out, or null
  void* dh_prev;           // (B, H) out: dh for rows past their length, else 0 (a GEMM adds W_hh's part)
  void* dc_prev;           // (B, H) out: direct part (a GEMM adds W_d's part)
  void* drate;             // (B, H) math dtype, accumulated over steps, or null
  int64_t step, batch, hidden;
};

// C (m x n) = beta * C + A (m x k) * B (k x n), all row-major with leading dimensions: the
// recurrent products of each step.
struct GemmCall {
  const void* a;
  int64_t lda;
  const void* b;
  int64_t ldb;
  void* c;
  int64_t ldc;
  int64_t m, n, k;
  double beta;  // 0 (overwrite) or 1 (accumulate)
  int64_t layer_hidden;  // the layer's H: the CPU picks one GEMM library for all of a layer's products
};

// Runs fn(begin, end) over batch rows [0, rows): the recurrence of one batch row never reads
// another's, so a backend may hand disjoint row blocks to threads for all T steps at once.
using RowBlockFn = c10::function_ref<void(int64_t begin, int64_t end)>;

struct PointwiseBackend {
  void (*forward_step)(const StepForward&, const CellKind&);
  void (*backward_step)(const StepBackward&, const CellKind&);
  void (*gemm)(const GemmCall&, const at::TensorOptions&);
  at::Tensor (*matmul)(const at::Tensor& a, const at::Tensor& b);  // the large products, a @ b
  void (*for_row_blocks)(int64_t rows, at::ScalarType dtype, int64_t hidden, RowBlockFn fn);
  // Whether per-step products of this shape run as fast as one large product: then each step
  // also projects its own inputs, while its rows of the gates are still in cache. May be null.
  bool (*projects_inputs_per_step)(at::ScalarType dtype, int64_t batch, int64_t input_size,
                                   int64_t hidden);
};

// One block of all rows: the GPU parallelises inside each step's kernel.
void whole_batch(int64_t rows, at::ScalarType dtype, int64_t hidden, RowBlockFn fn);

// A GemmCall through ATen on views of the raw buffers: right on every device, but each call costs
// a few microseconds of dispatch, which only matters on the CPU's small per-step products.
void aten_gemm(const GemmCall& call, const at::TensorOptions& options);
at::Tensor aten_matmul(const at::Tensor& a, const at::Tensor& b);

const PointwiseBackend& cpu_backend();

// Returns output (T,B,H), h_n, c_n and what backward needs: gates (T,B,4H), hiddens (T+1,B,H),
// cells (T+1,B,H), short_memory (T,B,H) or empty.
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>
time_lstm_forward(const PointwiseBackend& backend, const at::Tensor& input, const at::Tensor& dt,
                  const std::optional<at::Tensor>& lengths, const at::Tensor& h0,
                  const at::Tensor& c0, const at::Tensor& weight_ih, const at::Tensor& weight_hh,
                  const std::optional<at::Tensor>& bias,
                  const std::optional<at::Tensor>& weight_decomp,
                  const std::optional<at::Tensor>& bias_decomp,
                  const std::optional<at::Tensor>& decay_rate, int64_t decay_mode,
                  bool decomposition);

// The same forward without saving anything for backward: returns output, h_n, c_n.
std::tuple<at::Tensor, at::Tensor, at::Tensor> time_lstm_inference(
    const PointwiseBackend& backend, const at::Tensor& input, const at::Tensor& dt,
    const std::optional<at::Tensor>& lengths, const at::Tensor& h0, const at::Tensor& c0,
    const at::Tensor& weight_ih, const at::Tensor& weight_hh,
    const std::optional<at::Tensor>& bias, const std::optional<at::Tensor>& weight_decomp,
    const std::optional<at::Tensor>& bias_decomp, const std::optional<at::Tensor>& decay_rate,
    int64_t decay_mode, bool decomposition);

// Returns grads of input, h0, c0, weight_ih, weight_hh, bias (4H), weight_decomp, bias_decomp and
// decay_rate; the last three are empty when the layer has no such parameter.
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor,
           at::Tensor, at::Tensor>
time_lstm_backward(const PointwiseBackend& backend, const at::Tensor& grad_output,
                   const at::Tensor& grad_h_n, const at::Tensor& grad_c_n, const at::Tensor& input,
                   const at::Tensor& dt, const std::optional<at::Tensor>& lengths,
                   const at::Tensor& weight_ih, const at::Tensor& weight_hh,
                   const std::optional<at::Tensor>& weight_decomp,
                   const std::optional<at::Tensor>& decay_rate, const at::Tensor& gates,
                   const at::Tensor& hiddens, const at::Tensor& cells,
                   const at::Tensor& short_memory, int64_t decay_mode, bool decomposition);

// The driver bound to one backend, in the shape of the op schemas (see ops.cpp).
template <const PointwiseBackend& (*backend)()>
struct BoundOps {
  static auto forward(const at::Tensor& input, const at::Tensor& dt,
                      const std::optional<at::Tensor>& lengths, const at::Tensor& h0,
                      const at::Tensor& c0, const at::Tensor& weight_ih,
                      const at::Tensor& weight_hh, const std::optional<at::Tensor>& bias,
                      const std::optional<at::Tensor>& weight_decomp,
                      const std::optional<at::Tensor>& bias_decomp,
                      const std::optional<at::Tensor>& decay_rate, int64_t decay_mode,
                      bool decomposition) {
    return time_lstm_forward(backend(), input, dt, lengths, h0, c0, weight_ih, weight_hh, bias,
                             weight_decomp, bias_decomp, decay_rate, decay_mode, decomposition);
  }

  static auto inference(const at::Tensor& input, const at::Tensor& dt,
                        const std::optional<at::Tensor>& lengths, const at::Tensor& h0,
                        const at::Tensor& c0, const at::Tensor& weight_ih,
                        const at::Tensor& weight_hh, const std::optional<at::Tensor>& bias,
                        const std::optional<at::Tensor>& weight_decomp,
                        const std::optional<at::Tensor>& bias_decomp,
                        const std::optional<at::Tensor>& decay_rate, int64_t decay_mode,
                        bool decomposition) {
    return time_lstm_inference(backend(), input, dt, lengths, h0, c0, weight_ih, weight_hh, bias,
                               weight_decomp, bias_decomp, decay_rate, decay_mode, decomposition);
  }

  static auto backward(const at::Tensor& grad_output, const at::Tensor& grad_h_n,
                       const at::Tensor& grad_c_n, const at::Tensor& input, const at::Tensor& dt,
                       const std::optional<at::Tensor>& lengths, const at::Tensor& weight_ih,
                       const at::Tensor& weight_hh,
                       const std::optional<at::Tensor>& weight_decomp,
                       const std::optional<at::Tensor>& decay_rate, const at::Tensor& gates,
                       const at::Tensor& hiddens, const at::Tensor& cells,
                       const at::Tensor& short_memory, int64_t decay_mode, bool decomposition) {
    return time_lstm_backward(backend(), grad_output, grad_h_n, grad_c_n, input, dt, lengths,
                              weight_ih, weight_hh, weight_decomp, decay_rate, gates, hiddens,
                              cells, short_memory, decay_mode, decomposition);
  }
};

}  // namespace interestevo
