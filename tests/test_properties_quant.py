"""Property tests of fake quantization (hypothesis): the library's quantizers against PyTorch's own
``torch.fake_quantize_per_channel_affine`` / ``torch.fake_quantize_per_tensor_affine`` on generated
tensors, bit-widths and ranges, the half-step error bound, the straight-through gradient, and the
errors bad bit-widths and ranges get."""

import math

import numpy as np
import pytest
import torch

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

from companion.quant import act_qparams, fake_quant_act, fake_quant_weight, weight_grid, weight_scale  # noqa: E402

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True)
# magnitudes of 1e-20 .. 1e3 and exact zeros: far below 1e-38 the scale's reciprocal overflows float32,
# in PyTorch's kernels as in any x * (1/s) rounding, and no network has such weights
magnitudes = st.floats(2.0**-66, 1e3, width=32)
finite = st.one_of(st.just(0.0), st.builds(lambda sign, m: sign * m, st.sampled_from([-1.0, 1.0]), magnitudes))
weights = hnp.arrays(np.float32, st.tuples(st.integers(1, 6), st.integers(1, 12)), elements=finite)
activations = hnp.arrays(np.float32, st.integers(1, 64), elements=finite)
weight_bits = st.integers(2, 16)
act_bits = st.integers(1, 16)
conventions = st.sampled_from(["ssql", "conventional"])


def _torch_weight(w: torch.Tensor, bits: int, convention: str) -> torch.Tensor:
    qmin, qmax, _ = weight_grid(bits, convention)
    scale = weight_scale(w, bits, convention)
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    zeros = torch.zeros(len(scale), dtype=torch.int32)
    return torch.fake_quantize_per_channel_affine(w, scale, zeros, 0, qmin, qmax)


@SETTINGS
@given(w=weights, bits=weight_bits, convention=conventions)
def test_weight_quantizer_equals_torch_per_channel(w, bits, convention):
    w = torch.from_numpy(w)
    expected = _torch_weight(w, bits, convention)
    assert torch.equal(fake_quant_weight(w, bits, convention), expected)
    # the autograd path (own rounding and clamp with the straight-through gradient) gives the same values
    wg = w.clone().requires_grad_(True)
    assert torch.equal(fake_quant_weight(wg, bits, convention, detach_scale=True).detach(), expected)


@SETTINGS
@given(w=weights, bits=weight_bits, convention=conventions)
def test_weight_error_is_at_most_half_a_step_and_codes_stay_on_the_grid(w, bits, convention):
    w = torch.from_numpy(w)
    qmin, qmax, _ = weight_grid(bits, convention)
    s = weight_scale(w, bits, convention).reshape(-1, 1)
    q = fake_quant_weight(w, bits, convention)
    safe = torch.where(s > 0, s, torch.ones_like(s))
    codes = q / safe
    assert torch.all((codes - codes.round()).abs() <= 1e-3 + 1e-6 * codes.abs())  # float32 division
    assert codes.round().min() >= qmin and codes.round().max() <= qmax
    assert torch.all((q - w).abs() <= s / 2 + 1e-6 * w.abs().amax(1, keepdim=True))


def _qparams_ok(lo, hi, bits, convention):
    scale, zero = act_qparams(lo, hi, bits, convention)
    return float(scale), float(zero)


@SETTINGS
@given(x=activations, a=finite, b=finite, bits=act_bits, convention=conventions)
def test_activation_quantizer_equals_torch_per_tensor(x, a, b, bits, convention):
    lo, hi = min(a, b), max(a, b)
    x = torch.from_numpy(x)
    scale, zero = _qparams_ok(lo, hi, bits, convention)
    out = fake_quant_act(x, bits, lo, hi, convention)
    if scale == 0:
        assert out is x  # a zero-width range: nothing to quantize
        return
    top = 2**bits - 1
    if 0 <= zero <= top:
        expected = torch.fake_quantize_per_tensor_affine(x, scale, int(zero), 0, top)
    else:  # PyTorch's kernel refuses a zero-point outside the codes: the formula in float32
        s = np.float32(scale)
        q = np.clip(np.round(x.numpy() * (np.float32(1.0) / s)) + np.float32(zero), 0, top)
        expected = torch.from_numpy(((q - np.float32(zero)) * s).astype(np.float32))
    assert torch.equal(out, expected)


@SETTINGS
@given(x=activations, a=finite, b=finite, bits=act_bits)
def test_activation_error_bound_and_straight_through_gradient(x, a, b, bits):
    lo, hi = min(a, b), max(a, b)
    scale, zero = _qparams_ok(lo, hi, bits, "ssql")
    if scale == 0:
        return
    x = torch.from_numpy(x).requires_grad_(True)
    out = fake_quant_act(x, bits, lo, hi)
    out.sum().backward()
    # the grid covers [(0 - z) s, (2^b - 1 - z) s]; inside it the error is at most half a step
    g_lo, g_hi = (0 - zero) * scale, (2**bits - 1 - zero) * scale
    inside = (x.detach() >= g_lo) & (x.detach() <= g_hi)
    err = (out.detach() - x.detach()).abs()
    assert torch.all(err[inside] <= scale / 2 * (1 + 1e-4) + 1e-6 * max(abs(lo), abs(hi)))
    # straight-through: gradient 1 where x lands on the grid, 0 where the clamp cuts it off
    codes = torch.round(x.detach() * (1.0 / torch.tensor(scale))) + zero
    kept = (codes >= 0) & (codes <= 2**bits - 1)
    # (1 to float rounding: the gradient passes through the scale and its reciprocal)
    torch.testing.assert_close(x.grad, kept.float(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("bits", [1])
@pytest.mark.parametrize("convention", ["ssql", "conventional"])
def test_one_bit_weights_are_refused(bits, convention):
    w = torch.randn(4, 3)
    with pytest.raises(ValueError, match=r"\[2, 16\].*rounds every weight to 0"):
        fake_quant_weight(w, bits, convention)


@pytest.mark.parametrize("lo, hi", [(math.nan, 1.0), (0.0, math.nan), (0.0, math.inf), (-math.inf, 1.0),
                                    (-3e38, 3e38)])
def test_non_finite_or_overflowing_activation_ranges_are_refused(lo, hi):
    x = torch.linspace(-1, 1, 9)
    with pytest.raises(ValueError, match="activation range"):
        fake_quant_act(x, 4, lo, hi)
