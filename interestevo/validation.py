"""Argument checks for TimeLSTM/TimeLSTMCell: each error names the argument, what was expected and
what arrived. Nothing is clamped or dropped silently."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Optional, Sequence

import torch
from torch import Tensor


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


def check_input(input: Tensor, input_size: int, param: Tensor) -> None:
    if not isinstance(input, Tensor):
        raise TypeError(f"input must be a Tensor or PackedSequence, got {type(input).__name__}")
    if input.size(-1) != input_size:
        raise ValueError(
            f"input.size(-1) must be equal to input_size. Expected {input_size}, got {input.size(-1)}")
    if input.device != param.device:
        raise ValueError(
            f"input is on {input.device} but the parameters are on {param.device}; "
            f"move one of them (module.to(device) or input.to(device))")
    if input.dtype != param.dtype:
        raise ValueError(
            f"input dtype {input.dtype} does not match the parameters' dtype {param.dtype}")


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
        raise ValueError(f"dt must be on the input's device {input.device}, got {dt.device}")
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


def prepare_lengths(lengths, batch: int, steps: int, device: torch.device) -> Optional[Tensor]:
    """lengths as int64 on the input's device, checked: shape (B,), integers in [0, T]."""
    if lengths is None:
        return None
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


def prepare_state(hx, input: Tensor, expected: tuple) -> tuple[Tensor, Tensor]:
    """(h_0, c_0) checked against the expected shape, or zeros when hx is None."""
    if hx is None:
        zeros = input.new_zeros(expected)
        return zeros, zeros
    if not isinstance(hx, (tuple, list)) or len(hx) != 2:
        raise TypeError("hx must be a tuple (h_0, c_0) of two tensors")
    for index, state in enumerate(hx):
        if not isinstance(state, Tensor):
            raise TypeError(f"hx[{index}] must be a Tensor, got {type(state).__name__}")
        if _shape(state) != expected:
            raise ValueError(f"Expected hidden[{index}] size {expected}, got {list(state.shape)}")
        if state.device != input.device:
            raise ValueError(f"hx[{index}] is on {state.device} but the input is on {input.device}")
        if state.dtype != input.dtype:
            raise ValueError(f"hx[{index}] dtype {state.dtype} does not match the input's {input.dtype}")
    return hx[0], hx[1]
