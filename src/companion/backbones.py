"""Convolutional trunks from torchvision, truncated after a chosen stage, random or pretrained.

Shared by Tobias (random-CNN localization maps) and PSOL (DDT descriptors).

Book sections: *Tobias* "A random CNN", *PSOL* "Deep descriptor transforming".
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision import models

#: The stages each architecture can be cut after, and their total stride.
STAGES = {
    "resnet18": {"layer1": 4, "layer2": 8, "layer3": 16, "layer4": 32},
    "resnet50": {"layer1": 4, "layer2": 8, "layer3": 16, "layer4": 32},
    "vgg16": {"conv3": 4, "conv4": 8, "conv5": 16, "pool5": 32},
}
INITS = ("default", "uniform", "gaussian", "xavier")
# how many of torchvision's vgg16().features modules each stage keeps (conv5 = after relu5_3)
_VGG_CUTS = {"conv3": 16, "conv4": 23, "conv5": 30, "pool5": 31}


def _init_(model: nn.Module, init: str, generator: torch.Generator) -> None:
    """Re-initialize conv/linear weights in place: U(-0.1, 0.1), N(0, 0.1^2) (the official gauss_resnet50) or Xavier-uniform."""
    if init == "default":
        return
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            w = m.weight
            with torch.no_grad():
                if init == "uniform":
                    w.copy_(torch.rand(w.shape, generator=generator) * 0.2 - 0.1)
                elif init == "gaussian":
                    w.copy_(torch.randn(w.shape, generator=generator) * 0.1)
                elif init == "xavier":
                    bound = (6.0 / (nn.init._calculate_fan_in_and_fan_out(w)[0] + nn.init._calculate_fan_in_and_fan_out(w)[1])) ** 0.5
                    w.copy_((torch.rand(w.shape, generator=generator) * 2 - 1) * bound)
                if m.bias is not None:
                    m.bias.zero_()


def conv_trunk(arch: str = "resnet50", stage: str | None = None, init: str = "default", seed: int = 0,
               pretrained: bool = False) -> nn.Module:
    """A torchvision CNN cut after ``stage`` (default: its last conv stage), in **eval mode**.

    ``pretrained=True`` loads ImageNet weights (a download: full mode only); otherwise the weights are
    random, drawn from ``init`` with ``seed``. Eval mode matters for random networks: BatchNorm then uses
    its running statistics (0 and 1), so an image's map does not depend on the rest of the batch.
    Output: ``(N, C, H/stride, W/stride)``.
    """
    if arch not in STAGES:
        raise ValueError(f"arch must be one of {sorted(STAGES)}, got {arch!r}")
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    stages = list(STAGES[arch])
    stage = stage or stages[-1]
    if stage not in STAGES[arch]:
        raise ValueError(f"{arch} can be cut after {stages}, got {stage!r}")
    if pretrained and init != "default":
        raise ValueError("pretrained weights and a random init are exclusive")
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        if arch.startswith("resnet"):
            weights = "IMAGENET1K_V1" if pretrained else None
            net = getattr(models, arch)(weights=weights)
            keep = ["conv1", "bn1", "relu", "maxpool"] + stages[: stages.index(stage) + 1]
            trunk = nn.Sequential(*[getattr(net, name) for name in keep])
        else:
            net = models.vgg16(weights="IMAGENET1K_V1" if pretrained else None)
            cut = _VGG_CUTS[stage]
            trunk = nn.Sequential(*list(net.features.children())[:cut])
    if not pretrained:
        _init_(trunk, init, torch.Generator().manual_seed(seed))
    trunk.arch, trunk.stage, trunk.stride = arch, stage, STAGES[arch][stage]
    return trunk.eval()


def out_channels(trunk: nn.Module) -> int:
    """Channels of the trunk's output feature map."""
    convs = [m for m in trunk.modules() if isinstance(m, nn.Conv2d)]
    last = [m for m in trunk.modules() if isinstance(m, nn.BatchNorm2d)]
    if trunk.arch.startswith("resnet"):
        return last[-1].num_features
    return convs[-1].out_channels
