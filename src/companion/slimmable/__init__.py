"""Universally slimmable networks: width-sliceable layers, ``set_width``, BN recalibration, costs.

Book section: *US3L* "Slimmable networks".
"""

from .layers import (MAX_WIDTH, MIN_WIDTH, SlimmableBatchNorm, SlimmableConv2d, SlimmableLinear, active_channels,
                     check_width, make_divisible, recalibrate_bn, set_width)
from .resnet import SlimmableBlock, SlimmableResNet, cost_at

__all__ = [
    "MAX_WIDTH", "MIN_WIDTH", "SlimmableBatchNorm", "SlimmableConv2d", "SlimmableLinear", "active_channels",
    "check_width", "make_divisible", "recalibrate_bn", "set_width", "SlimmableBlock", "SlimmableResNet", "cost_at",
]
