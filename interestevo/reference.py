"""The time-aware LSTM in plain PyTorch, written for clarity.

This is the specification the fused operator is tested against (forward and every gradient), and
the fallback when the compiled extension is missing. Per step, with elapsed time dt >= 0::

    g  = decay(dt)                                  in (0, 1]
    s  = tanh(W_d c + b_d)                          short-term part of the memory
    c* = c - (1 - g) * s      (decomposition)       or   c* = g * c   (no decomposition)
    z  = W_ih x + b_ih + W_hh h + b_hh              gates i, f, g(u), o as in nn.LSTM
    c' = sigmoid(z_f) * c* + sigmoid(z_i) * tanh(z_u)
    h' = sigmoid(z_o) * tanh(c')
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

DECAY_MODES = ("none", "log", "exp")


def decay_gate(dt: Tensor, decay: str, decay_rate: Optional[Tensor] = None) -> Tensor:
    """g = decay(dt) for dt of shape (B,): (B, 1) for "none"/"log", (B, H) for "exp"."""
    dt = dt.unsqueeze(-1)
    if decay == "none":
        return torch.ones_like(dt)
    if decay == "log":
        # 1 / log(e + dt), written so that dt = 0 gives exactly 1
        return 1.0 / (1.0 + torch.log1p(dt / torch.e))
    if decay == "exp":
        return torch.exp(-F.softplus(decay_rate) * dt)
    raise ValueError(f"decay must be one of {DECAY_MODES}, got {decay!r}")


def time_lstm_cell_ref(
    x: Tensor,
    dt: Tensor,
    h: Tensor,
    c: Tensor,
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias_ih: Optional[Tensor] = None,
    bias_hh: Optional[Tensor] = None,
    weight_decomp: Optional[Tensor] = None,
    bias_decomp: Optional[Tensor] = None,
    decay_rate: Optional[Tensor] = None,
    decay: str = "exp",
    decomposition: bool = True,
) -> tuple[Tensor, Tensor]:
    """One step: x (B, I), dt (B,), h and c (B, H). Returns the new (h, c).

    dt may have a wider dtype than the state (float32 Δt with float16/bfloat16 states)."""
    if decay == "none":
        c_star = c  # exactly an LSTM
    else:
        g = decay_gate(dt, decay, decay_rate).to(c.dtype)  # dt may be wider than the state
        if decomposition:
            short_term = torch.tanh(F.linear(c, weight_decomp, bias_decomp))
            c_star = c - (1.0 - g) * short_term
        else:
            c_star = g * c
    z = F.linear(x, weight_ih, bias_ih) + F.linear(h, weight_hh, bias_hh)
    z_i, z_f, z_u, z_o = z.chunk(4, dim=1)
    c_new = torch.sigmoid(z_f) * c_star + torch.sigmoid(z_i) * torch.tanh(z_u)
    h_new = torch.sigmoid(z_o) * torch.tanh(c_new)
    return h_new, c_new


def time_lstm_layer_ref(
    input: Tensor,
    dt: Tensor,
    lengths: Optional[Tensor],
    h0: Tensor,
    c0: Tensor,
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias_ih: Optional[Tensor] = None,
    bias_hh: Optional[Tensor] = None,
    weight_decomp: Optional[Tensor] = None,
    bias_decomp: Optional[Tensor] = None,
    decay_rate: Optional[Tensor] = None,
    decay: str = "exp",
    decomposition: bool = True,
) -> tuple[Tensor, Tensor, Tensor]:
    """One layer over a sequence: input (T, B, I), dt (T, B), lengths (B,) or None.

    Steps at t >= lengths[b] leave row b's state unchanged and output zeros there.
    Returns output (T, B, H), h_n (B, H), c_n (B, H).
    """
    h, c = h0, c0
    outputs = []
    for t in range(input.shape[0]):
        h_new, c_new = time_lstm_cell_ref(
            input[t], dt[t], h, c, weight_ih, weight_hh, bias_ih, bias_hh,
            weight_decomp, bias_decomp, decay_rate, decay, decomposition,
        )
        if lengths is None:
            h, c = h_new, c_new
            outputs.append(h_new)
        else:
            active = (t < lengths).unsqueeze(1)
            h = torch.where(active, h_new, h)
            c = torch.where(active, c_new, c)
            outputs.append(torch.where(active, h_new, torch.zeros_like(h_new)))
    if not outputs:
        return input.new_zeros(0, h0.shape[0], h0.shape[1]), h, c
    return torch.stack(outputs), h, c
