"""Second-order gradients through the op (create_graph=True): computed, never silently zero."""

import pytest
import torch

from interestevo import TimeLSTM

from .helpers import MODES, requires_extension
from .test_op_registration import differentiable_outputs, op_arguments

pytestmark = requires_extension


@pytest.mark.parametrize("decay,decomposition", MODES)
@pytest.mark.parametrize("lengths", [True, False])
def test_gradgradcheck(decay, decomposition, lengths):
    torch.manual_seed(0)
    args = op_arguments(decay, decomposition, steps=3, batch=3, hidden=2, lengths=lengths)
    assert torch.autograd.gradgradcheck(differentiable_outputs, args, eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("decay,decomposition", [("exp", True), ("log", False), ("none", False)])
def test_first_order_gradients_with_a_graph_match_the_op(decay, decomposition):
    torch.manual_seed(1)
    module = TimeLSTM(3, 5, num_layers=2, decay=decay, decomposition=decomposition).double()
    inputs = torch.randn(6, 4, 3, dtype=torch.float64, requires_grad=True)
    dt, lengths = torch.rand(6, 4, dtype=torch.float64) * 9, torch.tensor([6, 0, 3, 5])
    params = [inputs, *module.parameters()]

    def gradients(create_graph):
        output, (h_n, c_n) = module(inputs, dt=dt, lengths=lengths)
        loss = output.square().sum() + h_n.sum() + c_n.square().sum()
        return torch.autograd.grad(loss, params, create_graph=create_graph, allow_unused=True)

    for with_graph, without in zip(gradients(True), gradients(False)):
        assert with_graph is not None and with_graph.requires_grad
        torch.testing.assert_close(with_graph.detach(), without, rtol=1e-10, atol=1e-12)


def test_gradient_penalty_has_a_nonzero_second_derivative():
    torch.manual_seed(2)
    module = TimeLSTM(3, 4).double()
    inputs = torch.randn(5, 2, 3, dtype=torch.float64, requires_grad=True)
    output, _ = module(inputs, dt=torch.rand(5, 2, dtype=torch.float64))
    (grad_input,) = torch.autograd.grad(output.sum(), inputs, create_graph=True)
    penalty = grad_input.square().sum()
    penalty.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())
