"""Universally slimmable layers: one set of weights, any width in [0.25, 1.0].

At width multiplier :math:`w` a layer with :math:`C` output channels uses its first
:math:`c(w)` channels, :math:`Cw` rounded to the nearest multiple of the divisor :math:`d`, one
more :math:`d` when rounding lost more than 10% (:func:`make_divisible`, as in the released US3L
code), and the first channels of its input, so every narrower network is a prefix of the wider one
(Yu & Huang, universally slimmable networks). Batch norm shares its parameters across widths and is *recalibrated* per width
before evaluation, since the statistics of a prefix of channels change with the width of the layers
before it.

Book section: *US3L* "Slimmable networks".
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
from torch.nn import functional as F

MIN_WIDTH, MAX_WIDTH = 0.25, 1.0


def check_width(width: float) -> float:
    if isinstance(width, bool) or not isinstance(width, (int, float)):
        raise TypeError(f"width must be a number in [{MIN_WIDTH}, {MAX_WIDTH}], got {width!r}")
    if not MIN_WIDTH <= width <= MAX_WIDTH:
        raise ValueError(f"width must be in [{MIN_WIDTH}, {MAX_WIDTH}], got {width}")
    return float(width)


def make_divisible(v: float, divisor: int = 8, min_value: int = 1) -> int:
    r"""``v`` rounded to the nearest multiple of ``divisor`` (at least ``min_value``), plus one
    ``divisor`` if rounding down lost more than 10% of ``v``:

    .. math:: c = \max(m,\ \lfloor (v + d/2) / d \rfloor d), \qquad c \leftarrow c + d \ \text{ if } c < 0.9\,v

    The rule of the released US3L (and slimmable-networks, MobileNet) code, ``min_value=1`` its default.
    Book section: *US3L* "Slimmable networks".
    """
    if isinstance(divisor, bool) or not isinstance(divisor, int) or divisor < 1:
        raise ValueError(f"divisor must be an integer >= 1, got {divisor!r}")
    new = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new < 0.9 * v:  # make sure that rounding down does not lose more than 10%
        new += divisor
    return new


def active_channels(channels: int, width: float, divisor: int = 8) -> int:
    """:math:`c(w)`: channels kept at width ``width``, ``make_divisible(channels * width, divisor)``
    and never more than the layer has (the released code's slice ``W[:c]`` stops there too).

    Book section: *US3L* "Slimmable networks".
    """
    width = check_width(width)
    return min(channels, make_divisible(channels * width, divisor))


class _Slimmable:
    width_mult: float = 1.0
    divisor: int = 8
    slim_out: bool = True

    def out_active(self, channels: int) -> int:
        return active_channels(channels, self.width_mult, self.divisor) if self.slim_out else channels


class SlimmableConv2d(nn.Conv2d, _Slimmable):
    """A ``Conv2d`` that uses the first :math:`c_{in}` input (as many as arrive) and :math:`c(w)` output channels."""

    def __init__(self, *args, divisor: int = 8, slim_out: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        if self.groups != 1:
            raise ValueError("grouped convolutions are not slimmable here (groups must be 1)")
        self.divisor, self.slim_out = divisor, slim_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c_in = x.shape[1]  # x: (N, c_in, H, W), c_in <= in_channels
        if c_in > self.in_channels:
            raise ValueError(f"input has {c_in} channels, more than the layer's {self.in_channels}")
        c_out = self.out_active(self.out_channels)
        weight = self.weight[:c_out, :c_in]  # (c_out, c_in, k, k)
        bias = self.bias[:c_out] if self.bias is not None else None
        return F.conv2d(x, weight, bias, self.stride, self.padding, self.dilation, 1)


class SlimmableLinear(nn.Linear, _Slimmable):
    """A ``Linear`` on the first input features; its output is slimmed unless ``slim_out=False``."""

    def __init__(self, *args, divisor: int = 8, slim_out: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.divisor, self.slim_out = divisor, slim_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c_in = x.shape[-1]
        if c_in > self.in_features:
            raise ValueError(f"input has {c_in} features, more than the layer's {self.in_features}")
        c_out = self.out_active(self.out_features)
        bias = self.bias[:c_out] if self.bias is not None else None
        return F.linear(x, self.weight[:c_out, :c_in], bias)


class SlimmableBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch norm over the first channels, shared by every width (1-D or 2-D inputs).

    Slices of ``running_mean``/``running_var`` are views, so training at width :math:`w` updates the
    statistics of the first :math:`c(w)` channels in place; :func:`recalibrate_bn` re-estimates them.
    """

    def _check_input_dim(self, x):
        if x.dim() not in (2, 3, 4):
            raise ValueError(f"expected a 2-D, 3-D or 4-D input, got {x.dim()}-D")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        if c > self.num_features:
            raise ValueError(f"input has {c} channels, more than the layer's {self.num_features}")
        use_batch_stats = self.training or self.running_mean is None
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked += 1
            if self.momentum is None:  # cumulative average: what recalibration uses
                momentum = 1.0 / float(self.num_batches_tracked)
        return F.batch_norm(
            x,
            self.running_mean[:c] if self.running_mean is not None else None,
            self.running_var[:c] if self.running_var is not None else None,
            self.weight[:c] if self.weight is not None else None,
            self.bias[:c] if self.bias is not None else None,
            use_batch_stats, momentum, self.eps,
        )


SLIMMABLE = (SlimmableConv2d, SlimmableLinear)


def set_width(model: nn.Module, width: float) -> nn.Module:
    """Run every slimmable layer of ``model`` at width multiplier ``width`` (in place)."""
    width = check_width(width)
    found = False
    for m in model.modules():
        if isinstance(m, SLIMMABLE):
            m.width_mult = width
            found = True
    if not found:
        raise ValueError("the model has no slimmable layers")
    model.width_mult = width
    return model


@torch.no_grad()
def recalibrate_bn(model: nn.Module, width: float, batches: Iterable[torch.Tensor], forward=None, *,
                   reset: bool = True, momentum: float | None = None, passes: int = 1) -> nn.Module:
    """Re-estimate every batch-norm statistic at ``width`` from ``batches``, then eval mode.

    Default (this book): reset the statistics, then average them plainly over ``passes`` passes of
    ``batches`` (momentum ``None``, a cumulative average), so the result does not depend on what
    the buffers held before. The released US3L code instead keeps the buffers (it does not reset)
    and runs 3 passes over the training set with the default momentum 0.1:
    ``reset=False, momentum=0.1, passes=3``. Book section: *US3L* "Slimmable networks".
    """
    if momentum is not None and not (isinstance(momentum, float) and 0.0 < momentum <= 1.0):
        raise ValueError(f"momentum must be None (plain average) or a float in (0, 1], got {momentum!r}")
    if isinstance(passes, bool) or not isinstance(passes, int) or passes < 1:
        raise ValueError(f"passes must be a positive integer, got {passes!r}")
    set_width(model, width)
    batches = list(batches)
    if not batches:
        raise ValueError("recalibrate_bn needs at least one batch")
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [bn.momentum for bn in bns]
    for bn in bns:
        if reset:
            bn.reset_running_stats()
        bn.momentum = momentum
    model.train()
    try:
        for _ in range(passes):
            for x in batches:
                (forward or model)(x)
    finally:
        for bn, m in zip(bns, saved):
            bn.momentum = m
    return model.eval()
