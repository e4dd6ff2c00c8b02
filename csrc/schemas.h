// The operator schemas, written once: the public ops (ops.cpp) and the private emulated-CUDA test
// ops (cpu/emulated_cuda.cpp) declare the same signatures. dt is in the math dtype: float32 for
// float16/bfloat16/float32 inputs, float64 for float64.
#pragma once

namespace interestevo {

constexpr const char* kForwardSchema =
    "time_lstm_forward(Tensor input, Tensor dt, Tensor? lengths, Tensor h0, Tensor c0, "
    "Tensor weight_ih, Tensor weight_hh, Tensor? bias, Tensor? weight_decomp, "
    "Tensor? bias_decomp, Tensor? decay_rate, int decay_mode, bool decomposition) "
    "-> (Tensor output, Tensor h_n, Tensor c_n, Tensor gates, Tensor hiddens, Tensor cells, "
    "Tensor short_memory)";

constexpr const char* kInferenceSchema =
    "time_lstm_inference(Tensor input, Tensor dt, Tensor? lengths, Tensor h0, Tensor c0, "
    "Tensor weight_ih, Tensor weight_hh, Tensor? bias, Tensor? weight_decomp, "
    "Tensor? bias_decomp, Tensor? decay_rate, int decay_mode, bool decomposition) "
    "-> (Tensor output, Tensor h_n, Tensor c_n)";

constexpr const char* kBackwardSchema =
    "time_lstm_backward(Tensor grad_output, Tensor grad_h_n, Tensor grad_c_n, Tensor input, "
    "Tensor dt, Tensor? lengths, Tensor weight_ih, Tensor weight_hh, Tensor? weight_decomp, "
    "Tensor? decay_rate, Tensor gates, Tensor hiddens, Tensor cells, Tensor short_memory, "
    "int decay_mode, bool decomposition) -> (Tensor grad_input, Tensor grad_h0, "
    "Tensor grad_c0, Tensor grad_weight_ih, Tensor grad_weight_hh, Tensor grad_bias, "
    "Tensor grad_weight_decomp, Tensor grad_bias_decomp, Tensor grad_decay_rate)";

}  // namespace interestevo
