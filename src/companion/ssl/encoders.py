"""Backbones for self-supervised pretraining: ResNet-18/50 (optionally with the small-image stem), a tiny CNN
for 8-16 px inputs, and a ViT hook. Each maps ``(N, C, H, W)`` to ``(N, feature_dim)``.

Book sections: *S3L* "Small resolution, small architecture", *SSQL* "The SimSiam loss with a quantized branch",
*US3L* "A momentum teacher for every width", *Efficient SSL* "Instance discrimination", *Tobias* "Background swap inside MoCo v2".
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision import models

from ..tensors import as_model_input


class Encoder(nn.Module):
    """Base class: checks the channel count of every batch and exposes ``feature_dim``."""

    feature_dim: int
    in_channels: int

    def check_input(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` as a checked ``(N, C, H, W)`` batch (see :mod:`companion.tensors`: float64 is cast to
        the parameters' dtype; NumPy, meta, NaN/inf and wrong shapes get a clear error)."""
        x = as_model_input(x, self, "x", ndim=4, shape_hint="(N, C, H, W)")
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f"this encoder takes {self.in_channels}-channel images, got a batch with {x.shape[1]} channels "
                f"(shape {tuple(x.shape)}); build it with in_channels={x.shape[1]} or convert the images"
            )
        return x


class ResNetEncoder(Encoder):
    """A torchvision ResNet without its classifier: global-average-pooled ``(N, feature_dim)`` features."""

    def __init__(self, net: models.ResNet, in_channels: int):
        super().__init__()
        self.in_channels = in_channels
        self.feature_dim = net.fc.in_features
        net.fc = nn.Identity()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.check_input(x)
        return self.net(x)  # (N, feature_dim)


def resnet(name: str = "resnet18", small_stem: bool = False, in_channels: int = 3, zero_init_residual: bool = False) -> ResNetEncoder:
    """torchvision ResNet-18 or ResNet-50, randomly initialized, as an encoder (512 or 2048 features).

    ``small_stem=True`` swaps the 7x7 stride-2 convolution and max-pool for a 3x3 stride-1 convolution,
    the CIFAR variant every SSL paper uses at 32 px (otherwise a 32 px image is 1x1 after ``layer4``).
    Book section: *S3L* "Small resolution, small architecture".
    """
    if name not in ("resnet18", "resnet50"):
        raise ValueError(f"name must be 'resnet18' or 'resnet50', got {name!r}")
    if not isinstance(in_channels, int) or in_channels <= 0:
        raise ValueError(f"in_channels must be a positive integer, got {in_channels!r}")
    net = getattr(models, name)(weights=None, zero_init_residual=zero_init_residual)
    if small_stem:
        net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
        net.maxpool = nn.Identity()
    elif in_channels != 3:
        net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")
    return ResNetEncoder(net, in_channels)


def _block(c_in: int, c_out: int, pool: bool) -> list[nn.Module]:
    mods: list[nn.Module] = [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
    if pool:
        mods.append(nn.MaxPool2d(2))
    return mods


class TinyCNN(Encoder):
    """Four 3x3 conv-BN-ReLU blocks (widths w, 2w, 4w, 4w; max-pool after blocks 2 and 3) and global
    average pooling: ``feature_dim = 4 * width``. Made for 8-16 px inputs (digits, tiny scenes);
    ``stem_stride=2`` halves a 32 px input first to keep CPU runs short.

    Book section: *S3L* "Small resolution, small architecture".
    """

    def __init__(self, in_channels: int = 3, width: int = 32, stem_stride: int = 1):
        super().__init__()
        if not isinstance(in_channels, int) or in_channels <= 0:
            raise ValueError(f"in_channels must be a positive integer, got {in_channels!r}")
        if not isinstance(width, int) or width <= 0:
            raise ValueError(f"width must be a positive integer, got {width!r}")
        if stem_stride not in (1, 2):
            raise ValueError(f"stem_stride must be 1 or 2, got {stem_stride}")
        self.in_channels = in_channels
        self.feature_dim = 4 * width
        stem = [nn.Conv2d(in_channels, width, 3, stride=stem_stride, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(
            *stem, *_block(width, 2 * width, True), *_block(2 * width, 4 * width, True), *_block(4 * width, 4 * width, False),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.check_input(x)
        return self.features(x)  # (N, 4 * width)


class ViTEncoder(Encoder):
    """A torchvision ``VisionTransformer`` without its head: the class token, ``(N, hidden_dim)``."""

    def __init__(self, vit: models.VisionTransformer, in_channels: int = 3):
        super().__init__()
        self.in_channels = in_channels
        self.feature_dim = vit.hidden_dim
        self.image_size = vit.image_size
        vit.heads = nn.Identity()
        self.vit = vit

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.check_input(x)
        if x.shape[-2:] != (self.image_size, self.image_size):
            raise ValueError(f"this ViT takes {self.image_size}x{self.image_size} images, got {tuple(x.shape[-2:])}")
        return self.vit(x)  # (N, hidden_dim)


def vit_encoder(
    image_size: int = 32, patch_size: int = 4, num_layers: int = 6, num_heads: int = 3, hidden_dim: int = 192,
    mlp_dim: int = 768, in_channels: int = 3, vit: models.VisionTransformer | None = None,
) -> ViTEncoder:
    """The ViT hook: a torchvision ``VisionTransformer`` (defaults: a DeiT-Tiny-shaped ViT for 32 px) as
    an encoder, or wrap a given ``vit`` (e.g. ``torchvision.models.vit_b_16()``).

    Book sections: *Efficient SSL* "Instance discrimination", and the ViT-with-2040-images chapter.
    """
    if vit is None:
        if image_size % patch_size:
            raise ValueError(f"image_size {image_size} must be divisible by patch_size {patch_size}")
        vit = models.VisionTransformer(image_size, patch_size, num_layers, num_heads, hidden_dim, mlp_dim)
    if in_channels != 3:
        vit.conv_proj = nn.Conv2d(in_channels, vit.hidden_dim, kernel_size=vit.patch_size, stride=vit.patch_size)
    return ViTEncoder(vit, in_channels)


ENCODERS = ("resnet18", "resnet50", "resnet18_small", "resnet50_small", "tiny", "vit")


def build_encoder(name: str, **kw) -> Encoder:
    """Encoder by name: ``resnet18``, ``resnet50`` (``_small`` suffix: small stem), ``tiny``, ``vit``.

    Keyword arguments go to :func:`resnet`, :class:`TinyCNN` or :func:`vit_encoder`.
    Book section: *S3L* "Small resolution, small architecture".
    """
    if name in ("resnet18", "resnet50"):
        return resnet(name, **kw)
    if name in ("resnet18_small", "resnet50_small"):
        return resnet(name.removesuffix("_small"), small_stem=True, **kw)
    if name == "tiny":
        return TinyCNN(**kw)
    if name == "vit":
        return vit_encoder(**kw)
    raise ValueError(f"unknown encoder {name!r}; choose from {ENCODERS}")
