"""Op-level cases shared by the emulated-CUDA tests (CPU) and the CUDA tests: the op's forward and
backward ops called directly in a storage dtype, against the float64 reference's autograd run on
the same (rounded) values. Every input, including a given h0/c0, gets its gradient checked."""

from dataclasses import dataclass

import torch

from interestevo import reference
from interestevo.ops import DECAY_MODE_IDS

# Per storage dtype, relative to each tensor's scale: the math is float32 inside, but states,
# gates and gradients are stored in the dtype (mamba's figures for the half types).
TOLERANCES = {
    torch.float64: dict(rtol=1e-9, atol=1e-10),
    torch.float32: dict(rtol=1e-4, atol=2e-5),
    torch.float16: dict(rtol=3e-3, atol=5e-3),
    torch.bfloat16: dict(rtol=3e-2, atol=5e-2),
}
GRAD_NAMES = ("input", "h0", "c0", "weight_ih", "weight_hh", "bias", "weight_decomp", "bias_decomp",
              "decay_rate")


@dataclass
class Case:
    decay: str
    decomposition: bool
    op_args: tuple       # the op's 13 arguments, in the storage dtype (dt in the math dtype)
    grad_outputs: tuple  # dL/d output, dL/d h_n, dL/d c_n


def make_case(decay, decomposition, dtype, steps, batch, input_size, hidden, seed=0, lengths=None,
              device="cpu"):
    generator = torch.Generator().manual_seed(seed)

    def rand(*shape, scale=1.0):
        values = torch.randn(*shape, generator=generator, dtype=torch.float64) * scale
        return values.to(device, dtype)

    if lengths is None:  # one full row, one empty row, the rest anywhere in [0, T]
        lengths = torch.randint(0, steps + 1, (batch,), generator=generator)
        lengths[0], lengths[1 % batch] = steps, 0
    lengths = torch.as_tensor(lengths, dtype=torch.int64).to(device)
    math_dtype = torch.float64 if dtype == torch.float64 else torch.float32
    dt = (torch.rand(steps, batch, generator=generator, dtype=torch.float64) * 30).to(device, math_dtype)
    weight_scale = hidden ** -0.5
    op_args = (
        rand(steps, batch, input_size), dt, lengths, rand(batch, hidden), rand(batch, hidden),
        rand(4 * hidden, input_size, scale=weight_scale), rand(4 * hidden, hidden, scale=weight_scale),
        rand(4 * hidden, scale=0.1),
        rand(hidden, hidden, scale=weight_scale) if decomposition else None,
        rand(hidden, scale=0.1) if decomposition else None,
        rand(hidden) if decay == "exp" else None,
        DECAY_MODE_IDS[decay], decomposition,
    )
    grad_outputs = (rand(steps, batch, hidden), rand(batch, hidden), rand(batch, hidden))
    return Case(decay, decomposition, op_args, grad_outputs)


def op_gradients(namespace, case):
    """Outputs and gradients from the op's own forward and backward ops in `namespace`."""
    (input, dt, lengths, h0, c0, w_ih, w_hh, bias, w_d, b_d, rate, mode, decomposition) = case.op_args
    output, h_n, c_n, gates, hiddens, cells, short = namespace.time_lstm_forward(*case.op_args)
    grads = namespace.time_lstm_backward(*case.grad_outputs, input, dt, lengths, w_ih, w_hh, w_d, rate,
                                         gates, hiddens, cells, short, mode, decomposition)
    present = {"input": input, "h0": h0, "c0": c0, "weight_ih": w_ih, "weight_hh": w_hh, "bias": bias,
               "weight_decomp": w_d, "bias_decomp": b_d, "decay_rate": rate}
    result = {"output": output, "h_n": h_n, "c_n": c_n}
    result.update({f"grad_{name}": grad for name, grad in zip(GRAD_NAMES, grads)
                   if present[name] is not None})
    return result


def reference_gradients(case):
    """The same outputs and gradients from the float64 reference on the same (rounded) values."""
    (input, dt, lengths, h0, c0, w_ih, w_hh, bias, w_d, b_d, rate, _mode, _decomp) = case.op_args
    leaves = {name: t.detach().cpu().double().requires_grad_(True)
              for name, t in zip(GRAD_NAMES, (input, h0, c0, w_ih, w_hh, bias, w_d, b_d, rate))
              if t is not None}
    output, h_n, c_n = reference.time_lstm_layer_ref(
        leaves["input"], dt.cpu().double(), lengths.cpu(), leaves["h0"], leaves["c0"],
        leaves["weight_ih"], leaves["weight_hh"], leaves["bias"], None, leaves.get("weight_decomp"),
        leaves.get("bias_decomp"), leaves.get("decay_rate"), case.decay, case.decomposition)
    loss = sum((out * grad.cpu().double()).sum()
               for out, grad in zip((output, h_n, c_n), case.grad_outputs))
    grads = torch.autograd.grad(loss, list(leaves.values()), allow_unused=True)
    result = {"output": output.detach(), "h_n": h_n.detach(), "c_n": c_n.detach()}
    for (name, leaf), grad in zip(leaves.items(), grads):
        result[f"grad_{name}"] = torch.zeros_like(leaf) if grad is None else grad
    return result


def assert_close_scaled(actual, expected, dtype, name):
    """Compares in float64 on the CPU, relative to the expected tensor's scale."""
    actual, expected = actual.detach().double().cpu(), expected.detach().double().cpu()
    scale = max(1.0, expected.abs().max().item()) if expected.numel() else 1.0
    torch.testing.assert_close(actual / scale, expected / scale, msg=lambda m: f"{name}: {m}",
                               **TOLERANCES[dtype])
