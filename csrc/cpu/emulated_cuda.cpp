// The CUDA kernels run on the CPU: a backend that loops over the CUDA grid (blocks x threads)
// and calls the same per-unit functions the .cu kernels call, with the same storage dtypes
// (float16/bfloat16 included), through the real sequence driver and its GEMM calls.
// Registered in the private namespace interestevo_emulated_cuda for the tests; not for users.
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include "../autocast.h"
#include "../dispatch.h"
#include "../schemas.h"
#include "../step_units.h"
#include "../time_lstm.h"

namespace interestevo {
namespace {

// Every (block, thread) of the launch, in order; threads past the last unit return early, as on
// the device.
template <typename UnitFn>
void run_grid(int64_t units, UnitFn&& unit_fn) {
  const int64_t blocks = blocks_for(units);
  for (int64_t block = 0; block < blocks; ++block) {
    for (int64_t thread = 0; thread < kThreadsPerBlock; ++thread) {
      unit_fn(grid_unit(block, kThreadsPerBlock, thread));
    }
  }
}

void emulated_forward_step(const StepForward& st, const CellKind& kind) {
  const int64_t units = st.batch * st.hidden;
  if (units == 0) return;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, kind.dtype, "time_lstm_forward_emulated", [&] {
    dispatch_cell_mode(kind.decay, kind.decomposition, [&](auto decay, auto decomp) {
      run_grid(units, [&](int64_t unit) {
        forward_unit<scalar_t, decltype(decay)::value, decltype(decomp)::value>(st, unit);
      });
    });
  });
}

void emulated_backward_step(const StepBackward& st, const CellKind& kind) {
  const int64_t units = st.batch * st.hidden;
  if (units == 0) return;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, kind.dtype, "time_lstm_backward_emulated", [&] {
    dispatch_cell_mode(kind.decay, kind.decomposition, [&](auto decay, auto decomp) {
      run_grid(units, [&](int64_t unit) {
        backward_unit<scalar_t, decltype(decay)::value, decltype(decomp)::value>(st, unit);
      });
    });
  });
}

const PointwiseBackend& emulated_cuda_backend() {
  // aten_gemm, as the CUDA backend uses
  static const PointwiseBackend backend{emulated_forward_step, emulated_backward_step, aten_gemm, aten_matmul,
                                        whole_batch, nullptr};
  return backend;
}

struct EmulatedOpNames {
  static constexpr const char* kForward = "interestevo_emulated_cuda::time_lstm_forward";
  static constexpr const char* kInference = "interestevo_emulated_cuda::time_lstm_inference";
};

}  // namespace

TORCH_LIBRARY(interestevo_emulated_cuda, m) {
  m.def(kForwardSchema);
  m.def(kInferenceSchema);
  m.def(kBackwardSchema);
}

TORCH_LIBRARY_IMPL(interestevo_emulated_cuda, CPU, m) {
  m.impl("time_lstm_forward", &BoundOps<emulated_cuda_backend>::forward);
  m.impl("time_lstm_inference", &BoundOps<emulated_cuda_backend>::inference);
  m.impl("time_lstm_backward", &BoundOps<emulated_cuda_backend>::backward);
}

}  // namespace interestevo

namespace interestevo {

// CPU autocast stands in for CUDA autocast here: the emulated kernels take bfloat16/float16.
TORCH_LIBRARY_IMPL(interestevo_emulated_cuda, AutocastCPU, m) {
  m.impl("time_lstm_forward", &AutocastOps<c10::DeviceType::CPU, EmulatedOpNames>::forward);
  m.impl("time_lstm_inference", &AutocastOps<c10::DeviceType::CPU, EmulatedOpNames>::inference);
}

}  // namespace interestevo
