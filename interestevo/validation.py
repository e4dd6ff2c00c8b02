"""The operator's argument checks, in one place: TimeLSTM's and TimeLSTMCell's constructor options
and call arguments are checked here and nowhere else.

Each failure raises the exception type nn.LSTM (nn.LSTMCell for the cell) raises for it, so code
that catches those keeps working: RuntimeError for sizes, devices and hx dtypes; ValueError for the
input's number of dimensions and, outside autocast, the sequence input's dtype (RuntimeError in the
cell, as in nn.LSTMCell); TypeError for arguments of the wrong kind. dt and lengths, which nn.LSTM
lacks, raise ValueError for wrong shapes and values, RuntimeError for a wrong device, as the rest.
Each message names the argument, what was expected and what arrived. Nothing is clamped or dropped
silently. Under torch.autocast the input and hx may have any dtype autocast casts, as in nn.LSTM.
"""

from __future__ import annotations

import numbers
from contextlib import contextmanager
from typing import Optional, Sequence

import torch
from torch import Tensor
from torch.nn.utils.rnn import PackedSequence

from .reference import DECAY_MODES

# The floating dtypes torch.autocast casts; float64 (and integers) it leaves alone.
AUTOCAST_DTYPES = (torch.float16, torch.bfloat16, torch.float32)


def _shape(t: Tensor) -> tuple:
    return tuple(t.shape)


_value_checks = True


@contextmanager
def no_value_checks():
    """Within this block TimeLSTM/TimeLSTMCell skip the checks that read tensor values (dt finite
    and >= 0, lengths in [0, T]), so a call makes no host synchronisation and can be captured in a
    CUDA graph. Shapes, dtypes and devices are still checked. Bad values are then not caught:
    negative dt gives a gate above 1, lengths above T count as T and below 0 as 0. The checks are
    also skipped while torch.compile traces and while a CUDA graph is being captured."""
    global _value_checks
    previous, _value_checks = _value_checks, False
    try:
        yield
    finally:
        _value_checks = previous


def _skip_value_checks() -> bool:
    # Data-dependent checks would break a torch.compile graph or a CUDA graph capture.
    return (not _value_checks or torch.compiler.is_compiling()
            or (torch.cuda.is_available() and torch.cuda.is_current_stream_capturing()))


# ---- constructor options ------------------------------------------------------------------

def _check_integer(name: str, value, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} should be of type int, got: {type(value).__name__}")
    if value < minimum:
        bound = "a positive integer (greater than zero)" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"{name} must be {bound}, got {value}")


def check_flag(name: str, value) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{name} should be of type bool, got: {type(value).__name__}")


def check_options(input_size: int, hidden_size: int, decay: str) -> None:
    _check_integer("input_size", input_size, 1)
    _check_integer("hidden_size", hidden_size, 1)
    if decay not in DECAY_MODES:
        raise ValueError(f"decay must be one of {DECAY_MODES}, got {decay!r}")


def check_sequence_options(num_layers, bias, batch_first, dropout, bidirectional, proj_size,
                            hidden_size) -> bool:
    """nn.LSTM's checks with its error types; returns bidirectional as a bool."""
    check_flag("bias", bias)
    check_flag("batch_first", batch_first)
    _check_integer("num_layers", num_layers, 1)
    if isinstance(bidirectional, int) and bidirectional in (0, 1):  # nn.LSTM accepts 0/1 too
        bidirectional = bool(bidirectional)
    check_flag("bidirectional", bidirectional)
    if not isinstance(proj_size, int) or isinstance(proj_size, bool):
        raise TypeError(f"proj_size should be of type int, got: {type(proj_size).__name__}")
    if proj_size < 0:
        raise ValueError(
            f"proj_size should be a positive integer or zero to disable projections, got {proj_size}")
    if proj_size >= hidden_size:
        raise ValueError(f"proj_size has to be smaller than hidden_size, got proj_size={proj_size} "
                         f"and hidden_size={hidden_size}")
    if not isinstance(dropout, numbers.Real) or isinstance(dropout, bool) or not 0 <= dropout <= 1:
        raise ValueError(f"dropout should be a number in [0, 1] (the probability of zeroing an "
                         f"element between layers), got {dropout!r}")
    return bidirectional


# ---- call arguments ------------------------------------------------------------------------

def _autocast_on(device_type: str) -> bool:
    return torch.amp.is_autocast_available(device_type) and torch.is_autocast_enabled(device_type)


