"""The Python face of the fused operator: loading, fake (meta) kernels, autograd, fallback.

`time_lstm_layer` runs one layer over a whole sequence with the compiled op when it is loaded and
with the plain-PyTorch reference otherwise (warning once).
"""

from __future__ import annotations

import os
import warnings
from contextlib import contextmanager
from typing import Optional

import torch
from torch import Tensor

from . import reference

DECAY_MODE_IDS = {"none": 0, "log": 1, "exp": 2}
_REBUILD_HINT = "rebuild it with: pip install --no-build-isolation --force-reinstall --no-deps <interestevo source>"


def _build_info():
    try:
        from . import _build_info as info
    except ImportError:
        return None
    return info


def _cpu_lacks_vectors(info) -> bool:
    """True when the extension was compiled for SIMD (AVX2/AVX512) this CPU does not have."""
    order = ["generic", "AVX2", "AVX512"]
    have = torch.backends.cpu.get_cpu_capability()
    have = have if have in order else "generic"
    return info.CPU_VECTORS in order and order.index(info.CPU_VECTORS) > order.index(have)


def _load_extension() -> tuple[bool, Optional[str]]:
    """Imports interestevo._C. Returns (loaded, why_not). A torch mismatch is an error."""
    info = _build_info()
    if info is None:
        return False, "the compiled extension interestevo._C is not built"
    if info.TORCH_VERSION != torch.__version__:
        raise ImportError(
            f"interestevo._C was built for torch {info.TORCH_VERSION}, but torch {torch.__version__} "
            f"is installed; {_REBUILD_HINT}"
        )
    if _cpu_lacks_vectors(info):
        return False, f"interestevo._C was built with {info.CPU_VECTORS} vectors, which this CPU lacks"
    try:
        from . import _C  # noqa: F401  (registers the ops)
    except ImportError as error:
        if "undefined symbol" in str(error):
            raise ImportError(
                f"interestevo._C does not match the installed torch {torch.__version__} "
                f"({error}); {_REBUILD_HINT}"
            ) from error
        return False, f"interestevo._C could not be loaded ({error})"
    return True, None


EXTENSION_LOADED, EXTENSION_MISSING_REASON = _load_extension()
_fallback_warned = False


def use_reference() -> bool:
    """True when the ops run on the plain-PyTorch reference (INTERESTEVO_REFERENCE=1 forces it)."""
    return not EXTENSION_LOADED or os.environ.get("INTERESTEVO_REFERENCE", "0") not in ("", "0")


def _warn_fallback_once() -> None:
    global _fallback_warned
    if not _fallback_warned and not EXTENSION_LOADED:
        _fallback_warned = True
        warnings.warn(
            f"{EXTENSION_MISSING_REASON}; TimeLSTM runs on the plain-PyTorch reference, which is "
            f"correct but slow. {_REBUILD_HINT}",
            RuntimeWarning,
            stacklevel=3,
        )


def extension_info() -> dict:
    """What the compiled extension was built for and which kernels are registered."""
    info = _build_info()
    has_kernel = torch._C._dispatch_has_kernel_for_dispatch_key
    op = "interestevo::time_lstm_forward"
    return {
        "interestevo_extension_loaded": EXTENSION_LOADED,
        "reason_not_loaded": EXTENSION_MISSING_REASON,
        "torch_installed": torch.__version__,
        "torch_built_against": info.TORCH_VERSION if info else None,
        "cpu_kernels": EXTENSION_LOADED and has_kernel(op, "CPU"),
        "cpu_vectors": info.CPU_VECTORS if info else None,
        "cuda_kernels": EXTENSION_LOADED and has_kernel(op, "CUDA"),
        "cuda_version_built": info.CUDA_VERSION if info else None,
        "cuda_architectures": info.CUDA_ARCH_LIST if info and info.WITH_CUDA else None,
        "cuda_available": torch.cuda.is_available(),
    }


PUBLIC_NAMESPACE = "interestevo"
# The CUDA kernels' code compiled for the CPU (csrc/cpu/emulated_cuda.cpp): for the tests only.
EMULATED_CUDA_NAMESPACE = "interestevo_emulated_cuda"
TENSOR_ARGUMENTS = ("input", "dt", "lengths", "h0", "c0", "weight_ih", "weight_hh", "bias",
                    "weight_decomp", "bias_decomp", "decay_rate")
_op_namespace = PUBLIC_NAMESPACE


def _check_dt_dtype(dt, input):
    """The real kernels' dt rule, so that a traced graph fails where eager would."""
    math_dtype = torch.float64 if input.dtype == torch.float64 else torch.float32
    if dt.dtype != math_dtype:
        raise RuntimeError(f"time_lstm: dt must be {math_dtype} (the math dtype of {input.dtype} "
                           f"input), got {dt.dtype}")


