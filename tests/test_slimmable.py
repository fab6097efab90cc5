import pytest
import torch
from torch import nn

from companion.slimmable import (SlimmableBatchNorm, SlimmableConv2d, SlimmableLinear, SlimmableResNet, active_channels,
                                 cost_at, make_divisible, recalibrate_bn, set_width)


@pytest.mark.parametrize("width", [0.25, 0.5, 0.75, 1.0])
def test_slim_conv_equals_a_plain_conv_from_the_first_channels(width):
    torch.manual_seed(0)
    slim = SlimmableConv2d(16, 32, 3, padding=1, bias=True, divisor=4)
    set_width(slim, width)
    c_out, c_in = active_channels(32, width, 4), active_channels(16, width, 4)
    plain = nn.Conv2d(c_in, c_out, 3, padding=1, bias=True)
    with torch.no_grad():
        plain.weight.copy_(slim.weight[:c_out, :c_in])
        plain.bias.copy_(slim.bias[:c_out])
    x = torch.randn(2, c_in, 8, 8)
    assert torch.equal(slim(x), plain(x))


def test_slim_linear_and_bn_equal_plain_layers():
    torch.manual_seed(0)
    lin = SlimmableLinear(32, 16, divisor=4)
    set_width(lin, 0.5)
    plain = nn.Linear(10, 8)
    with torch.no_grad():
        plain.weight.copy_(lin.weight[:8, :10])
        plain.bias.copy_(lin.bias[:8])
    x = torch.randn(3, 10)
    assert torch.allclose(lin(x), plain(x))

    bn, ref = SlimmableBatchNorm(16), nn.BatchNorm2d(6)
    with torch.no_grad():
        bn.weight.uniform_()
        ref.weight.copy_(bn.weight[:6])
    x = torch.randn(4, 6, 5, 5)
    assert torch.allclose(bn(x), ref(x), atol=1e-6)
    assert torch.allclose(bn.running_mean[:6], ref.running_mean) and torch.all(bn.running_mean[6:] == 0)


def test_channel_rounding_is_the_released_make_divisible():
    assert active_channels(64, 0.25) == 16 and active_channels(64, 1.0) == 64
    assert active_channels(20, 0.3, divisor=8) == 8
    assert active_channels(512, 0.75) == 384
    # 10 rounds to 8, which loses more than 10%: one more divisor (a plain rounding would keep 8)
    assert make_divisible(10, 8) == 16 and active_channels(40, 0.25, divisor=8) == 16
    assert make_divisible(12, 8) == 16 and make_divisible(11.9, 8) == 16 and make_divisible(8.8, 8) == 8
    assert make_divisible(2, 4) == 4 and make_divisible(0.5, 8) == 1  # min_value 1, as released
    assert active_channels(6, 0.25, divisor=8) == 6  # 1 + 8 = 9 channels asked: the slice stops at 6
    with pytest.raises(ValueError, match="divisor"):
        make_divisible(10, 0)


@pytest.mark.parametrize("width, err", [(0.2, ValueError), (1.5, ValueError), (0, ValueError), ("half", TypeError)])
def test_width_out_of_range_is_a_clear_error(width, err):
    with pytest.raises(err, match="width"):
        set_width(SlimmableResNet(base_width=8), width)


def test_recalibration_resets_and_reestimates_statistics_per_width():
    torch.manual_seed(0)
    net = SlimmableResNet(base_width=8, blocks=(1, 1), divisor=4)
    bn = net.stem[1]
    data = [torch.rand(8, 3, 16, 16) * 3 + 1 for _ in range(3)]
    recalibrate_bn(net, 0.5, data)
    c = active_channels(8, 0.5, 4)
    assert int(bn.num_batches_tracked) == 3 and not net.training
    # the stem's statistics equal the plain average of the per-batch means over the three batches
    with torch.no_grad():
        means = [net.stem[0](x).mean(dim=(0, 2, 3)) for x in data]
    assert torch.allclose(bn.running_mean[:c], torch.stack(means).mean(0), atol=1e-5)
    assert torch.all(bn.running_mean[c:] == 0)  # channels beyond the width were reset, not estimated
    with pytest.raises(ValueError, match="at least one batch"):
        recalibrate_bn(net, 1.0, [])
    with pytest.raises(ValueError, match="momentum"):
        recalibrate_bn(net, 1.0, data, momentum=0)
    with pytest.raises(ValueError, match="passes"):
        recalibrate_bn(net, 1.0, data, passes=0)


def test_released_calibration_is_an_exponential_average_over_three_passes():
    torch.manual_seed(0)
    net = SlimmableResNet(base_width=8, blocks=(1,), divisor=4)
    bn = net.stem[1]
    data = [torch.rand(8, 3, 8, 8) * (i + 1) for i in range(2)]
    with torch.no_grad():
        means = [net.stem[0](x).mean(dim=(0, 2, 3)) for x in data]
    recalibrate_bn(net, 1.0, data, reset=True, momentum=0.1, passes=3)
    expected = torch.zeros(8)
    for _ in range(3):
        for m in means:
            expected = 0.9 * expected + 0.1 * m
    assert int(bn.num_batches_tracked) == 6 and bn.momentum == 0.1
    torch.testing.assert_close(bn.running_mean, expected, atol=1e-5, rtol=1e-5)


def test_resnet_features_and_costs_grow_with_width():
    net = SlimmableResNet(base_width=16, divisor=4)
    x = torch.rand(2, 3, 32, 32)
    dims, costs = [], []
    for w in (0.25, 0.5, 1.0):
        set_width(net, w)
        dims.append(net(x).shape[1])
        costs.append(cost_at(net, w, 32))
    assert dims == [net.feature_dim_at(w) for w in (0.25, 0.5, 1.0)] and dims[-1] == net.feature_dim
    flops = [c["flops"] for c in costs]
    params = [c["params"] for c in costs]
    assert flops[0] < flops[1] < flops[2] and params[0] < params[1] < params[2]
    # conv FLOPs scale roughly with width squared
    assert 8 < flops[2] / flops[0] < 20
    full = sum(p.numel() for p in net.parameters())
    assert params[2] == full