def autocast_dtype(input: Tensor, weight: Tensor) -> Optional[torch.dtype]:
    """The dtype torch.autocast asks of this call, or None where it does not apply: autocast must be
    on for the input's device and cast both the input's and the parameters' dtypes."""
    if not _autocast_on(input.device.type):
        return None
    if input.dtype not in AUTOCAST_DTYPES or weight.dtype not in AUTOCAST_DTYPES:
        return None
    return torch.get_autocast_dtype(input.device.type)


def input_is_batched(input, module: str, batched_dim: int) -> bool:
    """nn.LSTM's and nn.LSTMCell's first check: the input has batched_dim dimensions (batched) or
    one fewer (unbatched)."""
    if not isinstance(input, Tensor):
        raise TypeError(f"input must be a Tensor or PackedSequence, got {type(input).__name__}")
    if input.dim() not in (batched_dim - 1, batched_dim):
        raise ValueError(f"{module}: expected input to be {batched_dim - 1}D (unbatched) or "
                         f"{batched_dim}D, got {input.dim()}D")
    return input.dim() == batched_dim


def _check_input_dtype(input: Tensor, weight: Tensor, error: type) -> None:
    if input.dtype == weight.dtype or autocast_dtype(input, weight) is not None:
        return
    raise error(f"input dtype {input.dtype} does not match the parameters' dtype {weight.dtype}: "
                f"convert the input (input.to({weight.dtype})) or the module "
                f"(module.to({input.dtype}))")


def _check_size_and_device(input: Tensor, input_size: int, weight: Tensor) -> None:
    if input.size(-1) != input_size:
        raise RuntimeError(
            f"input.size(-1) must be equal to input_size. Expected {input_size}, got {input.size(-1)}")
    if input.device != weight.device:
        raise RuntimeError(
            f"input is on {input.device} but the parameters are on {weight.device}; "
            f"move one of them (module.to(device) or input.to(device))")


def check_input(input: Tensor, input_size: int, weight: Tensor,
                batch_sizes: Optional[Tensor] = None) -> None:
    """nn.RNNBase.check_input, plus the device: time-major input, 2-D with batch_sizes (a
    PackedSequence's data), else 3-D. weight is any of the module's parameters."""
    # nn.LSTM refuses a dtype mismatch itself outside autocast (ValueError); under autocast it
    # leaves the mismatches autocast does not cast (float64, integers) to its kernels, which raise
    # RuntimeError.
    _check_input_dtype(input, weight, RuntimeError if _autocast_on(input.device.type) else ValueError)
    expected_dim = 2 if batch_sizes is not None else 3
    if input.dim() != expected_dim:
        raise RuntimeError(f"input must have {expected_dim} dimensions, got {input.dim()}")
    _check_size_and_device(input, input_size, weight)


def check_cell_input(input: Tensor, input_size: int, weight: Tensor) -> None:
    """The cell's input, as nn.LSTMCell refuses it: every mismatch is a RuntimeError."""
    _check_input_dtype(input, weight, RuntimeError)
    _check_size_and_device(input, input_size, weight)


def check_hidden_size(hx: Tensor, expected: Sequence[int],
                      msg: str = "Expected hidden size {}, got {}") -> None:
    if _shape(hx) != tuple(expected):
        raise RuntimeError(msg.format(tuple(expected), list(hx.shape)))


def prepare_state(hx, input: Tensor, h_size: tuple, c_size: tuple, batched: bool = True,
                  amp: Optional[torch.dtype] = None) -> tuple[Tensor, Tensor]:
    """(h_0, c_0) of the batched shapes h_size and c_size: zeros when hx is None, else hx checked
    as nn.LSTM checks it; unbatched states (no batch dimension, the one before last) get it here.
    input is the batched input; amp is autocast_dtype's answer (under autocast hx may be any dtype
    autocast casts)."""
    if hx is None:
        return input.new_zeros(h_size), input.new_zeros(c_size)
    if not isinstance(hx, (tuple, list)):
        raise TypeError(f"hx must be a tuple (h_0, c_0) of two tensors, got {type(hx).__name__}")
    if len(hx) != 2:
        raise RuntimeError(f"expected two hidden states (h_0, c_0), got {len(hx)}")
    for index, state in enumerate(hx):
        if not isinstance(state, Tensor):
            raise TypeError(f"hx[{index}] must be a Tensor, got {type(state).__name__}")
    dims = len(h_size) if batched else len(h_size) - 1  # as many as the input's
    if hx[0].dim() != dims or hx[1].dim() != dims:
        layout = "batched" if batched else "unbatched"
        raise RuntimeError(f"For {layout} {dims}-D input, hx and cx should also be {dims}-D but got "
                           f"({hx[0].dim()}-D, {hx[1].dim()}-D) tensors")
    if not batched:
        hx = (hx[0].unsqueeze(-2), hx[1].unsqueeze(-2))
    check_hidden_size(hx[0], h_size, "Expected hidden[0] size {}, got {}")
    check_hidden_size(hx[1], c_size, "Expected hidden[1] size {}, got {}")
    for index, state in enumerate(hx):
        if state.device != input.device:
            raise RuntimeError(f"hx[{index}] is on {state.device} but the input is on {input.device}")
        if state.dtype != input.dtype and not (amp is not None and state.dtype in AUTOCAST_DTYPES):
            raise RuntimeError(
                f"hx[{index}] dtype {state.dtype} does not match the input's {input.dtype}")
    return hx[0], hx[1]


