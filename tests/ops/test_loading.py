"""Loading the extension: a torch mismatch is one clear error; a missing build falls back to the
reference with a single warning; `interestevo info` reports what was built."""

import types
import warnings

import pytest
import torch

from interestevo import TimeLSTM, extension_info, ops


def fake_build_info(torch_version, vectors="AVX2"):
    return types.SimpleNamespace(TORCH_VERSION=torch_version, CUDA_VERSION="13.0", WITH_CUDA=True,
                                 CUDA_ARCH_LIST="8.0;9.0", CPU_VECTORS=vectors)


def test_extension_built_for_another_torch_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(ops, "_build_info", lambda: fake_build_info("1.0.0+old"))
    with pytest.raises(ImportError) as error:
        ops._load_extension()
    message = str(error.value)
    assert "built for torch 1.0.0+old" in message
    assert f"torch {torch.__version__} is installed" in message
    assert "pip install --no-build-isolation" in message


def test_missing_extension_is_reported_not_raised(monkeypatch):
    monkeypatch.setattr(ops, "_build_info", lambda: None)
    assert ops._load_extension() == (False, "the compiled extension interestevo._C is not built")


def test_fallback_to_reference_warns_once(monkeypatch):
    monkeypatch.setattr(ops, "EXTENSION_LOADED", False)
    monkeypatch.setattr(ops, "EXTENSION_MISSING_REASON", "the compiled extension interestevo._C is not built")
    monkeypatch.setattr(ops, "_fallback_warned", False)
    module = TimeLSTM(3, 4)
    inputs, dt = torch.randn(5, 2, 3), torch.rand(5, 2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first, _ = module(inputs, dt=dt)
        second, _ = module(inputs, dt=dt)
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(messages) == 1 and "plain-PyTorch reference" in messages[0]
    torch.testing.assert_close(first, second)


def test_extension_info_describes_the_build():
    info = extension_info()
    assert info["torch_installed"] == torch.__version__
    if info["interestevo_extension_loaded"]:
        assert info["torch_built_against"] == torch.__version__
        assert info["cpu_kernels"] is True
        if info["cuda_kernels"]:
            assert info["cuda_architectures"]
