"""TimeLSTM and TimeLSTMCell: drop-in replacements for nn.LSTM / nn.LSTMCell whose memory is gated by
the time elapsed between events.

>>> import torch, interestevo
>>> rnn = interestevo.TimeLSTM(8, 16, num_layers=2, batch_first=True)
>>> x, dt = torch.randn(4, 10, 8), torch.rand(4, 10) * 24   # dt: hours since the previous event
>>> output, (h_n, c_n) = rnn(x, dt=dt, lengths=torch.tensor([10, 7, 3, 1]))
>>> output.shape, h_n.shape
(torch.Size([4, 10, 16]), torch.Size([2, 4, 16]))
>>> bi = interestevo.TimeLSTM(8, 16, bidirectional=True, proj_size=4)
>>> output, (h_n, c_n) = bi(x.transpose(0, 1), dt=dt.t())
>>> output.shape, h_n.shape, c_n.shape
(torch.Size([10, 4, 8]), torch.Size([2, 4, 4]), torch.Size([2, 4, 16]))
"""

from __future__ import annotations

import math
import warnings
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from . import ops, reference, validation

# Decay rates softplus(rho) are spread log-uniformly over this range (per unit of dt): memories of
# many timescales, from ~1000 units of dt down to ~1.
DECAY_RATE_RANGE = (1e-3, 1.0)

# One layer's parameters in nn.LSTM's order, then the time-aware ones (absent ones are skipped).
LAYER_PARAMETER_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr",
                         "weight_decomp", "bias_decomp", "decay_rate")


def _layer_parameters(input_size: int, hidden_size: int, bias: bool, decay: str,
                      decomposition: bool, factory: dict, proj_size: int = 0) -> dict[str, nn.Parameter]:
    """One layer's parameters, named and ordered like nn.LSTM's (the caller adds the _l{k} suffix)."""
    def new(*shape):
        return nn.Parameter(torch.empty(*shape, **factory))

    state_size = proj_size or hidden_size
    params = {"weight_ih": new(4 * hidden_size, input_size), "weight_hh": new(4 * hidden_size, state_size)}
    if bias:
        params["bias_ih"] = new(4 * hidden_size)
        params["bias_hh"] = new(4 * hidden_size)
    if proj_size:
        params["weight_hr"] = new(proj_size, hidden_size)
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


def _reversal_index(lengths: Optional[Tensor], steps: int, device) -> Optional[Tensor]:
    """(T, B) index: step t of row b's reversed sequence reads step lengths[b]-1-t; padding stays put.
    None without lengths (then every row is reversed whole)."""
    if lengths is None:
        return None
    t = torch.arange(steps, device=device).unsqueeze(1)
    return torch.where(t < lengths, lengths - 1 - t, t)


def _reverse(sequence: Tensor, index: Optional[Tensor]) -> Tensor:
    """Each row's real steps in reverse order (its own inverse: applying it twice is the identity)."""
    if index is None:
        return sequence.flip(0)
    index = index.view(*index.shape, *([1] * (sequence.dim() - 2))).expand_as(sequence)
    return sequence.gather(0, index)


def _gaps_to_next_event(dt: Tensor, lengths: Optional[Tensor]) -> Tensor:
    """next[t] = dt[t + 1], the time from event t to event t + 1; 0 at each row's last real event.
    The reverse direction reaches event t from event t + 1, so this is the time it has to forget."""
    following = torch.cat([dt[1:], dt.new_zeros(1, dt.shape[1])])
    if lengths is None:
        return following
    t = torch.arange(dt.shape[0], device=dt.device).unsqueeze(1)
    return torch.where(t + 1 < lengths, following, torch.zeros_like(following))


