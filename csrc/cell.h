// The time-aware LSTM cell's pointwise math, forward and backward: the single source of truth
// for the CPU loop (SIMD vectors) and the CUDA kernel (one thread per unit).
//
// V is the value type: float or double (host and device), or at::vec::Vectorized<float|double> on
// the CPU. A translation unit that uses vectors declares ie_exp/ie_tanh/ie_log1p for them BEFORE
// including this header (ordinary lookup happens where the templates are defined).
#pragma once

#include <math.h>

#if defined(__CUDACC__)
#define IE_INLINE __host__ __device__ __forceinline__
#else
#define IE_INLINE inline
#endif

namespace interestevo {

enum DecayMode : int { kDecayNone = 0, kDecayLog = 1, kDecayExp = 2 };

IE_INLINE float ie_exp(float x) { return expf(x); }
IE_INLINE double ie_exp(double x) { return exp(x); }
IE_INLINE float ie_tanh(float x) { return tanhf(x); }
IE_INLINE double ie_tanh(double x) { return tanh(x); }
IE_INLINE float ie_log1p(float x) { return log1pf(x); }
IE_INLINE double ie_log1p(double x) { return log1p(x); }

template <typename V>
IE_INLINE V ie_sigmoid(V x) {
  return V(1) / (V(1) + ie_exp(V(0) - x));
}

// g = decay(dt) in (0, 1]; `rate` is softplus(rho) per unit (exp mode only).
// log mode: 1 / log(e + dt) written as 1 / (1 + log1p(dt / e)) so that dt = 0 gives exactly 1.
template <int DECAY, typename V>
IE_INLINE V decay_gate(V dt, V rate) {
  if constexpr (DECAY == kDecayExp) {
    return ie_exp(V(0) - rate * dt);
  } else if constexpr (DECAY == kDecayLog) {
    return V(1) / (V(1) + ie_log1p(dt * V(0.36787944117144233)));
  } else {
    return V(1);
  }
}

// c*: the memory after the gap. Decomposition discounts only its short-term part s.
// With no decay c* is c_prev itself, so the cell is exactly an LSTM.
template <int DECAY, bool DECOMP, typename V>
IE_INLINE V discounted_memory(V c_prev, V s, V g) {
  if constexpr (DECAY == kDecayNone) {
    return c_prev;
  } else if constexpr (DECOMP) {
    return c_prev - (V(1) - g) * s;
  } else {
    return g * c_prev;
  }
}

template <typename V>
struct CellForward {
  V i, f, u, o;  // activated gates (input, forget, candidate, output)
  V s;           // tanh(W_d c_prev + b_d), the short-term memory (decomposition only)
  V c, h;        // new state
};

// z* are the gate pre-activations W_ih x + W_hh h + b; s_pre = W_d c_prev + b_d.
template <int DECAY, bool DECOMP, typename V>
IE_INLINE CellForward<V> cell_forward(V zi, V zf, V zu, V zo, V s_pre, V c_prev, V dt, V rate) {
  CellForward<V> out;
  out.i = ie_sigmoid(zi);
  out.f = ie_sigmoid(zf);
  out.u = ie_tanh(zu);
  out.o = ie_sigmoid(zo);
  out.s = (DECOMP && DECAY != kDecayNone) ? ie_tanh(s_pre) : V(0);
  V g = decay_gate<DECAY>(dt, rate);
  V c_star = discounted_memory<DECAY, DECOMP>(c_prev, out.s, g);
  out.c = out.f * c_star + out.i * out.u;
  out.h = out.o * ie_tanh(out.c);
  return out;
}

template <typename V>
struct CellBackward {
  V dzi, dzf, dzu, dzo;  // gradients of the gate pre-activations
  V ds_pre;              // gradient of W_d c_prev + b_d
  V dc_prev;             // direct part of dL/dc_prev (the W_d path is added by a GEMM)
  V drate;               // dL/d softplus(rho) contributed by this unit and step
};

// dh: total dL/dh_t; dc_next: dL/dc_t carried from step t+1. Recomputes g, c* and tanh(c).
template <int DECAY, bool DECOMP, typename V>
IE_INLINE CellBackward<V> cell_backward(V dh, V dc_next, V i, V f, V u, V o, V s, V c, V c_prev,
                                        V dt, V rate) {
  V g = decay_gate<DECAY>(dt, rate);
  V c_star = discounted_memory<DECAY, DECOMP>(c_prev, s, g);
  V tanh_c = ie_tanh(c);
  V dc = dc_next + dh * o * (V(1) - tanh_c * tanh_c);
  CellBackward<V> grad;
  grad.dzi = dc * u * i * (V(1) - i);
  grad.dzf = dc * c_star * f * (V(1) - f);
  grad.dzu = dc * i * (V(1) - u * u);
  grad.dzo = dh * tanh_c * o * (V(1) - o);
  V dc_star = dc * f;
  V dg;
  if constexpr (DECAY == kDecayNone) {
    grad.dc_prev = dc_star;
    grad.ds_pre = V(0);
    dg = V(0);
  } else if constexpr (DECOMP) {
    grad.dc_prev = dc_star;
    grad.ds_pre = (V(0) - dc_star * (V(1) - g)) * (V(1) - s * s);
    dg = dc_star * s;
  } else {
    grad.dc_prev = dc_star * g;
    grad.ds_pre = V(0);
    dg = dc_star * c_prev;
  }
  // g = exp(-rate * dt)  =>  dg/drate = -dt * g
  grad.drate = (DECAY == kDecayExp) ? (V(0) - dg * (dt * g)) : V(0);  // dt * g first: no inf * 0
  return grad;
}

}  // namespace interestevo
