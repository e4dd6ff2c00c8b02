"""TimeLSTM and TimeLSTMCell: drop-in replacements for nn.LSTM / nn.LSTMCell whose memory is gated by
the time elapsed between events.

>>> import torch, interestevo
>>> rnn = interestevo.TimeLSTM(8, 16, num_layers=2, batch_first=True)
>>> x, dt = torch.randn(4, 10, 8), torch.rand(4, 10) * 24   # dt: hours since the previous event
>>> output, (h_n, c_n) = rnn(x, dt=dt, lengths=torch.tensor([10, 7, 3, 1]))
>>> output.shape, h_n.shape
(torch.Size([4, 10, 16]), torch.Size([2, 4, 16]))
"""

from __future__ import annotations

import math
import warnings
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from . import ops, validation
from .reference import DECAY_MODES

# Decay rates softplus(rho) are spread log-uniformly over this range (per unit of dt): memories of
# many timescales, from ~1000 units of dt down to ~1.
DECAY_RATE_RANGE = (1e-3, 1.0)


def _check_options(input_size: int, hidden_size: int, decay: str) -> None:
    if decay not in DECAY_MODES:
        raise ValueError(f"decay must be one of {DECAY_MODES}, got {decay!r}")
    for name, value in (("input_size", input_size), ("hidden_size", hidden_size)):
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _layer_parameters(input_size: int, hidden_size: int, bias: bool, decay: str,
                      decomposition: bool, factory: dict) -> dict[str, nn.Parameter]:
    """One layer's parameters, named like nn.LSTM's (the caller adds the _l{k} suffix)."""
    def new(*shape):
        return nn.Parameter(torch.empty(*shape, **factory))

    params = {"weight_ih": new(4 * hidden_size, input_size), "weight_hh": new(4 * hidden_size, hidden_size)}
    if bias:
        params["bias_ih"] = new(4 * hidden_size)
        params["bias_hh"] = new(4 * hidden_size)
    if decomposition:
        params["weight_decomp"] = new(hidden_size, hidden_size)
        if bias:
            params["bias_decomp"] = new(hidden_size)
    if decay == "exp":
        params["decay_rate"] = new(hidden_size)
    return params


def _init_parameters(module: nn.Module, hidden_size: int) -> None:
    """Uniform(+-1/sqrt(H)) like nn.LSTM; decay rates log-uniform over DECAY_RATE_RANGE."""
    bound = 1.0 / math.sqrt(hidden_size)
    low, high = (math.log(r) for r in DECAY_RATE_RANGE)
    with torch.no_grad():
        for name, param in module.named_parameters(recurse=False):
            if name.startswith("decay_rate"):
                rates = torch.exp(torch.linspace(low, high, hidden_size, dtype=torch.float64))
                param.copy_(torch.log(torch.expm1(rates)))  # inverse softplus
            else:
                param.uniform_(-bound, bound)


