// Autocast kernels for the ops: under torch.autocast the floating inputs and weights are cast to
// the autocast dtype (as nn.LSTM's are), Δt to that dtype's math type (float32), and the op then
// runs in that storage dtype with float32 math inside. Registered for the CUDA op (autocast.cpp)
// and for the emulated-CUDA test op on the CPU (cpu/emulated_cuda.cpp).
#pragma once

#include <ATen/ATen.h>
#include <ATen/OpMathType.h>
#include <ATen/autocast_mode.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include <optional>
#include <tuple>

namespace interestevo {

template <c10::DeviceType kDevice>
struct AutocastCast {
  at::ScalarType dtype;  // the storage dtype the op will run in

  explicit AutocastCast(const at::Tensor& input)
      : dtype(at::autocast::is_eligible(input, kDevice) ? at::autocast::get_autocast_dtype(kDevice)
                                                        : input.scalar_type()) {}

  at::Tensor operator()(const at::Tensor& t) const {
    return at::autocast::cached_cast(at::autocast::get_autocast_dtype(kDevice), t, kDevice);
  }
  std::optional<at::Tensor> operator()(const std::optional<at::Tensor>& t) const {
    return at::autocast::cached_cast(at::autocast::get_autocast_dtype(kDevice), t, kDevice);
  }
  at::Tensor dt(const at::Tensor& t) const { return t.to(at::toOpMathType(dtype)); }
};

// OpNames names the forward and inference ops ("namespace::name").
template <c10::DeviceType kDevice, typename OpNames>
struct AutocastOps {
  using Forward = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor,
                             at::Tensor>;
  using Inference = std::tuple<at::Tensor, at::Tensor, at::Tensor>;
  template <typename Result>
  using Signature = Result(const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&,
                           const at::Tensor&, const at::Tensor&, const at::Tensor&,
                           const at::Tensor&, const std::optional<at::Tensor>&,
                           const std::optional<at::Tensor>&, const std::optional<at::Tensor>&,
                           const std::optional<at::Tensor>&, int64_t, bool);

  template <typename Result>
  static Result call(const char* name, const at::Tensor& input, const at::Tensor& dt,
                     const std::optional<at::Tensor>& lengths, const at::Tensor& h0,
                     const at::Tensor& c0, const at::Tensor& weight_ih,
                     const at::Tensor& weight_hh, const std::optional<at::Tensor>& bias,
                     const std::optional<at::Tensor>& weight_decomp,
                     const std::optional<at::Tensor>& bias_decomp,
                     const std::optional<at::Tensor>& decay_rate, int64_t decay_mode,
                     bool decomposition) {
    const c10::impl::ExcludeDispatchKeyGuard no_autocast(
        at::autocast::get_autocast_dispatch_key_from_device_type(kDevice));
    const AutocastCast<kDevice> cast(input);
    const auto op = c10::Dispatcher::singleton().findSchemaOrThrow(name, "").typed<Signature<Result>>();
    return op.call(cast(input), cast.dt(dt), lengths, cast(h0), cast(c0), cast(weight_ih),
                   cast(weight_hh), cast(bias), cast(weight_decomp), cast(bias_decomp),
                   cast(decay_rate), decay_mode, decomposition);
  }

#define IE_OP_PARAMETERS                                                                       \
  const at::Tensor &input, const at::Tensor &dt, const std::optional<at::Tensor> &lengths,       \
      const at::Tensor &h0, const at::Tensor &c0, const at::Tensor &weight_ih,                   \
      const at::Tensor &weight_hh, const std::optional<at::Tensor> &bias,                        \
      const std::optional<at::Tensor> &weight_decomp,                                            \
      const std::optional<at::Tensor> &bias_decomp, const std::optional<at::Tensor> &decay_rate, \
      int64_t decay_mode, bool decomposition
#define IE_OP_ARGUMENTS                                                                    \
  input, dt, lengths, h0, c0, weight_ih, weight_hh, bias, weight_decomp, bias_decomp, decay_rate, \
      decay_mode, decomposition

  static Forward forward(IE_OP_PARAMETERS) {
    return call<Forward>(OpNames::kForward, IE_OP_ARGUMENTS);
  }
  static Inference inference(IE_OP_PARAMETERS) {
    return call<Inference>(OpNames::kInference, IE_OP_ARGUMENTS);
  }
#undef IE_OP_PARAMETERS
#undef IE_OP_ARGUMENTS
};

}  // namespace interestevo