def _forward_fake(input, dt, lengths, h0, c0, weight_ih, weight_hh, bias, weight_decomp,
                  bias_decomp, decay_rate, decay_mode, decomposition):
    _check_dt_dtype(dt, input)
    steps, batch = input.shape[0], input.shape[1]
    hidden = weight_hh.shape[1]
    state = input.new_empty(steps + 1, batch, hidden)
    short_memory = (
        input.new_empty(steps, batch, hidden)
        if decomposition and decay_mode != DECAY_MODE_IDS["none"]
        else input.new_empty(0)
    )
    return (input.new_empty(steps, batch, hidden), h0.new_empty(batch, hidden),
            c0.new_empty(batch, hidden), input.new_empty(steps, batch, 4 * hidden),
            state, torch.empty_like(state), short_memory)


def _inference_fake(input, dt, lengths, h0, c0, weight_ih, weight_hh, bias, weight_decomp,
                    bias_decomp, decay_rate, decay_mode, decomposition):
    _check_dt_dtype(dt, input)
    steps, batch, hidden = input.shape[0], input.shape[1], weight_hh.shape[1]
    return (input.new_empty(steps, batch, hidden), h0.new_empty(batch, hidden),
            c0.new_empty(batch, hidden))


def _backward_fake(grad_output, grad_h_n, grad_c_n, input, dt, lengths, weight_ih, weight_hh,
                   weight_decomp, decay_rate, gates, hiddens, cells, short_memory, decay_mode,
                   decomposition):
    hidden = weight_hh.shape[1]
    decomp = decomposition and weight_decomp is not None
    def new(t):  # the real op returns contiguous gradients whatever the inputs' strides
        return t.new_empty(t.shape)

    return (new(input), new(grad_h_n), new(grad_c_n), new(weight_ih), new(weight_hh),
            weight_hh.new_empty(4 * hidden),
            new(weight_decomp) if decomp else input.new_empty(0),
            weight_hh.new_empty(hidden) if decomp else input.new_empty(0),
            new(decay_rate) if decay_rate is not None and decay_mode == DECAY_MODE_IDS["exp"]
            else input.new_empty(0))


def _setup_context(ctx, inputs, output):
    (input, dt, lengths, h0, c0, weight_ih, weight_hh, bias, weight_decomp, bias_decomp,
     decay_rate, decay_mode, decomposition) = inputs
    _out, _h_n, _c_n, gates, hiddens, cells, short_memory = output
    # h0, c0 and the biases are saved only for a double backward (see _backward_with_graph)
    ctx.save_for_backward(input, dt, lengths, h0, c0, weight_ih, weight_hh, bias, weight_decomp,
                          bias_decomp, decay_rate, gates, hiddens, cells, short_memory)
    ctx.decay_mode = decay_mode
    ctx.decomposition = decomposition
    ctx.mark_non_differentiable(gates, hiddens, cells, short_memory)
    ctx.set_materialize_grads(False)  # no zero-filled grads for the saved activations


def _backward_for(namespace: str):
    backward_op = getattr(torch.ops, namespace).time_lstm_backward

    def backward(ctx, grad_output, grad_h_n, grad_c_n, *_saved_grads):
        if torch.is_grad_enabled():  # create_graph=True: the gradient must itself be differentiable
            return _backward_with_graph(ctx, grad_output, grad_h_n, grad_c_n)
        (input, dt, lengths, _h0, _c0, weight_ih, weight_hh, bias, weight_decomp, bias_decomp,
         decay_rate, gates, hiddens, cells, short_memory) = ctx.saved_tensors
        steps, batch, hidden = input.shape[0], input.shape[1], weight_hh.shape[1]
        zeros = input.new_zeros(batch, hidden)
        grad_output = input.new_zeros(steps, batch, hidden) if grad_output is None else grad_output
        grads = backward_op(
            grad_output, zeros if grad_h_n is None else grad_h_n,
            zeros if grad_c_n is None else grad_c_n, input, dt, lengths, weight_ih, weight_hh,
            weight_decomp, decay_rate, gates, hiddens, cells, short_memory, ctx.decay_mode,
            ctx.decomposition)
        (grad_input, grad_h0, grad_c0, grad_w_ih, grad_w_hh, grad_bias, grad_w_d, grad_b_d,
         grad_rate) = grads
        return (grad_input, None, None, grad_h0, grad_c0, grad_w_ih, grad_w_hh,
                grad_bias if bias is not None else None,
                grad_w_d if weight_decomp is not None else None,
                grad_b_d if bias_decomp is not None else None,
                grad_rate if decay_rate is not None else None, None, None)

    return backward