def _run_as_under_autocast(run, amp: Optional[torch.dtype], fused: bool, dtype: torch.dtype,
                           x: Tensor, h0: Tensor, c0: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """run(x, h0, c0) -> (output, h_n, c_n), under autocast as nn.LSTM runs there. amp is the
    autocast dtype (None: autocast does not apply), fused whether run is the fused op alone, dtype
    the parameters'. Where the op has an autocast kernel (CUDA) it casts for itself and runs in the
    autocast dtype. Elsewhere (the CPU kernels take float32/float64 only; the plain-PyTorch paths
    would mix dtypes step by step) the layers compute in the parameters' dtype with autocast off
    and the results come back in the autocast dtype, as nn.LSTM's do."""
    if amp is None or (fused and ops.casts_under_autocast(x.device.type)):
        return run(x, h0, c0)
    with torch.autocast(x.device.type, enabled=False):
        results = run(x.to(dtype), h0.to(dtype), c0.to(dtype))
    return tuple(r.to(amp) for r in results)


def _projected_layer(x: Tensor, dt: Tensor, lengths: Optional[Tensor], h0: Tensor, c0: Tensor,
                     weights: dict, decay: str, decomposition: bool):
    """One layer with nn.LSTM's projection h_t = W_hr (o_t * tanh(c_t)), step by step on the
    reference cell: the fused op has no projection. Same masking as the op: steps past a row's
    length keep its state and output zeros."""
    h, c = h0, c0
    outputs = []
    for t in range(x.shape[0]):
        unprojected, c_new = reference.time_lstm_cell_ref(
            x[t], dt[t], h, c, weights["weight_ih"], weights["weight_hh"], weights["bias_ih"],
            weights["bias_hh"], weights["weight_decomp"], weights["bias_decomp"],
            weights["decay_rate"], decay, decomposition)
        h_new = F.linear(unprojected, weights["weight_hr"])
        if lengths is None:
            h, c = h_new, c_new
            outputs.append(h_new)
        else:
            active = (t < lengths).unsqueeze(1)
            h, c = torch.where(active, h_new, h), torch.where(active, c_new, c)
            outputs.append(torch.where(active, h_new, torch.zeros_like(h_new)))
    if not outputs:
        return x.new_zeros(0, h0.shape[0], h0.shape[1]), h, c
    return torch.stack(outputs), h, c


class TimeLSTM(nn.Module):
    """A multi-layer LSTM whose memory decays with the time elapsed between events.

    Same arguments (positional order included), shapes, parameter names, errors and return values
    as nn.LSTM, bidirectional and proj_size included, plus keyword-only ``dt`` (elapsed time per
    step, (T, B) or (B, T) with batch_first; None means 0, i.e. exactly nn.LSTM) and ``lengths``
    ((B,) integers: steps at t >= length leave the state unchanged and output zeros).

    decay: "exp" (learned rate per unit), "log" (1/log(e + dt)) or "none" (an LSTM).
    decomposition: discount only the short-term part of the memory (T-LSTM) instead of all of it.
    The reverse direction of a bidirectional TimeLSTM sees at each event the gap to the next one.
    Under torch.autocast it takes a preceding layer's half activations and returns the autocast
    dtype, as nn.LSTM does; where no half kernels run (the CPU, proj_size > 0) it computes in
    float32 and casts the results.
    """

    mode = "LSTM"  # what nn.RNNBase utilities read

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 proj_size: int = 0, device=None, dtype=None, *, decay: str = "exp",
                 decomposition: bool = True):
        super().__init__()
        validation.check_options(input_size, hidden_size, decay)
        bidirectional = validation.check_sequence_options(num_layers, bias, batch_first, dropout,
                                                          bidirectional, proj_size, hidden_size)
        validation.check_flag("decomposition", decomposition)
        if dropout > 0 and num_layers == 1:
            warnings.warn("dropout only acts between layers, so it does nothing with num_layers=1",
                          UserWarning, stacklevel=2)
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        self.bidirectional, self.proj_size = bidirectional, proj_size
        self.decay, self.decomposition = decay, decomposition
        factory = {"device": device, "dtype": dtype}
        directions = 2 if bidirectional else 1
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else (proj_size or hidden_size) * directions
            for suffix in self._suffixes():
                for name, param in _layer_parameters(layer_input, hidden_size, bias, decay,
                                                     decomposition, factory, proj_size).items():
                    self.register_parameter(f"{name}_l{layer}{suffix}", param)
        self._all_weights = self._weight_names()
        self._flat_weights_names = [name for names in self._all_weights for name in names]
        self.reset_parameters()

    def _suffixes(self) -> tuple[str, ...]:
        return ("", "_reverse") if self.bidirectional else ("",)

    def _weight_names(self) -> list[list[str]]:
        """Per layer and direction, the parameter names present, in nn.LSTM's order."""
        return [[f"{name}_l{layer}{suffix}" for name in LAYER_PARAMETER_NAMES
                 if hasattr(self, f"{name}_l{layer}{suffix}")]
                for layer in range(self.num_layers) for suffix in self._suffixes()]

    def reset_parameters(self) -> None:
        _init_parameters(self, self.hidden_size)

    # What nn.RNNBase users and utilities touch (weight norm, weight copying, cuDNN calls).
    @property
    def _flat_weights(self) -> list[Optional[Tensor]]:
        """The current weights (a weight-normed one is a computed tensor, not a Parameter)."""
        return [getattr(self, name, None) for name in self._flat_weights_names]

    @property
    def all_weights(self) -> list[list[Tensor]]:
        return [[getattr(self, name) for name in names] for names in self._all_weights]

    def flatten_parameters(self) -> None:
        """A no-op kept for nn.LSTM compatibility: the fused op reads the weights where they are."""

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        # TimeLSTMs pickled before bidirectional and proj_size existed (like nn.LSTM before 1.8)
        self.__dict__.setdefault("bidirectional", False)
        self.__dict__.setdefault("proj_size", 0)
        if "_all_weights" not in self.__dict__:
            self._all_weights = self._weight_names()
            self._flat_weights_names = [name for names in self._all_weights for name in names]

    def get_expected_hidden_size(self, input: Tensor, batch_sizes: Optional[Tensor]) -> tuple:
        return self._state_size(input, batch_sizes, self.proj_size or self.hidden_size)

    def get_expected_cell_size(self, input: Tensor, batch_sizes: Optional[Tensor]) -> tuple:
        return self._state_size(input, batch_sizes, self.hidden_size)

    def _state_size(self, input: Tensor, batch_sizes: Optional[Tensor], size: int) -> tuple:
        if batch_sizes is not None:
            batch = int(batch_sizes[0])
        else:
            batch = input.size(0) if self.batch_first else input.size(1)
        return (self.num_layers * (2 if self.bidirectional else 1), batch, size)

    def _state_shapes(self, batch: int) -> tuple[tuple, tuple]:
        """The shapes of h and c: (L * D, B, proj_size or H) and (L * D, B, H)."""
        layers = self.num_layers * (2 if self.bidirectional else 1)
        return (layers, batch, self.proj_size or self.hidden_size), (layers, batch, self.hidden_size)

    def check_input(self, input: Tensor, batch_sizes: Optional[Tensor]) -> None:
        """nn.LSTM's input checks (dtype, dimensions, size), its exception types, and the device."""
        validation.check_input(input, self.input_size, self.weight_ih_l0, batch_sizes)

    def check_hidden_size(self, hx: Tensor, expected_hidden_size: tuple,
                          msg: str = "Expected hidden size {}, got {}") -> None:
        validation.check_hidden_size(hx, expected_hidden_size, msg)

    def check_forward_args(self, input: Tensor, hidden: tuple, batch_sizes: Optional[Tensor]) -> None:
        self.check_input(input, batch_sizes)
        self.check_hidden_size(hidden[0], self.get_expected_hidden_size(input, batch_sizes),
                               "Expected hidden[0] size {}, got {}")
        self.check_hidden_size(hidden[1], self.get_expected_cell_size(input, batch_sizes),
                               "Expected hidden[1] size {}, got {}")

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size:
            text += f", proj_size={self.proj_size}"
        text += f", num_layers={self.num_layers}"
        if not self.bias:
            text += ", bias=False"
        if self.batch_first:
            text += ", batch_first=True"
        if self.dropout:
            text += f", dropout={self.dropout}"
        if self.bidirectional:
            text += ", bidirectional=True"
        return text + f", decay={self.decay!r}, decomposition={self.decomposition}"

    @classmethod
    def from_lstm(cls, lstm: nn.LSTM, **options) -> "TimeLSTM":
        """A TimeLSTM with an nn.LSTM's weights, bidirectional and projections included (options
        such as decay= override the defaults). With decay="none" (or dt=None) it computes exactly
        what the nn.LSTM computes."""
        if not isinstance(lstm, nn.LSTM):
            raise TypeError(f"from_lstm expects an nn.LSTM, got {type(lstm).__name__}")
        param = lstm.weight_ih_l0
        settings = dict(num_layers=lstm.num_layers, bias=lstm.bias, batch_first=lstm.batch_first,
                        dropout=lstm.dropout, bidirectional=lstm.bidirectional,
                        proj_size=lstm.proj_size, device=param.device, dtype=param.dtype)
        settings.update(options)
        module = cls(lstm.input_size, lstm.hidden_size, **settings)
        with torch.no_grad():
            for name, value in lstm.named_parameters():
                getattr(module, name).copy_(value)
        return module

    def forward(self, input, hx=None, *, dt=None, lengths=None):
        if isinstance(input, PackedSequence):
            return self._forward_packed(input, hx, dt, lengths)
        batched = validation.input_is_batched(input, "TimeLSTM", 3)
        self.check_input(input if batched else input.unsqueeze(1), None)
        dt = validation.prepare_dt(dt, input, input.shape[:-1])  # checked in the caller's layout
        if not batched:
            input, dt = input.unsqueeze(1), dt.unsqueeze(1)
        elif self.batch_first:
            input, dt = input.transpose(0, 1), dt.transpose(0, 1)
        steps, batch = input.shape[0], input.shape[1]
        lengths = validation.prepare_lengths(lengths, batch, steps, input.device, batched)
        output, h_n, c_n = self._run_checked(input, hx, dt, lengths, batched)
        if batched and self.batch_first:
            output = output.transpose(0, 1)
        if not batched:
            output, h_n, c_n = output.squeeze(1), h_n.squeeze(1), c_n.squeeze(1)
        return output, (h_n, c_n)

    def _run_checked(self, x: Tensor, hx, dt: Tensor, lengths: Optional[Tensor], batched: bool):
        """hx checked, then all layers over time-major x, under autocast as nn.LSTM runs."""
        weight = self.weight_ih_l0
        amp = validation.autocast_dtype(x, weight)
        h0, c0 = validation.prepare_state(hx, x, *self._state_shapes(x.shape[1]), batched, amp)
        return _run_as_under_autocast(lambda x, h0, c0: self._run(x, dt, lengths, h0, c0), amp,
                                      not self.proj_size, weight.dtype, x, h0, c0)

    def _run(self, x: Tensor, dt: Tensor, lengths: Optional[Tensor], h0: Tensor, c0: Tensor):
        """All layers and directions over (T, B, I); returns output (T, B, D * H_out), h_n, c_n."""
        if self.bidirectional:
            order = _reversal_index(lengths, x.shape[0], x.device)
            dt_reversed = _reverse(_gaps_to_next_event(dt, lengths), order)
        h_n, c_n = [], []
        for layer in range(self.num_layers):
            outputs = []
            for direction, suffix in enumerate(self._suffixes()):
                state = len(h_n)
                if suffix:
                    output, h, c = self._run_direction(layer, suffix, _reverse(x, order), dt_reversed,
                                                       lengths, h0[state], c0[state])
                    output = _reverse(output, order)
                else:
                    output, h, c = self._run_direction(layer, suffix, x, dt, lengths, h0[state],
                                                       c0[state])
                outputs.append(output)
                h_n.append(h)
                c_n.append(c)
            x = torch.cat(outputs, dim=-1) if len(outputs) > 1 else outputs[0]
            if self.dropout and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, training=True)
        return x, torch.stack(h_n), torch.stack(c_n)

    def _run_direction(self, layer: int, suffix: str, x: Tensor, dt: Tensor,
                       lengths: Optional[Tensor], h0: Tensor, c0: Tensor):
        weights = {name: getattr(self, f"{name}_l{layer}{suffix}", None)
                   for name in LAYER_PARAMETER_NAMES}
        if self.proj_size:
            return _projected_layer(x, dt, lengths, h0, c0, weights, self.decay, self.decomposition)
        return ops.time_lstm_layer(
            x, dt, lengths, h0, c0, weights["weight_ih"], weights["weight_hh"], weights["bias_ih"],
            weights["bias_hh"], weights["weight_decomp"], weights["bias_decomp"],
            weights["decay_rate"], self.decay, self.decomposition)

    def _forward_packed(self, packed: PackedSequence, hx, dt, lengths):
        """Runs on the padded batch (in the original order) with lengths, then packs again."""
        validation.check_packed(packed, dt, lengths)
        self.check_input(packed.data, packed.batch_sizes)
        input, lengths = pad_packed_sequence(packed)
        steps, batch = input.shape[0], input.shape[1]
        if isinstance(dt, PackedSequence):
            dt = pad_packed_sequence(dt)[0]
        elif isinstance(dt, Tensor) and self.batch_first:
            dt = dt.transpose(0, 1)
        dt = validation.prepare_dt(dt, input, (steps, batch))
        lengths = validation.prepare_lengths(lengths, batch, steps, input.device)
        output, h_n, c_n = self._run_checked(input, hx, dt, lengths, batched=True)
        order = packed.sorted_indices
        if order is not None:
            output, lengths = output.index_select(1, order), lengths.index_select(0, order)
        data = pack_padded_sequence(output, lengths.cpu(), enforce_sorted=True).data
        return PackedSequence(data, packed.batch_sizes, packed.sorted_indices,
                              packed.unsorted_indices), (h_n, c_n)


