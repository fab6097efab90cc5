"""The quantization toolkit: agreement with PyTorch's fake-quant kernels, the SSQL convention's
half-step clip, the straight-through gradient, running a model at (w, a) bits, and bad inputs."""

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from companion.quant import (
    BitSampler, MinMaxObserver, QuantizedModel, act_qparams, check_bits, check_supported, fake_quant_act,
    fake_quant_weight, layer_sqnr, sqnr_db, weight_grid, weight_scale,
)

@pytest.fixture(autouse=True)
def _one_thread():
    """These models are tiny: a second thread only adds synchronisation."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


BITS = [1, 2, 3, 4, 6, 8, 12, 16]


def _weights(seed=0, shape=(16, 8, 3, 3)):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("convention", ["ssql", "conventional"])
@pytest.mark.parametrize("bits", BITS)
def test_weight_quantizer_matches_torch_per_channel(bits, convention):
    w = _weights(bits)
    if bits == 1:  # a 1-bit symmetric grid would round every weight to 0: refused
        with pytest.raises(ValueError, match=r"\[2, 16\].*got 1"):
            fake_quant_weight(w, bits, convention)
        return
    qmin, qmax, _ = weight_grid(bits, convention)
    scale = weight_scale(w, bits, convention)
    ref = torch.fake_quantize_per_channel_affine(w, scale, torch.zeros(16, dtype=torch.int32), 0, qmin, qmax)
    assert torch.equal(fake_quant_weight(w, bits, convention), ref)


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_ssql_weight_grid_clips_the_largest_positive_weight_by_half_a_step(bits):
    # make the positive maximum the largest magnitude in every channel
    w = _weights(bits)
    w[:, 0, 0, 0] = 1.5 * w.reshape(16, -1).abs().amax(1)
    scale = weight_scale(w, bits, "ssql")
    qmin, qmax, divisor = weight_grid(bits, "ssql")
    assert (qmin, qmax, divisor) == (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1, (2**bits - 1) / 2)
    zeros = torch.zeros(16, dtype=torch.int32)
    unclipped = torch.fake_quantize_per_channel_affine(w, scale, zeros, 0, qmin, qmax + 1)
    ours = fake_quant_weight(w, bits, "ssql")
    differ = ours != unclipped
    top = w == w.reshape(16, -1).amax(1).reshape(16, 1, 1, 1)
    # they can differ only at a channel's largest positive weight (w/s = 2^(b-1) - 1/2 rounds up,
    # unless float rounding lands just below the tie), and then by exactly one step
    assert differ.any() and not (differ & ~top).any()
    step = scale.reshape(16, 1, 1, 1).expand_as(w)
    torch.testing.assert_close((unclipped - ours)[differ], step[differ])
    # either way the largest weight lands half a step below its true value, on the top grid point
    torch.testing.assert_close((w - ours)[top], step[top] / 2, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(ours[top], qmax * step[top])
    # the conventional grid keeps both extremes exactly
    conv = fake_quant_weight(w, bits, "conventional") if bits >= 2 else None
    amax = w.reshape(16, -1).abs().amax(1)
    torch.testing.assert_close(conv.reshape(16, -1).abs().amax(1), amax)


def test_negative_extreme_is_not_clipped_in_ssql_grid():
    w = torch.tensor([[-1.0, 0.3, 0.5], [1.0, -0.2, 0.1]])
    s = 1 / 1.5  # max|w| / ((2^2 - 1) / 2)
    q = fake_quant_weight(w, 2, "ssql")
    unclamped = torch.round(w / s) * s
    # -1.5 steps rounds (half to even) to -2, the lowest grid point: the clamp does not touch it
    assert q[0, 0] == pytest.approx(-2 * s) and q[0, 0] == unclamped[0, 0]
    # +1.5 steps rounds to +2, outside the grid: clamped to +1
    assert q[1, 0] == pytest.approx(1 * s) and unclamped[1, 0] == pytest.approx(2 * s)


@pytest.mark.parametrize("bits", [1, 2, 4, 8, 16])
def test_activation_quantizer_matches_torch_per_tensor(bits):
    x = torch.randn(4, 8, 5, 5, generator=torch.Generator().manual_seed(bits)) * 2 + 0.3  # range contains 0
    for convention in ("ssql", "conventional"):
        scale, zero = act_qparams(x.min(), x.max(), bits, convention)
        ref = torch.fake_quantize_per_tensor_affine(x, float(scale), int(zero), 0, 2**bits - 1)
        torch.testing.assert_close(fake_quant_act(x, bits, x.min(), x.max(), convention), ref, rtol=0, atol=1e-6)


def test_readable_activation_formula_matches_torch_values_and_gradients():
    from companion.quant.fake_quant import _act_grid

    x = (torch.randn(500, generator=torch.Generator().manual_seed(5)) * 1.5).requires_grad_()
    for bits in (2, 3, 8):
        scale, zero = act_qparams(-1.0, 2.0, bits)
        x.grad = None
        ours = _act_grid(x, scale, zero, bits)
        ours.sum().backward()
        xt = x.detach().clone().requires_grad_()
        ref = torch.fake_quantize_per_tensor_affine(xt, float(scale), int(zero), 0, 2**bits - 1)
        ref.sum().backward()
        torch.testing.assert_close(ours, ref, rtol=0, atol=1e-6)
        torch.testing.assert_close(x.grad, xt.grad, rtol=1e-6, atol=0)


def test_weight_quantizer_same_with_and_without_autograd():
    w = _weights(6).requires_grad_()
    with torch.no_grad():
        fast = fake_quant_weight(w, 3)
    torch.testing.assert_close(fake_quant_weight(w, 3), fast, rtol=0, atol=1e-6)


def test_activation_conventions_differ_only_when_range_excludes_zero():
    x = torch.rand(1000, generator=torch.Generator().manual_seed(0)) + 0.5  # all positive
    a = fake_quant_act(x, 4, x.min(), x.max(), "ssql")
    b = fake_quant_act(x, 4, x.min(), x.max(), "conventional")
    assert not torch.equal(a, b)
    assert (a - x).abs().max() < (b - x).abs().max()  # the tighter SSQL range is finer
    # conventional: 0 is exactly on the grid; ReLU outputs (min 0) give zero-point 0 in both
    relu = torch.relu(torch.randn(1000))
    for convention in ("ssql", "conventional"):
        _, z = act_qparams(relu.min(), relu.max(), 4, convention)
        assert z == 0


@pytest.mark.parametrize("convention", ["ssql", "conventional"])
def test_error_shrinks_as_bits_grow(convention):
    w = _weights(1)
    errors = [(fake_quant_weight(w, b, convention) - w).abs().mean().item() for b in (2, 3, 4, 6, 8, 12)]
    assert all(a > b for a, b in zip(errors, errors[1:]))
    sq = [sqnr_db(w, fake_quant_weight(w, b, convention)) for b in (4, 6, 8)]
    assert 4 < (sq[2] - sq[0]) / 4 < 8  # about 6 dB per bit


def test_symmetric_grid_values():
    w = _weights(2)
    for bits in (2, 3, 4):
        q = fake_quant_weight(w, bits) / weight_scale(w, bits).reshape(-1, 1, 1, 1)
        ints = torch.round(q)
        torch.testing.assert_close(q, ints, rtol=0, atol=1e-4)
        assert ints.min() >= -(2 ** (bits - 1)) and ints.max() <= 2 ** (bits - 1) - 1


def test_full_precision_and_zero_ranges_are_identity():
    w = _weights(3)
    assert fake_quant_weight(w, 0) is w and fake_quant_weight(w, None) is w
    x = torch.randn(10)
    assert fake_quant_act(x, None, -1, 1) is x
    const = torch.full((10,), 0.7)
    assert torch.equal(fake_quant_act(const, 4, 0.7, 0.7), const)  # zero-width range: untouched
    zero_channel = w.clone()
    zero_channel[0] = 0
    out = fake_quant_weight(zero_channel, 4)
    assert torch.isfinite(out).all() and (out[0] == 0).all()


def test_straight_through_gradient_is_identity_inside_the_range():
    x = (torch.randn(200) * 0.5).requires_grad_()
    lo, hi = -0.6, 0.8
    fake_quant_act(x, 3, lo, hi).sum().backward()
    inside = (x.detach() >= lo) & (x.detach() <= hi)
    # (s * (1/s) is 1 up to a float ulp)
    torch.testing.assert_close(x.grad[inside], torch.ones(int(inside.sum())), rtol=1e-6, atol=0)
    far = (x.detach() < lo - 0.1) | (x.detach() > hi + 0.1)  # more than half a step (0.2 / 2) outside
    assert far.any() and torch.equal(x.grad[far], torch.zeros(int(far.sum())))
    # and it is the gradient of PyTorch's own fake-quant kernel
    scale, zero = act_qparams(lo, hi, 3)
    xt = x.detach().clone().requires_grad_()
    torch.fake_quantize_per_tensor_affine(xt, float(scale), int(zero), 0, 7).sum().backward()
    torch.testing.assert_close(x.grad, xt.grad, rtol=1e-6, atol=0)
    # weights with the scale held constant: identity everywhere except, possibly, at a channel's
    # largest positive weight (SSQL's clipped tie); again exactly PyTorch's per-channel gradient
    w = _weights(4).requires_grad_()
    fake_quant_weight(w, 4, detach_scale=True).sum().backward()
    top = w.detach() == w.detach().reshape(16, -1).amax(1).reshape(16, 1, 1, 1)
    torch.testing.assert_close(w.grad[~top], torch.ones(int((~top).sum())), rtol=1e-6, atol=0)
    wt = w.detach().clone().requires_grad_()
    torch.fake_quantize_per_channel_affine(wt, weight_scale(wt, 4).detach(), torch.zeros(16, dtype=torch.int32),
                                           0, -8, 7).sum().backward()
    torch.testing.assert_close(w.grad, wt.grad, rtol=1e-6, atol=0)
    # the SSQL default lets gradients reach the scale too (only through max|w|)
    w.grad = None
    fake_quant_weight(w, 4).sum().backward()
    changed = (w.grad - 1).abs() > 1e-5
    assert changed.any() and changed.reshape(16, -1).sum(1).max() <= 1


@pytest.mark.parametrize("bad", [-1, 17, 100])
def test_bits_out_of_range(bad):
    with pytest.raises(ValueError, match=r"\[1, 16\]"):
        check_bits(bad)
    with pytest.raises(ValueError):
        fake_quant_weight(_weights(), bad)


@pytest.mark.parametrize("bad", [4.0, 2.5, "8", True])
def test_bits_not_an_integer(bad):
    with pytest.raises(TypeError, match="integer"):
        check_bits(bad)
    with pytest.raises(TypeError, match="integer"):
        QuantizedModel(nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU()), bad, 8)


def test_other_bad_inputs():
    assert check_bits(np.int64(4)) == 4 and check_bits(None) == 0
    with pytest.raises(ValueError, match="rounds every weight to 0"):
        fake_quant_weight(_weights(), 1, "conventional")
    with pytest.raises(ValueError, match=r"w_bits must be in \[2, 16\]"):
        QuantizedModel(nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU()), 1, 8)
    with pytest.raises(ValueError, match="activation range must be finite"):
        fake_quant_act(torch.ones(3), 4, float("nan"), 1.0)
    with pytest.raises(ValueError, match="convention"):
        fake_quant_weight(_weights(), 4, "lsq")
    with pytest.raises(ValueError, match="per output channel"):
        fake_quant_weight(torch.randn(5), 4)
    with pytest.raises(TypeError, match="floating"):
        fake_quant_act(torch.arange(5), 4, 0, 4)
    with pytest.raises(ValueError, match="empty range"):
        act_qparams(1.0, 0.0, 4)
    with pytest.raises(ValueError, match="empty"):
        MinMaxObserver().update(torch.empty(0))
    with pytest.raises(ValueError, match="shapes"):
        sqnr_db(torch.ones(3), torch.ones(4))
    with pytest.raises(ValueError, match="low"):
        BitSampler((5, 4), (4, 8))


@pytest.mark.parametrize("layer", [nn.Conv1d(2, 2, 3), nn.LayerNorm(4), nn.GELU(), nn.MultiheadAttention(4, 2)])
def test_unsupported_layers_are_refused(layer):
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), layer)
    with pytest.raises(TypeError, match="cannot quantize"):
        QuantizedModel(model, 4, 4)
    with pytest.raises(TypeError, match=type(layer).__name__):
        check_supported(model)


def test_container_with_its_own_parameter_is_refused():
    class WithToken(nn.Module):
        def __init__(self):
            super().__init__()
            self.token = nn.Parameter(torch.zeros(4))
            self.conv = nn.Conv2d(1, 4, 3)

    with pytest.raises(TypeError, match="holds parameters"):
        QuantizedModel(WithToken())


@pytest.fixture(scope="module")
def resnet():
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=10)
    # small, nonzero running statistics make eval-mode outputs well scaled
    model.eval()
    return model


def test_resnet_runs_at_bits_with_one_copy_of_weights(resnet):
    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    before = {k: v.clone() for k, v in resnet.state_dict().items()}
    q = QuantizedModel(resnet, 8, 8)
    assert set(map(id, q.parameters())) == set(map(id, resnet.parameters()))  # nothing copied
    q.calibrate([x[:2], x[2:]])
    # observers sit after conv-BN-ReLU and after each block's add + ReLU, none before the add
    assert "relu" in q.observers and "layer1.0.relu" in q.observers and "layer1.0.relu:1" in q.observers
    assert len(q.observers) == 1 + 2 * 8
    with torch.no_grad():
        y = resnet(x)
        errors = {}
        for b in (16, 8, 4, 2):
            errors[b] = sqnr_db(y, q.set_bits(b, b)(x))
        q.set_bits(0, 0)
        fp_again = q(x)
    assert errors[8] > 25  # within a small tolerance of FP at 8 bits
    assert errors[16] > errors[8] > errors[4] > errors[2]
    # FP everywhere except the pinned 8/8 first conv: close to, but not exactly, FP
    assert 30 < sqnr_db(y, fp_again) < 80
    after = resnet.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # the wrapped model is untouched


def test_first_layer_pinned_and_overrides(resnet):
    q = QuantizedModel(resnet, 2, 4, overrides={"fc": (8, 0), "layer4": (0, 0)})
    assert q.first_conv == "conv1" and q.first_act == "relu"
    assert q.layer_bits("conv1") == (8, 8) and q.layer_bits("relu") == (8, 8)
    assert q.layer_bits("layer1.0.conv1") == (2, 4) and q.layer_bits("layer1.0.relu:1") == (2, 4)
    assert q.layer_bits("fc") == (8, 0) and q.layer_bits("layer4.1.conv2") == (0, 0)
    weights = q.quantized_weights()
    assert "conv1.weight" in weights and "layer4.0.conv1.weight" not in weights
    sq = layer_sqnr(q)
    assert sq["conv1"] > sq["layer1.0.conv1"] + 20  # 8 bits vs 2 bits
    unpinned = QuantizedModel(resnet, 2, 4, first=None)
    assert unpinned.layer_bits("conv1") == (2, 4)


def test_quantized_forward_needs_calibration(resnet):
    q = QuantizedModel(resnet, 4, 4)
    with pytest.raises(RuntimeError, match="calibrate"):
        q(torch.rand(1, 3, 32, 32))
    with torch.no_grad():
        QuantizedModel(resnet, 4, 0, first=None)(torch.rand(1, 3, 32, 32))  # weights only: no ranges needed


def test_gradients_reach_the_single_weight_copy():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    q = QuantizedModel(model, 3, 4)
    x = torch.randn(8, 1, 8, 8)
    with q.observing():
        model(x)
    assert set(q.observers) == {"2", "4"}
    q(x).pow(2).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_bit_sampler_covers_the_grid_and_is_reproducible():
    s = BitSampler((2, 8), (4, 8), seed=3)
    draws = [s() for _ in range(2000)]
    assert {w for w, _ in draws} == set(range(2, 9)) and {a for _, a in draws} == set(range(4, 9))
    again = BitSampler((2, 8), (4, 8), seed=3)
    assert [again() for _ in range(50)] == draws[:50]
    # the state travels in state_dict: a restored sampler continues the same sequence
    restored = BitSampler((2, 8), (4, 8), seed=99)
    restored.load_state_dict(again.state_dict())
    assert [restored() for _ in range(20)] == draws[50:70]
