// The operator schemas (written once, in schemas.h) and their CPU implementations.
// csrc/cuda/time_lstm_cuda.cu registers the CUDA implementations of the same ops.
#include <Python.h>
#include <torch/library.h>

#include <optional>
#include <string>

#include "autocast.h"
#include "cpu/gemm_cpu.h"
#include "schemas.h"
#include "time_lstm.h"

// Importing interestevo._C runs the static registrations below; the module itself is empty.
PyMODINIT_FUNC PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
  return PyModule_Create(&module_def);
}

namespace interestevo {

namespace {

// Sets the CPU GEMM library when given one; returns the one in use (tests and benchmarks compare).
std::string cpu_gemm_library_op(std::optional<std::string> library) {
  if (library.has_value()) set_cpu_gemm_library(parse_cpu_gemm_library(*library));
  return cpu_gemm_library_name(cpu_gemm_library());
}

}  // namespace

TORCH_LIBRARY(interestevo, m) {
  m.def(kForwardSchema);
  m.def(kInferenceSchema);
  m.def(kBackwardSchema);
  m.def("_cpu_gemm_library(str? library=None) -> str", &cpu_gemm_library_op);
}

struct PublicOpNames {
  static constexpr const char* kForward = "interestevo::time_lstm_forward";
  static constexpr const char* kInference = "interestevo::time_lstm_inference";
};

// Under torch.autocast("cuda") the op runs in the autocast dtype, as nn.LSTM does. CPU autocast
// has no kernel here: the CPU kernels are float32/float64 only, so the op runs in float32 there.
TORCH_LIBRARY_IMPL(interestevo, AutocastCUDA, m) {
  m.impl("time_lstm_forward", &AutocastOps<c10::DeviceType::CUDA, PublicOpNames>::forward);
  m.impl("time_lstm_inference", &AutocastOps<c10::DeviceType::CUDA, PublicOpNames>::inference);
}

TORCH_LIBRARY_IMPL(interestevo, CPU, m) {
  m.impl("time_lstm_forward", &BoundOps<cpu_backend>::forward);
  m.impl("time_lstm_inference", &BoundOps<cpu_backend>::inference);
  m.impl("time_lstm_backward", &BoundOps<cpu_backend>::backward);
}

}  // namespace interestevo
