"""Which widths train at each step: the sandwich rule and dynamic sampling; group-regularization weights.

Book section: *US3L* "Dynamic sampling and group regularization".
"""

from __future__ import annotations

import torch
from torch import nn

from ..slimmable import MAX_WIDTH, MIN_WIDTH, SlimmableBatchNorm, SlimmableConv2d


def lower_bound(step: int, total: int, phases: int = 4, dynamic: bool = True) -> float:
    r"""The smallest width trained at ``step``.

    Dynamic sampling splits training into ``phases`` equal parts: the first trains only the full
    network, then the bound drops evenly to :math:`w_{min}`; with 4 phases it is
    :math:`1.0 \to 0.75 \to 0.5 \to 0.25`. Without dynamic sampling it is always :math:`w_{min}`.
    """
    if not 0 <= step < total:
        raise ValueError(f"step must be in [0, {total}), got {step}")
    if not dynamic:
        return MIN_WIDTH
    if phases < 2:
        raise ValueError(f"dynamic sampling needs at least 2 phases, got {phases}")
    phase = step * phases // total
    if phase == 0:
        return MAX_WIDTH
    return MIN_WIDTH + (phases - 1 - phase) * (MAX_WIDTH - MIN_WIDTH) / (phases - 1)


def sample_widths(step: int, total: int, n: int = 3, seed: int = 0, phases: int = 4, dynamic: bool = True) -> list[float]:
    r"""The sandwich rule: :math:`[w_{max}, w_{low}, u_1, \dots]` with :math:`u_i \sim U(w_{low}, w_{max})`, descending.

    Drawn from a generator seeded by ``(seed, step)``, so a resumed run samples the same widths.
    While only the full network trains (first phase) the list is ``[1.0]``.
    """
    if n < 2:
        raise ValueError(f"the sandwich rule needs n >= 2 widths, got {n}")
    low = lower_bound(step, total, phases, dynamic)
    if low >= MAX_WIDTH:
        return [MAX_WIDTH]
    g = torch.Generator().manual_seed(seed * 1_000_003 + step)
    middle = (low + (MAX_WIDTH - low) * torch.rand(n - 2, generator=g)).tolist()
    return sorted([MAX_WIDTH, low, *middle], reverse=True)


def regularization_alpha(step: int, total: int, alpha: float = 0.05, warmup: int = 0) -> float:
    r""":math:`\alpha_t`: 0 during warm-up, then rising linearly to ``alpha`` at half of training, then flat."""
    if step < warmup:
        return 0.0
    ramp_end = max(warmup + 1, total // 2)
    return alpha * min(1.0, (step - warmup) / max(1, ramp_end - warmup))


def group_coefficients(bins: int, lam: float, alpha_t: float) -> torch.Tensor:
    r""":math:`\lambda_i = \lambda (1 - \alpha_t i)`, :math:`i = 0 \dots B-1`: later channel groups decay less."""
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    coeffs = lam * (1 - alpha_t * torch.arange(bins, dtype=torch.float32))
    if (coeffs < 0).any():
        raise ValueError(f"alpha_t={alpha_t} makes some coefficients negative for {bins} bins")
    return coeffs


def channel_groups(channels: int, bins: int) -> torch.Tensor:
    """Group index of each output channel: ``bins`` contiguous groups, the last takes the remainder."""
    size = max(1, channels // bins)
    return torch.clamp(torch.arange(channels) // size, max=bins - 1)


def group_regularization(model: nn.Module, lam: float, alpha_t: float, bins: int = 8) -> torch.Tensor:
    r"""Group regularization, in place of weight decay on slimmable layers:

    .. math:: R = \sum_{\theta} \sum_{i} \lambda_i \lVert \theta_{(i)} \rVert^2

    over conv weights and batch-norm scales and shifts, with output channels cut into ``bins`` groups.
    Channels that only wide networks use (later groups) get a weaker pull towards zero.
    """
    coeffs = group_coefficients(bins, lam, alpha_t)
    total = torch.zeros(())
    for m in model.modules():
        tensors = []
        if isinstance(m, SlimmableConv2d):
            tensors = [m.weight]
        elif isinstance(m, SlimmableBatchNorm) and m.affine:
            tensors = [m.weight, m.bias]
        for t in tensors:
            per_channel = t.pow(2).reshape(t.shape[0], -1).sum(1)  # (C_out,)
            weights = coeffs.to(t.device)[channel_groups(t.shape[0], bins).to(t.device)]
            total = total.to(t.device) + (weights * per_channel).sum()
    return total
