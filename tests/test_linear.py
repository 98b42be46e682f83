"""The serving kernels behind `Linear`: same products as nn.Linear, rebuilt when weights change."""

import os
import platform

import pytest
import torch
import torch.nn.functional as F

from aurora_sim.errors import AuroraError
from aurora_sim.models.linear import ONEDNN, Linear, fp16_available, set_weight_format


@pytest.fixture
def layer():
    torch.manual_seed(0)
    return Linear(96, 160, bias=True)


@pytest.mark.parametrize("shape", [(1, 96), (1, 1, 96), (3, 96), (2, 5, 96), (8, 4, 96)])
def test_fp32_serving_matches_nn_linear(layer, shape):
    x = torch.randn(shape)
    with torch.inference_mode():
        got = layer(x)
    assert got.shape == (*shape[:-1], 160)
    torch.testing.assert_close(got, F.linear(x, layer.weight, layer.bias), rtol=1e-5, atol=1e-5)


def test_one_row_and_many_rows_agree(layer):
    """A row's result does not depend on how many rows share the product (to float rounding)."""
    x = torch.randn(6, 96)
    with torch.no_grad():
        together = layer(x)
        alone = torch.cat([layer(x[i : i + 1]) for i in range(6)])
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(not fp16_available(), reason="this torch build has no FBGEMM fp16 kernel")
def test_fp16_is_the_fp32_product_of_rounded_weights(layer):
    set_weight_format(layer, "fp16")
    x = torch.randn(4, 3, 96)
    with torch.no_grad():
        got = layer(x)
    rounded = F.linear(x, layer.weight.half().float(), layer.bias)
    torch.testing.assert_close(got, rounded, rtol=1e-5, atol=1e-5)
    assert not torch.equal(got, F.linear(x, layer.weight, layer.bias))  # really a different model


@pytest.mark.parametrize("fmt", ["fp32", "fp16"])
def test_packed_copy_follows_weight_updates(layer, fmt):
    if fmt == "fp16" and not fp16_available():
        pytest.skip("this torch build has no FBGEMM fp16 kernel")
    set_weight_format(layer, fmt)
    x = torch.randn(5, 96)
    with torch.no_grad():
        before = layer(x)
        layer.weight.mul_(-2.0)  # an optimizer step: in place, bumps the version
        after = layer(x)
    torch.testing.assert_close(after - layer.bias, -2.0 * (before - layer.bias), rtol=1e-3, atol=1e-3)


def test_training_path_has_gradients(layer):
    set_weight_format(layer, "fp16" if fp16_available() else "fp32")
    x = torch.randn(5, 96)
    layer(x).pow(2).sum().backward()
    assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0


def test_packed_under_inference_mode_is_reusable_outside_it(layer):
    x = torch.randn(4, 96)
    with torch.inference_mode():
        a = layer(x)
    with torch.no_grad():
        b = layer(x)
    torch.testing.assert_close(a, b)


def test_bad_format_is_refused(layer):
    with pytest.raises(AuroraError, match="unknown weight format 'int3'"):
        set_weight_format(layer, "int3")


@pytest.mark.skipif(
    platform.machine() != "x86_64" or os.environ.get("AURORA_ONEDNN_LINEAR") == "0",
    reason="the oneDNN and FBGEMM kernels are expected on x86-64 torch wheels",
)
def test_kernels_in_use_here():
    """On the machines this project targets (x86 torch wheels) both fast paths exist; a build
    without them silently falls back to nn.Linear, which this makes visible."""
    assert ONEDNN and fp16_available()