class TimeLSTM(nn.Module):
    """A multi-layer LSTM whose memory decays with the time elapsed between events.

    Same arguments, shapes and return values as nn.LSTM, plus keyword-only ``dt`` (elapsed time per
    step, (T, B) or (B, T) with batch_first; None means 0, i.e. exactly nn.LSTM) and ``lengths``
    ((B,) integers: steps at t >= length leave the state unchanged and output zeros).

    decay: "exp" (learned rate per unit), "log" (1/log(e + dt)) or "none" (an LSTM).
    decomposition: discount only the short-term part of the memory (T-LSTM) instead of all of it.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, decay: str = "exp",
                 decomposition: bool = True, device=None, dtype=None):
        super().__init__()
        _check_options(input_size, hidden_size, decay)
        if not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(f"num_layers must be a positive integer, got {num_layers!r}")
        if not 0.0 <= float(dropout) <= 1.0:
            raise ValueError(f"dropout must be a probability in [0, 1], got {dropout!r}")
        if dropout > 0 and num_layers == 1:
            warnings.warn("dropout only acts between layers, so it does nothing with num_layers=1",
                          UserWarning, stacklevel=2)
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        self.decay, self.decomposition = decay, decomposition
        factory = {"device": device, "dtype": dtype}
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size
            for name, param in _layer_parameters(layer_input, hidden_size, bias, decay,
                                                 decomposition, factory).items():
                self.register_parameter(f"{name}_l{layer}", param)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _init_parameters(self, self.hidden_size)

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}"
        if not self.bias:
            text += ", bias=False"
        if self.batch_first:
            text += ", batch_first=True"
        if self.dropout:
            text += f", dropout={self.dropout}"
        return text + f", decay={self.decay!r}, decomposition={self.decomposition}"

    @classmethod
    def from_lstm(cls, lstm: nn.LSTM, **options) -> "TimeLSTM":
        """A TimeLSTM with an nn.LSTM's weights (options such as decay= override the defaults).
        With decay="none" (or dt=None) it computes exactly what the nn.LSTM computes."""
        if not isinstance(lstm, nn.LSTM):
            raise TypeError(f"from_lstm expects an nn.LSTM, got {type(lstm).__name__}")
        if lstm.bidirectional or lstm.proj_size:
            raise ValueError("from_lstm supports unidirectional nn.LSTM without proj_size")
        param = lstm.weight_ih_l0
        settings = dict(num_layers=lstm.num_layers, bias=lstm.bias, batch_first=lstm.batch_first,
                        dropout=lstm.dropout, device=param.device, dtype=param.dtype)
        settings.update(options)
        module = cls(lstm.input_size, lstm.hidden_size, **settings)
        with torch.no_grad():
            for name, value in lstm.named_parameters():
                getattr(module, name).copy_(value)
        return module

    def _layer(self, layer: int, name: str) -> Optional[Tensor]:
        return getattr(self, f"{name}_l{layer}", None)

    def forward(self, input, hx=None, *, dt=None, lengths=None):
        if isinstance(input, PackedSequence):
            if lengths is not None:
                raise ValueError("lengths must be None for a PackedSequence, which carries its own")
            return self._forward_packed(input, hx, dt)
        if input.dim() not in (2, 3):
            raise ValueError(f"TimeLSTM: expected input to be 2D (unbatched) or 3D, got {input.dim()}D")
        validation.check_input(input, self.input_size, self.weight_ih_l0)
        batched = input.dim() == 3
        time_major = not (self.batch_first and batched)
        dt = validation.prepare_dt(dt, input, input.shape[:-1])  # checked in the caller's layout
        if not batched:
            if lengths is not None:
                raise ValueError("lengths is only for batched input; unbatched input is one sequence")
            input, dt = input.unsqueeze(1), dt.unsqueeze(1)
            if isinstance(hx, (tuple, list)):
                hx = tuple(s.unsqueeze(1) if isinstance(s, Tensor) and s.dim() == 2 else s for s in hx)
        elif not time_major:
            input, dt = input.transpose(0, 1), dt.transpose(0, 1)
        steps, batch = input.shape[0], input.shape[1]
        lengths = validation.prepare_lengths(lengths, batch, steps, input.device)
        h0, c0 = validation.prepare_state(hx, input, (self.num_layers, batch, self.hidden_size))
        output, state = self._run(input, dt, lengths, h0, c0)
        if not time_major:
            output = output.transpose(0, 1)
        if not batched:
            output, state = output.squeeze(1), (state[0].squeeze(1), state[1].squeeze(1))
        return output, state

    def _run(self, x: Tensor, dt: Tensor, lengths: Optional[Tensor], h0: Tensor, c0: Tensor):
        """All layers over (T, B, I); returns output (T, B, H) and (h_n, c_n)."""
        h_n, c_n = [], []
        for layer in range(self.num_layers):
            x, h, c = ops.time_lstm_layer(
                x, dt, lengths, h0[layer], c0[layer], self._layer(layer, "weight_ih"),
                self._layer(layer, "weight_hh"), self._layer(layer, "bias_ih"),
                self._layer(layer, "bias_hh"), self._layer(layer, "weight_decomp"),
                self._layer(layer, "bias_decomp"), self._layer(layer, "decay_rate"), self.decay,
                self.decomposition)
            h_n.append(h)
            c_n.append(c)
            if self.dropout and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, training=True)
        return x, (torch.stack(h_n), torch.stack(c_n))

    def _forward_packed(self, packed: PackedSequence, hx, dt):
        """Runs on the padded batch (in the original order) with lengths, then packs again."""
        input, lengths = pad_packed_sequence(packed)
        validation.check_input(input, self.input_size, self.weight_ih_l0)
        steps, batch = input.shape[0], input.shape[1]
        if isinstance(dt, PackedSequence):
            if not torch.equal(dt.batch_sizes, packed.batch_sizes):
                raise ValueError("dt as a PackedSequence must have the input's batch_sizes")
            dt = pad_packed_sequence(dt)[0]
        elif isinstance(dt, Tensor) and self.batch_first:
            dt = dt.transpose(0, 1)
        dt = validation.prepare_dt(dt, input, (steps, batch))
        lengths = validation.prepare_lengths(lengths, batch, steps, input.device)
        h0, c0 = validation.prepare_state(hx, input, (self.num_layers, batch, self.hidden_size))
        output, state = self._run(input, dt, lengths, h0, c0)
        order = packed.sorted_indices
        if order is not None:
            output, lengths = output.index_select(1, order), lengths.index_select(0, order)
        data = pack_padded_sequence(output, lengths.cpu(), enforce_sorted=True).data
        return PackedSequence(data, packed.batch_sizes, packed.sorted_indices,
                              packed.unsorted_indices), state


class TimeLSTMCell(nn.Module):
    """One step of the time-aware LSTM, for streaming updates: ``h, c = cell(x, (h, c), dt=dt)``.

    x (B, I) or (I,), dt (B,) (or a scalar for unbatched input); parameters named like nn.LSTMCell's.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, decay: str = "exp",
                 decomposition: bool = True, device=None, dtype=None):
        super().__init__()
        _check_options(input_size, hidden_size, decay)
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        self.decay, self.decomposition = decay, decomposition
        factory = {"device": device, "dtype": dtype}
        for name, param in _layer_parameters(input_size, hidden_size, bias, decay, decomposition,
                                             factory).items():
            self.register_parameter(name, param)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _init_parameters(self, self.hidden_size)

    def extra_repr(self) -> str:
        return (f"{self.input_size}, {self.hidden_size}, bias={self.bias}, decay={self.decay!r}, "
                f"decomposition={self.decomposition}")

    def forward(self, input: Tensor, hx=None, *, dt=None) -> tuple[Tensor, Tensor]:
        if not isinstance(input, Tensor) or input.dim() not in (1, 2):
            raise ValueError("TimeLSTMCell: expected input to be a 1D (unbatched) or 2D tensor")
        validation.check_input(input, self.input_size, self.weight_ih)
        batched = input.dim() == 2
        x = input if batched else input.unsqueeze(0)
        batch = x.shape[0]
        if isinstance(dt, Tensor) and dt.dim() == 0:
            dt = dt.reshape(1).expand(batch)
        dt = validation.prepare_dt(dt, x, (batch,))
        if hx is not None and not batched and isinstance(hx, (tuple, list)):
            hx = tuple(s.unsqueeze(0) if isinstance(s, Tensor) else s for s in hx)
        h0, c0 = validation.prepare_state(hx, x, (batch, self.hidden_size))
        _, h, c = ops.time_lstm_layer(
            x.unsqueeze(0), dt.unsqueeze(0), None, h0, c0, self.weight_ih, self.weight_hh,
            getattr(self, "bias_ih", None), getattr(self, "bias_hh", None),
            getattr(self, "weight_decomp", None), getattr(self, "bias_decomp", None),
            getattr(self, "decay_rate", None), self.decay, self.decomposition)
        return (h, c) if batched else (h.squeeze(0), c.squeeze(0))