def dt_dtype(input_dtype: torch.dtype) -> torch.dtype:
    """Δt's dtype for an input dtype: float64 for float64, else float32. In float16 a gap above
    65504 (18 hours in seconds) would be infinite and in bfloat16 rounded to 8 bits."""
    return torch.float64 if input_dtype == torch.float64 else torch.float32


def prepare_dt(dt: Optional[Tensor], input: Tensor, expected_shape: Sequence[int]) -> Tensor:
    """dt in float32 (float64 for float64 input), checked: right shape and device, finite, >= 0."""
    if dt is None:
        return input.new_zeros(expected_shape, dtype=dt_dtype(input.dtype))
    if not isinstance(dt, Tensor):
        raise TypeError(f"dt must be a Tensor of elapsed times, got {type(dt).__name__}")
    if dt.is_complex() or dt.dtype == torch.bool:
        raise TypeError(f"dt must have a real dtype, got {dt.dtype}")
    if dt.device != input.device:
        raise RuntimeError(f"dt must be on the input's device {input.device}, got {dt.device}")
    if _shape(dt) != tuple(expected_shape):
        raise ValueError(
            f"dt must have shape {tuple(expected_shape)} (one elapsed time per step and sequence, "
            f"matching the input), got {_shape(dt)}")
    dt = dt.to(dt_dtype(input.dtype))
    if not _skip_value_checks():
        _check_dt_values(dt)
    return dt


def _check_dt_values(dt: Tensor) -> None:
    finite = torch.isfinite(dt)
    bad = (~finite) | (dt < 0)
    if bool(bad.any()):
        negative = int((finite & (dt < 0)).sum())
        nan = int(torch.isnan(dt).sum())
        infinite = int(torch.isinf(dt).sum())
        raise ValueError(
            f"dt must be finite and >= 0 (time elapsed since the previous event); found {negative} "
            f"negative, {nan} NaN and {infinite} infinite values (in {dt.dtype})")


def check_packed(packed: PackedSequence, dt, lengths) -> None:
    """A PackedSequence carries its lengths; a packed dt must have its batch sizes."""
    if lengths is not None:
        raise ValueError("lengths must be None for a PackedSequence, which carries its own")
    if isinstance(dt, PackedSequence) and not torch.equal(dt.batch_sizes, packed.batch_sizes):
        raise ValueError("dt as a PackedSequence must have the input's batch_sizes")


def prepare_lengths(lengths, batch: int, steps: int, device: torch.device,
                    batched: bool = True) -> Optional[Tensor]:
    """lengths as int64 on the input's device, checked: shape (B,), integers in [0, T]; only for
    batched input."""
    if lengths is None:
        return None
    if not batched:
        raise ValueError("lengths is only for batched input; unbatched input is one sequence")
    if isinstance(lengths, (list, tuple)):
        lengths = torch.as_tensor(lengths)
    if not isinstance(lengths, Tensor):
        raise TypeError(f"lengths must be a Tensor of sequence lengths, got {type(lengths).__name__}")
    if lengths.dtype == torch.bool or lengths.is_floating_point() or lengths.is_complex():
        raise TypeError(f"lengths must be an integer tensor, got {lengths.dtype}")
    if _shape(lengths) != (batch,):
        raise ValueError(f"lengths must have shape (B,) = ({batch},), got {_shape(lengths)}")
    if not _skip_value_checks() and batch > 0:  # checked where they are: CPU lengths cost no sync
        low, high = int(lengths.min()), int(lengths.max())
        if low < 0 or high > steps:
            raise ValueError(
                f"lengths must be in [0, T] = [0, {steps}], got values from {low} to {high}")
    return lengths.to(device=device, dtype=torch.int64)
