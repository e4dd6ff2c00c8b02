"""validation.no_value_checks(): no tensor value is read on the host (nothing a CUDA graph capture
or a device sync would trip on), while the default mode keeps its clear errors."""

import pytest
import torch

from interestevo import TimeLSTM, TimeLSTMCell
from interestevo.validation import no_value_checks

from .helpers import requires_extension

pytestmark = requires_extension
HOST_READS = ("__bool__", "__int__", "__float__", "item", "tolist")


@pytest.fixture
def forbid_host_reads(monkeypatch):
    """Makes every way of reading a tensor's value on the host raise."""
    def refuse(name):
        def method(self, *args, **kwargs):
            raise AssertionError(f"Tensor.{name} called: a host read of a tensor value")
        return method

    def install():
        for name in HOST_READS:
            monkeypatch.setattr(torch.Tensor, name, refuse(name))
    return install


def run_once(module):
    torch.manual_seed(0)
    inputs = torch.randn(6, 3, 4, requires_grad=True)
    dt, lengths = torch.rand(6, 3) * 5, torch.tensor([6, 2, 0])
    output, (h_n, c_n) = module(inputs, dt=dt, lengths=lengths)
    (output.sum() + h_n.sum() + c_n.sum()).backward()
    return output


def test_default_mode_reads_values_and_the_fixture_catches_it(forbid_host_reads):
    module = TimeLSTM(4, 8)
    forbid_host_reads()
    with pytest.raises(AssertionError, match="host read"):
        run_once(module)


def test_no_value_checks_reads_no_tensor_value(forbid_host_reads, monkeypatch):
    module = TimeLSTM(4, 8, num_layers=2)
    expected = run_once(module)
    forbid_host_reads()
    with no_value_checks():
        output = run_once(module)
        cell = TimeLSTMCell(4, 8)
        cell(torch.randn(3, 4), dt=torch.rand(3))
    monkeypatch.undo()  # comparing reads values
    torch.testing.assert_close(output, expected)


def test_no_value_checks_skips_only_value_checks():
    module = TimeLSTM(4, 8)
    inputs = torch.randn(6, 3, 4)
    with no_value_checks():
        module(inputs, dt=-torch.ones(6, 3))  # not checked: the caller vouches for the values
        with pytest.raises(ValueError, match=r"dt must have shape"):
            module(inputs, dt=torch.ones(3, 6))
    with pytest.raises(ValueError, match="dt must be finite and >= 0"):
        module(inputs, dt=-torch.ones(6, 3))  # checked again after the block
