"""The small architecture: a torchvision ResNet without its last stage for pretraining, then the full
ResNet with a fresh last stage for fine-tuning.

S3L pretrains ``custom_resnet50``, a ResNet-50 whose ``layer4`` (conv5) is removed: global average
pooling reads the ``layer3`` (conv4) output. For fine-tuning, the pretrained weights are loaded into a
full ResNet whose ``layer4`` and classifier ``fc`` are new; ``layer4`` is first warmed up with the
rest frozen, then everything is fine-tuned (:mod:`companion.s3l.finetune`).

Book section: *S3L* "Pretrain without the last stage".
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

from ..ssl.encoders import Encoder

#: Block type and blocks per stage of the torchvision ResNets this chapter uses.
ARCHS = {
    "resnet10": (BasicBlock, (1, 1, 1, 1)),
    "resnet18": (BasicBlock, (2, 2, 2, 2)),
    "resnet34": (BasicBlock, (3, 4, 6, 3)),
    "resnet50": (Bottleneck, (3, 4, 6, 3)),
}


def build_resnet(
    arch: str = "resnet18", width: int = 64, small_stem: bool = True, in_channels: int = 3, num_classes: int = 1000,
    last_stage: bool = True,
) -> ResNet:
    """A randomly initialized ``torchvision.models.ResNet`` (module names ``conv1, bn1, layer1..4, fc``).

    ``width``: channels of ``layer1`` (64 in every torchvision ResNet; stage ``i`` has ``width * 2**(i-1)``
    times the block's expansion); smaller widths make CPU-sized networks with the same layout.
    ``small_stem``: a 3x3 stride-1 first convolution and no max-pool (the CIFAR variant), total stride 8
    instead of 32. ``last_stage=False`` removes ``layer4`` (S3L's pretraining network); ``fc`` then reads
    the ``layer3`` features. Book section: *S3L* "Pretrain without the last stage".
    """
    if arch not in ARCHS:
        raise ValueError(f"arch must be one of {sorted(ARCHS)}, got {arch!r}")
    for name, v in (("width", width), ("in_channels", in_channels), ("num_classes", num_classes)):
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    block, layers = ARCHS[arch]
    # torchvision's ResNet fixes the width at 64: build its skeleton on the meta device (no memory, no
    # initialization), then make every layer at the requested width with torchvision's own layer builder
    with torch.device("meta"):
        net = ResNet(block, list(layers), num_classes=num_classes)
    net.inplanes = width
    net.conv1 = (nn.Conv2d(in_channels, width, 3, 1, 1, bias=False) if small_stem
                 else nn.Conv2d(in_channels, width, 7, 2, 3, bias=False))
    net.bn1 = nn.BatchNorm2d(width)
    if small_stem:
        net.maxpool = nn.Identity()
    net.layer1 = net._make_layer(block, width, layers[0])
    net.layer2 = net._make_layer(block, 2 * width, layers[1], stride=2)
    net.layer3 = net._make_layer(block, 4 * width, layers[2], stride=2)
    if last_stage:
        net.layer4 = net._make_layer(block, 8 * width, layers[3], stride=2)
        net.fc = nn.Linear(8 * width * block.expansion, num_classes)
    else:
        net.layer4 = nn.Identity()
        net.fc = nn.Linear(4 * width * block.expansion, num_classes)
    for m in net.modules():  # torchvision's initialization
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return net


def stage_channels(net: ResNet) -> int:
    """Channels of the last stage present: what global average pooling hands to ``fc``.
    Book section: *S3L* "Pretrain without the last stage"."""
    for name in ("layer4", "layer3", "layer2", "layer1"):
        layer = getattr(net, name)
        if isinstance(layer, nn.Sequential) and len(layer):
            last = layer[-1]
            return (last.bn3 if isinstance(last, Bottleneck) else last.bn2).num_features
    return net.bn1.num_features


def total_stride(net: nn.Module) -> int:
    """How many input pixels one cell of the last feature map covers along a side: the product of the
    strides of the stem convolution, the max-pool and the first block of every stage present.

    32 for a standard ResNet, 8 with the small stem, half of each without ``layer4``. An input side
    smaller than this leaves less than one pixel of feature map. Book section: *S3L* "Multi-stage resolution".
    """
    net = getattr(net, "net", net)  # an encoder wrapping a ResNet
    if not isinstance(net, ResNet):
        raise TypeError(f"total_stride needs a torchvision ResNet (or an encoder wrapping one), got {type(net).__name__}")
    s = net.conv1.stride[0]
    if isinstance(net.maxpool, nn.MaxPool2d):
        s *= net.maxpool.stride if isinstance(net.maxpool.stride, int) else net.maxpool.stride[0]
    for name in ("layer1", "layer2", "layer3", "layer4"):
        layer = getattr(net, name)
        if isinstance(layer, nn.Sequential) and len(layer):
            s *= layer[0].stride
    return s


def check_resolution(net: nn.Module, resolution: int) -> int:
    """``resolution`` if the network can see it, else a ``ValueError`` naming the total stride.
    Book section: *S3L* "Pretrain without the last stage"."""
    if isinstance(resolution, bool) or not isinstance(resolution, int):
        raise TypeError(f"resolution must be an integer number of pixels, got {resolution!r}")
    stride = total_stride(net)
    if resolution < stride:
        raise ValueError(
            f"resolution {resolution} px is smaller than the network's total stride {stride}: the last feature map "
            f"would have less than one pixel; use at least {stride} px"
        )
    return resolution


class TruncatedResNet(Encoder):
    """A ResNet without ``layer4`` as an SSL encoder: ``(N, C, H, W) -> (N, feature_dim)``, GAP on ``layer3``.

    ``self.net`` is the torchvision ResNet (``layer4`` and ``fc`` replaced by identities), so
    ``self.net.state_dict()`` has exactly the keys of a full ResNet minus ``layer4.*`` and ``fc.*``.
    Book section: *S3L* "Pretrain without the last stage".
    """

    def __init__(self, arch: str = "resnet18", width: int = 64, small_stem: bool = True, in_channels: int = 3):
        super().__init__()
        net = build_resnet(arch, width, small_stem, in_channels, num_classes=1, last_stage=False)
        self.feature_dim = stage_channels(net)
        net.fc = nn.Identity()
        self.net = net
        self.in_channels = in_channels
        self.arch, self.width, self.small_stem = arch, width, small_stem

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.check_input(x)
        check_resolution(self.net, min(x.shape[-2:]))
        return self.net(x)  # (N, 4 * width * expansion)


@dataclass(frozen=True)
class LoadReport:
    """Which keys of the full network were not in the pretrained state (``missing``) and which pretrained
    keys the full network has no place for (``unexpected``). Book section: *S3L* "Pretrain without the last stage"."""

    missing: tuple[str, ...]
    unexpected: tuple[str, ...]
    loaded: int


def to_full_resnet(encoder: TruncatedResNet, num_classes: int, fc_std: float = 0.01) -> tuple[ResNet, LoadReport]:
    """Load a pretrained :class:`TruncatedResNet` into a full ResNet with a fresh ``layer4`` and ``fc``.

    Every pretrained weight must find its place (no unexpected keys) and only ``layer4.*`` and ``fc.*``
    may be missing, else ``RuntimeError``. The new ``fc`` is drawn from N(0, ``fc_std``), as S3L's
    fine-tuning code does. Book section: *S3L* "Pretrain without the last stage".
    """
    if not isinstance(encoder, TruncatedResNet):
        raise TypeError(f"to_full_resnet needs a TruncatedResNet, got {type(encoder).__name__}")
    full = build_resnet(encoder.arch, encoder.width, encoder.small_stem, encoder.in_channels, num_classes)
    result = full.load_state_dict(encoder.net.state_dict(), strict=False)
    wrong = [k for k in result.missing_keys if not k.startswith(("layer4.", "fc."))]
    if wrong or result.unexpected_keys:
        raise RuntimeError(f"pretrained weights do not fit the full network: missing {wrong}, unexpected {result.unexpected_keys}")
    nn.init.normal_(full.fc.weight, 0.0, fc_std)
    nn.init.zeros_(full.fc.bias)
    loaded = len(encoder.net.state_dict())
    return full, LoadReport(tuple(result.missing_keys), tuple(result.unexpected_keys), loaded)


#: The modules trained during the warm-up; everything else stays frozen.
HEAD_MODULES = ("layer4", "fc")


def freeze_trunk(net: ResNet, frozen: bool = True) -> list[str]:
    """Freeze (or unfreeze) every parameter outside ``layer4`` and ``fc``; returns the trainable names.

    Frozen batch-norm layers still re-estimate their running statistics in training mode, as S3L's
    ``main_freeze.py`` runs them (see :class:`FrozenTrunk`). Book section: *S3L* "Evaluating the features".
    """
    for name, p in net.named_parameters():
        p.requires_grad = (not frozen) or name.startswith(tuple(f"{m}." for m in HEAD_MODULES))
    return [n for n, p in net.named_parameters() if p.requires_grad]


class FrozenTrunk(nn.Module):
    """Wraps a ResNet for the warm-up: the trunk's weights are frozen while ``layer4`` and ``fc`` train.
    In training mode the whole network runs in training mode, so the trunk's batch-norm layers
    normalize with batch statistics and re-estimate their running statistics, as S3L's official
    ``main_freeze.py`` does (``model.train()`` with frozen weights). ``freeze_bn=True`` keeps the
    trunk in eval mode instead (its statistics stay those of pretraining): a variant, not S3L's recipe.

    Book section: *S3L* "Evaluating the features".
    """

    def __init__(self, net: ResNet, freeze_bn: bool = False):
        super().__init__()
        if not isinstance(freeze_bn, bool):
            raise TypeError(f"freeze_bn must be True or False, got {freeze_bn!r}")
        self.net = net
        self.freeze_bn = freeze_bn
        freeze_trunk(net, True)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.freeze_bn:
            for name, child in self.net.named_children():
                if name not in HEAD_MODULES:
                    child.train(False)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # (N, num_classes)
