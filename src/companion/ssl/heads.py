"""Projector and predictor MLPs of SimSiam, BYOL, MoCo v2 and SimCLR.

Book sections: *SSQL* "The SimSiam loss with a quantized branch", *US3L* "A momentum teacher for every width",
*S3L* "MoCo v2 on the target data".
"""

from __future__ import annotations

from torch import nn


def mlp(in_dim: int, hidden_dim: int, out_dim: int, layers: int = 2, last_bn: bool = True, hidden_bn: bool = True) -> nn.Sequential:
    """``layers`` linear layers: (Linear, BN, ReLU) x (layers - 1), then Linear (and BN without affine).

    ``last_bn=True`` ends with ``BatchNorm1d(out_dim, affine=False)`` as SimSiam's projector does;
    ``hidden_bn=False`` gives MoCo v2's Linear-ReLU-Linear head. Linears followed by BN have no bias.
    Book section: *SSQL* "The SimSiam loss with a quantized branch".
    """
    for name, v in (("in_dim", in_dim), ("hidden_dim", hidden_dim), ("out_dim", out_dim), ("layers", layers)):
        if not isinstance(v, int) or v <= 0:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    mods: list[nn.Module] = []
    d = in_dim
    for _ in range(layers - 1):
        mods += [nn.Linear(d, hidden_dim, bias=not hidden_bn)]
        if hidden_bn:
            mods.append(nn.BatchNorm1d(hidden_dim))
        mods.append(nn.ReLU(inplace=True))
        d = hidden_dim
    mods.append(nn.Linear(d, out_dim, bias=not last_bn))
    if last_bn:
        mods.append(nn.BatchNorm1d(out_dim, affine=False))
    return nn.Sequential(*mods)


def projector(in_dim: int, hidden_dim: int = 2048, out_dim: int = 2048, layers: int = 3, last_bn: bool = True, hidden_bn: bool = True) -> nn.Sequential:
    """SimSiam's projector f (3 layers on ImageNet, 2 on CIFAR), ending in a BN; see :func:`mlp`.

    Book section: *SSQL* "The SimSiam loss with a quantized branch".
    """
    return mlp(in_dim, hidden_dim, out_dim, layers=layers, last_bn=last_bn, hidden_bn=hidden_bn)


def predictor(dim: int, hidden_dim: int = 512, out_dim: int | None = None) -> nn.Sequential:
    """The predictor h: Linear-BN-ReLU-Linear, a bottleneck (``hidden_dim`` < ``dim``) in SimSiam.

    Book sections: *SSQL* "The SimSiam loss with a quantized branch", *US3L* "A momentum teacher for every width".
    """
    return mlp(dim, hidden_dim, out_dim or dim, layers=2, last_bn=False)
