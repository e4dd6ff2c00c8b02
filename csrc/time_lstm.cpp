// The sequence driver: one layer over all time steps, shared by every device.
//
// Forward: one GEMM projects the inputs of all steps (or each step its own, where the backend's
// small products are as fast); per step, the recurrent GEMM(s) add into that buffer and ONE
// pointwise step turns it into activated gates and the new state.
// Backward: per step one pointwise step and the recurrent GEMM(s); the weight and input gradients
// are a few large GEMMs over all steps after the loop.
#include "time_lstm.h"

#include "cell.h"

#include <ATen/OpMathType.h>
#include <c10/core/DeviceGuard.h>
#include <c10/core/impl/LocalDispatchKeySet.h>

namespace interestevo {
namespace {

using at::Tensor;

bool uses_decomposition(int64_t decay_mode, bool decomposition) {
  return decomposition && decay_mode != kDecayNone;
}

void check_arguments(const Tensor& input, const Tensor& dt, const std::optional<Tensor>& lengths,
                     const Tensor& h0, const Tensor& c0, const Tensor& weight_ih,
                     const Tensor& weight_hh, const std::optional<Tensor>& weight_decomp,
                     const std::optional<Tensor>& decay_rate, int64_t decay_mode,
                     bool decomposition) {
  TORCH_CHECK(decay_mode >= kDecayNone && decay_mode <= kDecayExp,
              "time_lstm: decay_mode must be 0 (none), 1 (log) or 2 (exp), got ", decay_mode);
  TORCH_CHECK(input.dim() == 3, "time_lstm: input must be (T, B, I), got ", input.sizes());
  TORCH_CHECK(weight_hh.dim() == 2, "time_lstm: weight_hh must be (4H, H), got ", weight_hh.sizes());
  const int64_t T = input.size(0), B = input.size(1), H = weight_hh.size(1);
  TORCH_CHECK(weight_ih.dim() == 2 && weight_ih.size(0) == 4 * H && weight_ih.size(1) == input.size(2),
              "time_lstm: weight_ih must be (4H, I) = (", 4 * H, ", ", input.size(2), "), got ",
              weight_ih.sizes());
  TORCH_CHECK(weight_hh.dim() == 2 && weight_hh.size(0) == 4 * H,
              "time_lstm: weight_hh must be (4H, H), got ", weight_hh.sizes());
  TORCH_CHECK(dt.sizes() == at::IntArrayRef({T, B}), "time_lstm: dt must be (T, B) = (", T, ", ",
              B, "), got ", dt.sizes());
  TORCH_CHECK(h0.sizes() == at::IntArrayRef({B, H}) && c0.sizes() == at::IntArrayRef({B, H}),
              "time_lstm: h0 and c0 must be (B, H) = (", B, ", ", H, "), got ", h0.sizes(),
              " and ", c0.sizes());
  // Δt is data in the math dtype: float16 would overflow past 65504 and bfloat16 round to 8 bits.
  const auto math_dtype = at::toOpMathType(input.scalar_type());
  TORCH_CHECK(dt.scalar_type() == math_dtype && dt.device() == input.device(), "time_lstm: dt must be ",
              math_dtype, " (the math dtype of ", input.scalar_type(), " input) on ", input.device(),
              ", got ", dt.scalar_type(), " on ", dt.device());
  const std::pair<const char*, const Tensor*> named[] = {
      {"h0", &h0}, {"c0", &c0}, {"weight_ih", &weight_ih}, {"weight_hh", &weight_hh}};
  for (const auto& [name, t] : named) {
    TORCH_CHECK(t->scalar_type() == input.scalar_type() && t->device() == input.device(),
                "time_lstm: ", name, " must be ", input.scalar_type(), " on ", input.device(),
                " like the input, got ", t->scalar_type(), " on ", t->device());
  }
  if (lengths.has_value()) {
    TORCH_CHECK(lengths->scalar_type() == at::kLong && lengths->sizes() == at::IntArrayRef({B}) &&
                    lengths->device() == input.device(),
                "time_lstm: lengths must be int64 (B,) on ", input.device());
  }
  if (uses_decomposition(decay_mode, decomposition)) {
    TORCH_CHECK(weight_decomp.has_value(), "time_lstm: decomposition needs weight_decomp");
  }
  TORCH_CHECK(decay_mode != kDecayExp || decay_rate.has_value(),
              "time_lstm: exp decay needs decay_rate");
}

// Shape, dtype and device of an optional parameter, named in the error.
void check_parameter(const std::optional<Tensor>& t, const char* name, at::IntArrayRef shape,
                     const Tensor& input) {
  if (!t.has_value()) return;
  TORCH_CHECK(t->sizes() == shape, "time_lstm: ", name, " must have shape ", shape, ", got ",
              t->sizes());
  TORCH_CHECK(t->scalar_type() == input.scalar_type() && t->device() == input.device(),
              "time_lstm: ", name, " must be ", input.scalar_type(), " on ", input.device(),
              ", got ", t->scalar_type(), " on ", t->device());
}

// softplus(rho) in the math dtype, computed once per call rather than per step.
Tensor decay_rates(const std::optional<Tensor>& decay_rate, int64_t decay_mode,
                   at::ScalarType math_dtype) {
  if (decay_mode != kDecayExp) return Tensor();
  return at::softplus(decay_rate->to(math_dtype)).contiguous();
}

std::optional<Tensor> contiguous_or_none(const std::optional<Tensor>& t) {
  return t.has_value() ? std::optional<Tensor>(t->contiguous()) : std::nullopt;
}

const void* data_or_null(const Tensor& t) { return t.defined() ? t.const_data_ptr() : nullptr; }

// Step t, row b of a (T, rows, cols) buffer, by pointer arithmetic: per-step tensor views would
// cost more than the small products they feed.
// With a period, the buffer holds only that many steps and is reused in turn (inference).
struct StepBuffer {
  char* base;
  int64_t row_bytes;
  int64_t step_bytes;
  int64_t period;
  StepBuffer(const Tensor& t, int64_t rows, int64_t cols, int64_t period = 0)
      : base(t.defined() ? static_cast<char*>(const_cast<void*>(t.const_data_ptr())) : nullptr),
        row_bytes(cols * (t.defined() ? t.element_size() : 0)),
        step_bytes(rows * row_bytes),
        period(period) {}
  void* at(int64_t step, int64_t row = 0) const {
    return base ? base + (period ? step % period : step) * step_bytes + row * row_bytes : nullptr;
  }
};

struct ForwardResult {
  Tensor output, h_n, c_n, gates, hiddens, cells, short_memory;
};

const int64_t* lengths_or_null(const std::optional<Tensor>& lengths, int64_t row) {
  return lengths.has_value() ? lengths->const_data_ptr<int64_t>() + row : nullptr;
}

}  // namespace

Tensor aten_matmul(const Tensor& a, const Tensor& b) { return at::mm(a, b); }

void whole_batch(int64_t rows, at::ScalarType /*dtype*/, int64_t /*hidden*/, RowBlockFn fn) {
  fn(0, rows);
}

void aten_gemm(const GemmCall& call, const at::TensorOptions& options) {
  if (call.m == 0 || call.n == 0) return;
  // target_device spares from_blob a pointer-attribute query per operand and step
  const auto view = [&](const void* data, int64_t rows, int64_t cols, int64_t ld) {
    return at::for_blob(const_cast<void*>(data), {rows, cols})
        .strides({ld, 1})
        .options(options)
        .target_device(options.device())
        .make_tensor();
  };
  const Tensor a = view(call.a, call.m, call.k, call.lda);
  const Tensor b = view(call.b, call.k, call.n, call.ldb);
  Tensor c = view(call.c, call.m, call.n, call.ldc);
  if (call.beta == 0.0) {
    at::mm_out(c, a, b);
  } else {
    c.addmm_(a, b);
  }
}

namespace {

// The forward pass. Without `save`, the states and the short-term memory live in buffers of one or
// two steps that are reused in turn: inference needs no (T+1, B, H) histories.
ForwardResult run_forward(const PointwiseBackend& backend, bool save, const Tensor& input_,
                          const Tensor& dt_, const std::optional<Tensor>& lengths_,
                          const Tensor& h0, const Tensor& c0, const Tensor& weight_ih,
                          const Tensor& weight_hh, const std::optional<Tensor>& bias,
                          const std::optional<Tensor>& weight_decomp,
                          const std::optional<Tensor>& bias_decomp,
                          const std::optional<Tensor>& decay_rate, int64_t decay_mode,
                          bool decomposition) {
  // The op computes in its inputs' dtype; autocast must not recast the GEMMs inside it.
  c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
  const c10::DeviceGuard device_guard(input_.device());  // kernels launch on the input's GPU
  check_arguments(input_, dt_, lengths_, h0, c0, weight_ih, weight_hh, weight_decomp, decay_rate,
                  decay_mode, decomposition);
  const int64_t hidden = weight_hh.size(1);
  check_parameter(bias, "bias", {4 * hidden}, input_);
  check_parameter(weight_decomp, "weight_decomp", {hidden, hidden}, input_);
  check_parameter(bias_decomp, "bias_decomp", {hidden}, input_);
  check_parameter(decay_rate, "decay_rate", {hidden}, input_);
  const Tensor input = input_.contiguous();
  const Tensor dt = dt_.contiguous();
  const std::optional<Tensor> lengths = contiguous_or_none(lengths_);
  const int64_t T = input.size(0), B = input.size(1), I = input.size(2), H = weight_hh.size(1);
  const bool decomp = uses_decomposition(decay_mode, decomposition);
  const CellKind kind{input.scalar_type(), static_cast<int>(decay_mode), decomp};
  const auto opts = input.options();

  // The input projection of all steps in one GEMM; each step then adds W_hh h in place and the
  // pointwise step (which adds the biases, saving a broadcast copy) overwrites the
  // pre-activations with the activated gates.
  // Or, where the backend's per-step products are as fast, each step projects its own inputs.
  const bool project_per_step = backend.projects_inputs_per_step != nullptr &&
                                backend.projects_inputs_per_step(kind.dtype, B, I, H);
  const bool one_step_of_gates = project_per_step && !save;  // inference keeps no gates
  Tensor gates = project_per_step
                     ? at::empty({one_step_of_gates ? 1 : T, B, 4 * H}, opts)
                     : backend.matmul(input.reshape({T * B, I}), weight_ih.t()).view({T, B, 4 * H});
  const Tensor w_ih_t = project_per_step ? weight_ih.t().contiguous() : Tensor();
  const Tensor bias_c = bias.has_value() ? bias->contiguous() : Tensor();
  const Tensor bias_decomp_c = decomp && bias_decomp.has_value() ? bias_decomp->contiguous() : Tensor();
  const int64_t state_steps = save ? T + 1 : 2, period = save ? 0 : 2;
  Tensor hiddens = at::empty({state_steps, B, H}, opts);
  Tensor cells = at::empty({state_steps, B, H}, opts);
  Tensor output = at::empty({T, B, H}, opts);
  Tensor short_memory = decomp ? at::empty({save ? T : 1, B, H}, opts) : at::empty({0}, opts);
  Tensor s_pre = decomp ? at::empty({B, H}, opts) : Tensor();
  hiddens[0].copy_(h0);
  cells[0].copy_(c0);
  const Tensor rate = decay_rates(decay_rate, decay_mode, at::toOpMathType(kind.dtype));
  // Transposed once for all steps: every GEMM library takes B = W^T as a plain K x N matrix, and
  // oneDNN's micro-kernel takes nothing else.
  const Tensor w_hh_t = weight_hh.t().contiguous();
  const Tensor w_d_t = decomp ? weight_decomp->t().contiguous() : Tensor();
  const StepBuffer input_at(input, B, I), gates_at(gates, B, 4 * H, one_step_of_gates ? 1 : 0),
      hiddens_at(hiddens, B, H, period),
      cells_at(cells, B, H, period), output_at(output, B, H),
      short_at(decomp ? short_memory : Tensor(), B, H, save ? 0 : 1), dt_at(dt, B, 1),
      s_pre_at(s_pre, B, H, 1);

  backend.for_row_blocks(B, kind.dtype, H, [&](int64_t b0, int64_t b1) {
    const int64_t rows = b1 - b0;
    for (int64_t t = 0; t < T; ++t) {
      // [gates_t = x_t W_ih^T;]  gates_t += h_{t-1} W_hh^T;  s_pre = c_{t-1} W_d^T
      if (project_per_step) {
        backend.gemm({input_at.at(t, b0), I, w_ih_t.const_data_ptr(), 4 * H, gates_at.at(t, b0),
                      4 * H, rows, 4 * H, I, 0.0, H},
                     opts);
      }
      backend.gemm(
          {hiddens_at.at(t, b0), H, w_hh_t.const_data_ptr(), 4 * H, gates_at.at(t, b0), 4 * H, rows,
           4 * H, H, 1.0, H},
          opts);
      if (decomp) {
        backend.gemm({cells_at.at(t, b0), H, w_d_t.const_data_ptr(), H, s_pre_at.at(t, b0), H, rows,
                      H, H, 0.0, H},
                     opts);
      }
      StepForward step{gates_at.at(t, b0),
                       data_or_null(bias_c),
                       s_pre_at.at(t, b0),
                       data_or_null(bias_decomp_c),
                       short_at.at(t, b0),
                       cells_at.at(t, b0),
                       hiddens_at.at(t, b0),
                       cells_at.at(t + 1, b0),
                       hiddens_at.at(t + 1, b0),
                       output_at.at(t, b0),
                       dt_at.at(t, b0),
                       data_or_null(rate),
                       lengths_or_null(lengths, b0),
                       t,
                       rows,
                       H};
      backend.forward_step(step, kind);
    }
  });
  const int64_t last = save ? T : T % 2;
  return {output, hiddens[last].clone(), cells[last].clone(), gates, hiddens, cells, short_memory};
}

}  // namespace

std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor> time_lstm_forward(
    const PointwiseBackend& backend, const Tensor& input, const Tensor& dt,
    const std::optional<Tensor>& lengths, const Tensor& h0, const Tensor& c0,
    const Tensor& weight_ih, const Tensor& weight_hh, const std::optional<Tensor>& bias,
    const std::optional<Tensor>& weight_decomp, const std::optional<Tensor>& bias_decomp,
    const std::optional<Tensor>& decay_rate, int64_t decay_mode, bool decomposition) {
  ForwardResult r = run_forward(backend, true, input, dt, lengths, h0, c0, weight_ih, weight_hh,
                                bias, weight_decomp, bias_decomp, decay_rate, decay_mode,
                                decomposition);
  return {r.output, r.h_n, r.c_n, r.gates, r.hiddens, r.cells, r.short_memory};
}

std::tuple<Tensor, Tensor, Tensor> time_lstm_inference(
    const PointwiseBackend& backend, const Tensor& input, const Tensor& dt,
    const std::optional<Tensor>& lengths, const Tensor& h0, const Tensor& c0,
    const Tensor& weight_ih, const Tensor& weight_hh, const std::optional<Tensor>& bias,
    const std::optional<Tensor>& weight_decomp, const std::optional<Tensor>& bias_decomp,
    const std::optional<Tensor>& decay_rate, int64_t decay_mode, bool decomposition) {
  ForwardResult r = run_forward(backend, false, input, dt, lengths, h0, c0, weight_ih, weight_hh,
                                bias, weight_decomp, bias_decomp, decay_rate, decay_mode,
                                decomposition);
  return {r.output, r.h_n, r.c_n};
}

std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor>
time_lstm_backward(const PointwiseBackend& backend, const Tensor& grad_output_,
                   const Tensor& grad_h_n, const Tensor& grad_c_n, const Tensor& input_,
                   const Tensor& dt_, const std::optional<Tensor>& lengths_,
                   const Tensor& weight_ih, const Tensor& weight_hh,
                   const std::optional<Tensor>& weight_decomp,
                   const std::optional<Tensor>& decay_rate, const Tensor& gates,
                   const Tensor& hiddens, const Tensor& cells, const Tensor& short_memory,
                   int64_t decay_mode, bool decomposition) {
  c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
  const c10::DeviceGuard device_guard(input_.device());
  TORCH_CHECK(decay_mode >= kDecayNone && decay_mode <= kDecayExp,
              "time_lstm_backward: decay_mode must be 0, 1 or 2, got ", decay_mode);
  TORCH_CHECK(!uses_decomposition(decay_mode, decomposition) || weight_decomp.has_value(),
              "time_lstm_backward: decomposition needs weight_decomp");
  TORCH_CHECK(decay_mode != kDecayExp || decay_rate.has_value(),
              "time_lstm_backward: exp decay needs decay_rate");
  TORCH_CHECK(dt_.scalar_type() == at::toOpMathType(input_.scalar_type()),
              "time_lstm_backward: dt must be ", at::toOpMathType(input_.scalar_type()), ", got ",
              dt_.scalar_type());
  const Tensor input = input_.contiguous();
  const Tensor dt = dt_.contiguous();
  const Tensor grad_output = grad_output_.contiguous();
  const std::optional<Tensor> lengths = contiguous_or_none(lengths_);
  const int64_t T = input.size(0), B = input.size(1), I = input.size(2), H = weight_hh.size(1);
  const bool decomp = uses_decomposition(decay_mode, decomposition);
  const CellKind kind{input.scalar_type(), static_cast<int>(decay_mode), decomp};
  const auto opts = input.options();
  const auto math_dtype = at::toOpMathType(kind.dtype);

  Tensor dz = at::empty({T, B, 4 * H}, opts);
  Tensor ds_pre = decomp ? at::empty({T, B, H}, opts) : Tensor();
  // dL/dh and dL/dc carried from step to step in two slots used in turn, as the inference forward
  // keeps its states: slot k % 2 holds them after k steps of the backward pass.
  Tensor dh = at::empty({2, B, H}, opts), dc = at::empty({2, B, H}, opts);
  dh[0].copy_(grad_h_n);
  dc[0].copy_(grad_c_n);
  const Tensor rate = decay_rates(decay_rate, decay_mode, math_dtype);
  Tensor drate = decay_mode == kDecayExp ? at::zeros({B, H}, opts.dtype(math_dtype)) : Tensor();
  const Tensor w_hh = weight_hh.contiguous();
  const Tensor w_d = decomp ? weight_decomp->contiguous() : Tensor();
  const StepBuffer grad_output_at(grad_output, B, H), gates_at(gates, B, 4 * H),
      short_at(decomp ? short_memory : Tensor(), B, H), cells_at(cells, B, H), dt_at(dt, B, 1),
      dz_at(dz, B, 4 * H), ds_pre_at(ds_pre, B, H), drate_at(drate, B, H, 1),
      dh_at(dh, B, H, 2), dc_at(dc, B, H, 2);

  backend.for_row_blocks(B, kind.dtype, H, [&](int64_t b0, int64_t b1) {
    const int64_t rows = b1 - b0;
    for (int64_t t = T - 1; t >= 0; --t) {
      const int64_t done = T - 1 - t;  // steps already processed
      void* dh_before = dh_at.at(done + 1, b0);  // receives step t-1's gradients
      void* dc_before = dc_at.at(done + 1, b0);
      StepBackward step{grad_output_at.at(t, b0),
                        dh_at.at(done, b0),
                        dc_at.at(done, b0),
                        gates_at.at(t, b0),
                        short_at.at(t, b0),
                        cells_at.at(t + 1, b0),
                        cells_at.at(t, b0),
                        dt_at.at(t, b0),
                        data_or_null(rate),
                        lengths_or_null(lengths, b0),
                        dz_at.at(t, b0),
                        ds_pre_at.at(t, b0),
                        dh_before,
                        dc_before,
                        drate_at.at(0, b0),
                        t,
                        rows,
                        H};
      backend.backward_step(step, kind);
      // dh_{t-1} += dz_t W_hh;  dc_{t-1} += ds_pre_t W_d
      backend.gemm({dz_at.at(t, b0), 4 * H, w_hh.const_data_ptr(), H, dh_before, H, rows, H,
                    4 * H, 1.0, H},
                   opts);
      if (decomp) {
        backend.gemm({ds_pre_at.at(t, b0), H, w_d.const_data_ptr(), H, dc_before, H, rows,
                      H, H, 1.0, H},
                     opts);
      }
    }
  });
  const Tensor grad_h0 = dh[T % 2].clone(), grad_c0 = dc[T % 2].clone();

  const Tensor dz_flat = dz.view({T * B, 4 * H});
  Tensor grad_input = backend.matmul(dz_flat, weight_ih).view({T, B, I});
  Tensor grad_weight_ih = backend.matmul(dz_flat.t(), input.view({T * B, I}));
  Tensor grad_weight_hh = backend.matmul(dz_flat.t(), hiddens.narrow(0, 0, T).reshape({T * B, H}));
  Tensor grad_bias = dz_flat.sum(0);
  Tensor grad_weight_decomp, grad_bias_decomp, grad_decay_rate;
  if (decomp) {
    const Tensor ds_flat = ds_pre.view({T * B, H});
    grad_weight_decomp = backend.matmul(ds_flat.t(), cells.narrow(0, 0, T).reshape({T * B, H}));
    grad_bias_decomp = ds_flat.sum(0);
  } else if (decomposition && weight_decomp.has_value()) {  // decay "none": 1 - g = 0 mutes it
    grad_weight_decomp = at::zeros({H, H}, opts);
    grad_bias_decomp = at::zeros({H}, opts);
  } else {
    grad_weight_decomp = at::empty({0}, opts);
    grad_bias_decomp = at::empty({0}, opts);
  }
  if (decay_mode == kDecayExp) {
    // dL/drho = dL/drate * sigmoid(rho), since rate = softplus(rho)
    const Tensor rho = decay_rate->to(math_dtype);
    grad_decay_rate = (drate.sum(0) * at::sigmoid(rho)).to(decay_rate->scalar_type());
  } else {
    grad_decay_rate = at::empty({0}, opts);
  }
  return {grad_input, grad_h0, grad_c0, grad_weight_ih, grad_weight_hh, grad_bias, grad_weight_decomp,
          grad_bias_decomp, grad_decay_rate};
}

}  // namespace interestevo