class TimeLSTMCell(nn.Module):
    """One step of the time-aware LSTM, for streaming updates: ``h, c = cell(x, (h, c), dt=dt)``.

    x (B, I) or (I,), dt (B,) (or a scalar for unbatched input); parameters named like nn.LSTMCell's.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, decay: str = "exp",
                 decomposition: bool = True, device=None, dtype=None):
        super().__init__()
        validation.check_options(input_size, hidden_size, decay)
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
        batched = validation.input_is_batched(input, "TimeLSTMCell", 2)
        validation.check_cell_input(input, self.input_size, self.weight_ih)
        x = input if batched else input.unsqueeze(0)
        batch = x.shape[0]
        if isinstance(dt, Tensor) and dt.dim() == 0:
            dt = dt.reshape(1).expand(batch)
        dt = validation.prepare_dt(dt, x, (batch,))
        amp = validation.autocast_dtype(x, self.weight_ih)
        state_size = (batch, self.hidden_size)
        h0, c0 = validation.prepare_state(hx, x, state_size, state_size, batched, amp)

        def step(x, h0, c0):
            return ops.time_lstm_layer(
                x.unsqueeze(0), dt.unsqueeze(0), None, h0, c0, self.weight_ih, self.weight_hh,
                getattr(self, "bias_ih", None), getattr(self, "bias_hh", None),
                getattr(self, "weight_decomp", None), getattr(self, "bias_decomp", None),
                getattr(self, "decay_rate", None), self.decay, self.decomposition)

        _, h, c = _run_as_under_autocast(step, amp, True, self.weight_ih.dtype, x, h0, c0)
        return (h, c) if batched else (h.squeeze(0), c.squeeze(0))