def _backward_with_graph(ctx, grad_output, grad_h_n, grad_c_n):
    """The gradients as a differentiable graph, for double backward (gradient penalties,
    meta-learning): the plain-PyTorch reference's own autograd, recomputed from the saved inputs.
    Correct to every order; slow, as the reference is."""
    saved = dict(zip(TENSOR_ARGUMENTS, ctx.saved_tensors[:len(TENSOR_ARGUMENTS)]))
    decay = {mode_id: name for name, mode_id in DECAY_MODE_IDS.items()}[ctx.decay_mode]
    with torch.enable_grad():
        outputs = reference.time_lstm_layer_ref(
            saved["input"], saved["dt"], saved["lengths"], saved["h0"], saved["c0"],
            saved["weight_ih"], saved["weight_hh"], saved["bias"], None, saved["weight_decomp"],
            saved["bias_decomp"], saved["decay_rate"], decay, ctx.decomposition)
    pairs = [(out, grad) for out, grad in zip(outputs, (grad_output, grad_h_n, grad_c_n))
             if grad is not None]
    wanted = [index for index, name in enumerate(TENSOR_ARGUMENTS)  # Δt is data: no gradient
              if ctx.needs_input_grad[index] and saved[name] is not None
              and name not in ("dt", "lengths")]
    grads = [None] * (len(TENSOR_ARGUMENTS) + 2)  # + decay_mode, decomposition
    if pairs and wanted:
        found = torch.autograd.grad(
            [out for out, _ in pairs], [saved[TENSOR_ARGUMENTS[i]] for i in wanted],
            [grad for _, grad in pairs], create_graph=True, allow_unused=True)
        for index, grad in zip(wanted, found):
            grads[index] = grad
    return tuple(grads)


if EXTENSION_LOADED:
    for _namespace in (PUBLIC_NAMESPACE, EMULATED_CUDA_NAMESPACE):
        torch.library.register_fake(f"{_namespace}::time_lstm_forward", _forward_fake)
        torch.library.register_fake(f"{_namespace}::time_lstm_inference", _inference_fake)
        torch.library.register_fake(f"{_namespace}::time_lstm_backward", _backward_fake)
        torch.library.register_autograd(f"{_namespace}::time_lstm_forward",
                                        _backward_for(_namespace), setup_context=_setup_context)


# Which op namespaces cast for themselves under autocast, per device (csrc/autocast.h): CUDA's
# kernels take float16/bfloat16; the CPU kernels are float32/float64 only and have no autocast kernel.
_AUTOCAST_KERNELS = {
    (namespace, device): EXTENSION_LOADED and torch._C._dispatch_has_kernel_for_dispatch_key(
        f"{namespace}::time_lstm_forward", key)
    for namespace in (PUBLIC_NAMESPACE, EMULATED_CUDA_NAMESPACE)
    for device, key in (("cpu", "AutocastCPU"), ("cuda", "AutocastCUDA"))
}


def casts_under_autocast(device_type: str) -> bool:
    """Whether time_lstm_layer, under torch.autocast on this device, casts its arguments to the
    autocast dtype and runs in it (the op's autocast kernel)."""
    return not use_reference() and _AUTOCAST_KERNELS.get((_op_namespace, device_type), False)


@contextmanager
def _emulated_cuda_kernels():
    """Runs TimeLSTM on the CUDA kernels' code compiled for the CPU (tests only; not thread-safe)."""
    global _op_namespace
    previous, _op_namespace = _op_namespace, EMULATED_CUDA_NAMESPACE
    try:
        yield
    finally:
        _op_namespace = previous


def time_lstm_layer(
    input: Tensor,
    dt: Tensor,
    lengths: Optional[Tensor],
    h0: Tensor,
    c0: Tensor,
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias_ih: Optional[Tensor],
    bias_hh: Optional[Tensor],
    weight_decomp: Optional[Tensor],
    bias_decomp: Optional[Tensor],
    decay_rate: Optional[Tensor],
    decay: str,
    decomposition: bool,
) -> tuple[Tensor, Tensor, Tensor]:
    """One layer over a (T, B, I) sequence; returns output (T, B, H), h_n (B, H), c_n (B, H).

    Arguments are assumed validated (TimeLSTM does it); lengths is int64 on input's device.
    """
    if use_reference():
        _warn_fallback_once()
        return reference.time_lstm_layer_ref(
            input, dt, lengths, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, weight_decomp,
            bias_decomp, decay_rate, decay, decomposition)
    bias = bias_ih + bias_hh if bias_ih is not None else None  # modules have both or neither
    args = (input, dt, lengths, h0, c0, weight_ih, weight_hh, bias,
            weight_decomp if decomposition else None, bias_decomp if decomposition else None,
            decay_rate if decay == "exp" else None, DECAY_MODE_IDS[decay], decomposition)
    op = getattr(torch.ops, _op_namespace)
    if not _needs_grad(args):
        return op.time_lstm_inference(*args)
    output, h_n, c_n, *_ = op.time_lstm_forward(*args)
    return output, h_n, c_n


def _needs_grad(args) -> bool:
    """Whether autograd will need the saved activations (else the op saves none)."""
    return torch.is_grad_enabled() and any(
        isinstance(a, Tensor) and a.requires_grad for a in args)
