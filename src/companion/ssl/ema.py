"""Exponential moving averages of weights: BYOL's target, MoCo's key encoder, any teacher.

Book sections: *US3L* "A momentum teacher for every width", *S3L* "MoCo v2 on the target data",
*Tobias* "Background swap inside MoCo v2".
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn


@torch.no_grad()
def ema_update_(target: nn.Module, online: nn.Module, momentum: float) -> None:
    r"""In place, for every parameter and floating-point buffer (BN running statistics):

    .. math:: \xi \leftarrow m\,\xi + (1 - m)\,\theta

    ``momentum`` m in [0, 1]: 1 leaves the target unchanged, 0 copies the online weights.
    Integer buffers (BN's batch counter) are copied. The two modules must have the same structure.
    Book section: *US3L* "A momentum teacher for every width".
    """
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"momentum must be in [0, 1], got {momentum}")
    t_params, o_params = list(target.parameters()), list(online.parameters())
    t_bufs, o_bufs = list(target.buffers()), list(online.buffers())
    if len(t_params) != len(o_params) or len(t_bufs) != len(o_bufs) or any(
        a.shape != b.shape for a, b in zip(t_params + t_bufs, o_params + o_bufs)
    ):
        raise ValueError("target and online modules differ in structure; build the target with copy.deepcopy(online)")
    floats_t = [t for t in t_params + t_bufs if t.is_floating_point()]
    floats_o = [o for t, o in zip(t_params + t_bufs, o_params + o_bufs) if t.is_floating_point()]
    if floats_t:
        torch._foreach_lerp_(floats_t, [o.to(t.dtype) for t, o in zip(floats_t, floats_o)], 1.0 - momentum)
    for t, o in zip(t_bufs, o_bufs):
        if not t.is_floating_point():
            t.copy_(o)


def cosine_momentum(step: int, total: int, base: float = 0.99) -> float:
    r"""BYOL's schedule: the momentum rises from ``base`` to 1 along a half cosine.

    .. math:: m_t = 1 - (1 - m_0)\,\frac{\cos(\pi t / T) + 1}{2}

    Book section: *US3L* "A momentum teacher for every width".
    """
    if total <= 0:
        raise ValueError(f"total must be positive, got {total}")
    if not 0.0 <= base <= 1.0:
        raise ValueError(f"base momentum must be in [0, 1], got {base}")
    t = min(max(step, 0), total) / total
    return 1.0 - (1.0 - base) * (math.cos(math.pi * t) + 1.0) / 2.0


def frozen_copy(module: nn.Module) -> nn.Module:
    """A deep copy with ``requires_grad=False`` everywhere: the starting point of an EMA teacher."""
    target = copy.deepcopy(module)
    for p in target.parameters():
        p.requires_grad_(False)
    return target
