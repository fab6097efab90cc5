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


def width_steps(width: float, total: int, n: int = 3, seed: int = 0, phases: int = 4, dynamic: bool = True) -> int:
    """How many of ``total`` steps train exactly ``width``: the steps whose sandwich
    (:func:`sample_widths`) contains it. 0.25 and 1.0 are in every sandwich without dynamic sampling;
    with it (4 phases) 1.0 trains every step and 0.25 only the last quarter. A network trained alone
    at ``width`` gets this many steps when it is compared with the slimmable run at that width.

    Book section: *US3L* "Quick run".
    """
    if isinstance(total, bool) or not isinstance(total, int) or total < 1:
        raise ValueError(f"total must be a positive number of steps, got {total!r}")
    return sum(width in sample_widths(s, total, n, seed, phases, dynamic) for s in range(total))


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
    """Group index of each output channel: ``bins`` contiguous groups of ``channels // bins``, the
    last takes the remainder (with fewer channels than bins, all of them: the released code's slices)."""
    size = channels // bins
    if size == 0:
        return torch.full((channels,), bins - 1, dtype=torch.long)
    return torch.clamp(torch.arange(channels) // size, max=bins - 1)


def check_group_alpha(alpha: float, bins: int) -> float:
    r"""``alpha`` for :func:`group_coefficients`: :math:`\lambda_{B-1} = \lambda(1 - \alpha(B-1)) \ge 0`
    needs :math:`0 \le \alpha \le 1/(B-1)`; checked before training, not when the ramp reaches it."""
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha:
        raise ValueError(f"reg_alpha must be a number >= 0, got {alpha!r}")
    if bins > 1 and alpha * (bins - 1) > 1:
        raise ValueError(f"reg_alpha={alpha} makes the coefficient of the last of {bins} groups, "
                         f"lambda * (1 - alpha * {bins - 1}), negative; use reg_alpha <= {1 / (bins - 1):.4g}")
    return float(alpha)


def group_regularization(model: nn.Module, lam: float, alpha_t: float, bins: int = 8) -> torch.Tensor:
    r"""Group regularization, in place of weight decay:

    .. math:: R = \sum_{\theta} \sum_{i} \lambda_i \lVert \theta_{(i)} \rVert^2

    over every trainable parameter of ``model``, as the released code's ``GroupReg``: conv weights
    (4-D) and 1-D parameters (batch-norm scales and shifts, biases) have their output channels cut
    into ``bins`` groups with :math:`\lambda_i = \lambda(1 - \alpha_t i)`; other weights (fully
    connected layers, the projector's and predictor's) get the plain :math:`\lambda`. Channels that
    only wide networks use (later groups) get a weaker pull towards zero. With :math:`\alpha_t = 0`
    this is plain L2 with weight decay :math:`2\lambda`.
    Book section: *US3L* "Dynamic sampling and group regularization".
    """
    coeffs = group_coefficients(bins, lam, alpha_t)
    total = None
    for p in model.parameters():
        if not p.requires_grad:
            continue
        if p.dim() in (1, 4):
            weights = coeffs.to(p.device)[channel_groups(p.shape[0], bins).to(p.device)]  # (C_out,)
            term = (weights * p.pow(2).reshape(p.shape[0], -1).sum(1)).sum()
        else:
            term = lam * p.pow(2).sum()
        total = term if total is None else total + term
    if total is None:
        raise ValueError(f"{type(model).__name__} has no trainable parameters to regularize")
    return total
