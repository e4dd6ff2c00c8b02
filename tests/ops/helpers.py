"""Shared helpers for the operator tests: run a module on the fused op and on the reference with
cloned inputs, and collect every gradient."""

import os
from contextlib import contextmanager

import torch

from interestevo import ops

MODES = [(decay, decomposition) for decay in ("exp", "log", "none") for decomposition in (True, False)]
requires_extension = __import__("pytest").mark.skipif(
    not ops.EXTENSION_LOADED, reason="the compiled extension is not built")


@contextmanager
def reference_only():
    previous = os.environ.get("INTERESTEVO_REFERENCE")
    os.environ["INTERESTEVO_REFERENCE"] = "1"
    try:
        yield
    finally:
        if previous is None:
            del os.environ["INTERESTEVO_REFERENCE"]
        else:
            os.environ["INTERESTEVO_REFERENCE"] = previous


def run_with_grads(module, inputs, hx=None, seed=0, **kwargs):
    """Forward, a random-weighted loss over every output, backward. Returns outputs and grads
    (None grads, i.e. unused parameters, become zeros so both paths compare alike)."""
    inputs = inputs.detach().clone().requires_grad_(True)
    if hx is not None:
        hx = tuple(s.detach().clone().requires_grad_(True) for s in hx)
    module.zero_grad(set_to_none=True)
    output, (h_n, c_n) = module(inputs, hx, **kwargs)
    generator = torch.Generator().manual_seed(seed)
    # drawn in float64 whatever the dtype, so every dtype and device sees the same weights
    loss = sum((t * torch.randn(t.shape, generator=generator, dtype=torch.float64).to(t.device, t.dtype)).sum()
               for t in (output, h_n, c_n))
    loss.backward()
    grads = {"input": inputs.grad}
    if hx is not None:
        grads["h0"], grads["c0"] = hx[0].grad, hx[1].grad
    for name, param in module.named_parameters():
        grads[name] = torch.zeros_like(param) if param.grad is None else param.grad
    return (output.detach(), h_n.detach(), c_n.detach()), grads


def assert_close_all(actual, expected, **tolerances):
    (out_a, h_a, c_a), grads_a = actual
    (out_e, h_e, c_e), grads_e = expected
    torch.testing.assert_close(out_a, out_e, **tolerances)
    torch.testing.assert_close(h_a, h_e, **tolerances)
    torch.testing.assert_close(c_a, c_e, **tolerances)
    assert grads_a.keys() == grads_e.keys()
    for name in grads_e:
        torch.testing.assert_close(grads_a[name], grads_e[name], msg=lambda m: f"grad {name}: {m}",
                                   **tolerances)
