r"""Backbones split into blocks, and the cosine classifier fine-tuned in every episode.

A backbone here is a list of ``blocks`` followed by a ``pool`` that turns the last block's output
into one feature vector :math:`f(x) \in \mathbb{R}^d`. Adaptability calibration (AC) decides how
many of the last blocks are fine-tuned; :func:`split_backbone` cuts a backbone there.

Book section: *Worst case* "Which layers may move: adaptability calibration".
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn


class CosineClassifier(nn.Module):
    r"""Cosine similarity between a feature and one weight vector per class, scaled.

    .. math:: \text{logit}_c(f) = s \cdot g_c \cdot \frac{v_c^\top f}{\lVert v_c \rVert\, \lVert f \rVert}

    With ``learnable_norm=True`` this is the paper's head, ``distLinear`` of the CloserLookFewShot
    code the paper builds on: a ``WeightNorm`` linear layer (weight :math:`g_c\, v_c/\lVert v_c\rVert`,
    the per-class norm :math:`g_c` learnable and initialised at :math:`\lVert v_c \rVert`) on the
    L2-normalised feature, times a fixed :math:`s = 2`. With ``learnable_norm=False`` every
    :math:`g_c = 1` and only the direction learns (a fixed-scale cosine head). :math:`v` starts as
    ``nn.Linear``'s default, so :math:`g_c \approx 1/\sqrt 3` at the start. A fresh head is drawn
    in every episode; ``scale`` is :math:`s`.

    Book section: *Worst case* "Fine-tuning in an episode".
    """

    def __init__(self, in_features: int, n_way: int, scale: float = 2.0, learnable_norm: bool = True):
        super().__init__()
        if in_features < 1 or n_way < 2:
            raise ValueError(f"need in_features >= 1 and n_way >= 2, got {in_features}, {n_way}")
        if scale <= 0:
            raise ValueError(f"scale must be positive, got {scale}")
        self.weight = nn.Parameter(torch.empty(n_way, in_features))
        nn.init.kaiming_uniform_(self.weight, a=5**0.5)  # nn.Linear's default
        self.scale = float(scale)
        self.learnable_norm = bool(learnable_norm)
        if self.learnable_norm:  # WeightNorm(dim=0): g starts at the norm of each row of v
            self.norm = nn.Parameter(self.weight.detach().norm(dim=1).clone())  # (N,)

    def forward(self, features: torch.Tensor) -> torch.Tensor:  # (..., d) -> (..., N)
        cos = F.normalize(features, dim=-1) @ F.normalize(self.weight, dim=-1).T
        return self.scale * (cos * self.norm if self.learnable_norm else cos)


class BlockBackbone(nn.Module):
    """``blocks`` then ``pool``; ``forward`` returns the feature, ``(B, ...) -> (B, feature_dim)``."""

    def __init__(self, blocks: list[nn.Module], pool: nn.Module, feature_dim: int):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.pool = pool
        self.feature_dim = feature_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.pool(x)


def mlp_backbone(in_shape: tuple[int, ...] = (1, 8, 8), widths: tuple[int, ...] = (128, 128, 64), dropout: float = 0.0) -> BlockBackbone:
    """A small multilayer perceptron for quick runs: each block is Linear, BatchNorm, ReLU (, Dropout).

    The first block flattens the image. BatchNorm makes "frozen in eval mode" mean what it does in a
    ResNet: running statistics, not the tiny support batch's.

    Book section: *Worst case* "Quick run".
    """
    if not widths:
        raise ValueError("widths must name at least one block")
    blocks, width_in = [], int(torch.tensor(in_shape).prod())
    for i, width in enumerate(widths):
        layers = ([nn.Flatten()] if i == 0 else []) + [nn.Linear(width_in, width), nn.BatchNorm1d(width), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        blocks.append(nn.Sequential(*layers))
        width_in = width
    return BlockBackbone(blocks, nn.Identity(), widths[-1])


class ResBlock12(nn.Module):
    """ResNet-12 block: three 3x3 conv-BN(-LeakyReLU) layers, a 1x1 shortcut, then 2x2 max-pooling."""

    def __init__(self, c_in: int, c_out: int, dropout: float = 0.0):
        super().__init__()
        def conv(a, b):
            return nn.Sequential(nn.Conv2d(a, b, 3, padding=1, bias=False), nn.BatchNorm2d(b))
        self.body = nn.Sequential(conv(c_in, c_out), nn.LeakyReLU(0.1), conv(c_out, c_out), nn.LeakyReLU(0.1), conv(c_out, c_out))
        self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out))
        self.out = nn.Sequential(nn.LeakyReLU(0.1), nn.MaxPool2d(2), nn.Dropout(dropout) if dropout > 0 else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(x) + self.shortcut(x))


def resnet12(widths: tuple[int, ...] = (64, 160, 320, 640), in_channels: int = 3, dropout: float = 0.0) -> BlockBackbone:
    """ResNet-12, the usual few-shot backbone: four :class:`ResBlock12`, then global average pooling.

    At 32 px (CIFAR-FS) the blocks output 16, 8, 4 and 2 px maps; the feature has ``widths[-1]``
    dimensions (640).

    Book section: *Worst case* "Full run".
    """
    blocks, c = [], in_channels
    for w in widths:
        blocks.append(ResBlock12(c, w, dropout))
        c = w
    return BlockBackbone(blocks, nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()), widths[-1])


def build_backbone(name: str, in_shape: tuple[int, ...], widths: tuple[int, ...], dropout: float = 0.0) -> BlockBackbone:
    """``"mlp"`` (quick) or ``"resnet12"`` (full)."""
    if name == "mlp":
        return mlp_backbone(in_shape, widths, dropout)
    if name == "resnet12":
        return resnet12(widths, in_shape[0], dropout)
    raise ValueError(f"unknown backbone {name!r}; choose 'mlp' or 'resnet12'")


def split_backbone(backbone: BlockBackbone, tune_blocks: int | None) -> tuple[nn.Module, nn.Module]:
    """Cut ``backbone`` into a frozen ``prefix`` and a trainable ``tail`` (copies; the original is untouched).

    ``tune_blocks=None`` (plain fine-tuning) puts every block in the tail and leaves an empty
    prefix; ``tune_blocks=t`` keeps the last ``t`` blocks and the pool trainable (adaptability
    calibration). The prefix is returned in eval mode with gradients off, so its BatchNorm layers
    keep their running statistics and its weights stay bit-identical.

    Book section: *Worst case* "Which layers may move: adaptability calibration".
    """
    n = len(backbone.blocks)
    if tune_blocks is None:
        tune_blocks = n
    if isinstance(tune_blocks, bool) or not isinstance(tune_blocks, int) or not 1 <= tune_blocks <= n:
        raise ValueError(f"tune_blocks must be an integer in [1, {n}] or None (all blocks), got {tune_blocks!r}")
    blocks = [copy.deepcopy(b) for b in backbone.blocks]
    prefix = nn.Sequential(*blocks[: n - tune_blocks]).eval()
    prefix.requires_grad_(False)
    tail = nn.Sequential(*blocks[n - tune_blocks :], copy.deepcopy(backbone.pool))
    return prefix, tail
