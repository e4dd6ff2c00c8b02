// The operator schemas (declared once, here) and their CPU implementations.
// csrc/cuda/time_lstm_cuda.cu registers the CUDA implementations of the same ops.
#include <Python.h>
#include <torch/library.h>

#include "time_lstm.h"

// Importing interestevo._C runs the static registrations below; the module itself is empty.
PyMODINIT_FUNC PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
  return PyModule_Create(&module_def);
}

namespace interestevo {

TORCH_LIBRARY(interestevo, m) {
  m.def(
      "time_lstm_forward(Tensor input, Tensor dt, Tensor? lengths, Tensor h0, Tensor c0, "
      "Tensor weight_ih, Tensor weight_hh, Tensor? bias, Tensor? weight_decomp, "
      "Tensor? bias_decomp, Tensor? decay_rate, int decay_mode, bool decomposition) "
      "-> (Tensor output, Tensor h_n, Tensor c_n, Tensor gates, Tensor hiddens, Tensor cells, "
      "Tensor short_memory)");
  m.def(
      "time_lstm_inference(Tensor input, Tensor dt, Tensor? lengths, Tensor h0, Tensor c0, "
      "Tensor weight_ih, Tensor weight_hh, Tensor? bias, Tensor? weight_decomp, "
      "Tensor? bias_decomp, Tensor? decay_rate, int decay_mode, bool decomposition) "
      "-> (Tensor output, Tensor h_n, Tensor c_n)");
  m.def(
      "time_lstm_backward(Tensor grad_output, Tensor grad_h_n, Tensor grad_c_n, Tensor input, "
      "Tensor dt, Tensor? lengths, Tensor weight_ih, Tensor weight_hh, Tensor? weight_decomp, "
      "Tensor? decay_rate, Tensor gates, Tensor hiddens, Tensor cells, Tensor short_memory, "
      "int decay_mode, bool decomposition) -> (Tensor grad_input, Tensor grad_h0, "
      "Tensor grad_c0, Tensor grad_weight_ih, Tensor grad_weight_hh, Tensor grad_bias, "
      "Tensor grad_weight_decomp, Tensor grad_bias_decomp, Tensor grad_decay_rate)");
}

TORCH_LIBRARY_IMPL(interestevo, CPU, m) {
  m.impl("time_lstm_forward", &BoundOps<cpu_backend>::forward);
  m.impl("time_lstm_inference", &BoundOps<cpu_backend>::inference);
  m.impl("time_lstm_backward", &BoundOps<cpu_backend>::backward);
}

}  // namespace interestevo
