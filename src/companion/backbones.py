"""Convolutional trunks from torchvision, truncated after a chosen stage, random or pretrained.

Shared by Tobias (random-CNN localization maps) and PSOL (DDT descriptors).

Book sections: *Tobias* "A random CNN", *PSOL* "Deep descriptor transforming".
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision import models
from torchvision.models.resnet import Bottleneck

#: The stages each architecture can be cut after, and their total stride.
STAGES = {
    "resnet18": {"layer1": 4, "layer2": 8, "layer3": 16, "layer4": 32},
    "resnet50": {"layer1": 4, "layer2": 8, "layer3": 16, "layer4": 32},
    "vgg16": {"conv3": 4, "conv4": 8, "conv5": 16, "pool5": 32},
}
#: Random initializations (conv and linear weights; biases zeroed), as the official Tobias ablations
#: draw them: ``default`` is torchvision's (Kaiming-normal, fan-out, the official ``resnet50`` too),
#: ``uniform`` U(-0.1, 0.1) (``uniform_resnet50``), ``gaussian`` N(0, 0.1^2) (``gauss_resnet50``),
#: ``xavier`` Xavier-normal (``xavier_resnet50``), ``xavier_uniform`` (``xavier_uniform_resnet50``),
#: ``kaiming_uniform`` Kaiming-uniform with fan-out and the ReLU gain (``kaiming_uniform_resnet50``).
INITS = ("default", "uniform", "gaussian", "xavier", "xavier_uniform", "kaiming_uniform")
# how many of torchvision's vgg16().features modules each stage keeps (conv5 = after relu5_3)
_VGG_CUTS = {"conv3": 16, "conv4": 23, "conv5": 30, "pool5": 31}


def _init_(model: nn.Module, init: str, generator: torch.Generator) -> None:
    r"""Re-initialize conv/linear weights in place from ``init`` (see :data:`INITS`), biases to zero.

    With :math:`n_\mathrm{in}, n_\mathrm{out}` the fans (channels times kernel area):
    Xavier-normal :math:`\mathcal N(0, 2/(n_\mathrm{in}+n_\mathrm{out}))`, Xavier-uniform
    :math:`U(\pm\sqrt{6/(n_\mathrm{in}+n_\mathrm{out})})`, Kaiming-uniform (fan-out, ReLU gain
    :math:`\sqrt 2`) :math:`U(\pm\sqrt{6/n_\mathrm{out}})`. Draws come from ``generator``.
    """
    if init == "default":
        return
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            w = m.weight
            fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(w)
            with torch.no_grad():
                if init == "uniform":
                    w.copy_(torch.rand(w.shape, generator=generator) * 0.2 - 0.1)
                elif init == "gaussian":
                    w.copy_(torch.randn(w.shape, generator=generator) * 0.1)
                elif init == "xavier":  # nn.init.xavier_normal_, gain 1
                    std = (2.0 / (fan_in + fan_out)) ** 0.5
                    w.copy_(torch.randn(w.shape, generator=generator) * std)
                elif init == "xavier_uniform":
                    bound = (6.0 / (fan_in + fan_out)) ** 0.5
                    w.copy_((torch.rand(w.shape, generator=generator) * 2 - 1) * bound)
                elif init == "kaiming_uniform":  # mode="fan_out", nonlinearity="relu"
                    bound = (6.0 / fan_out) ** 0.5
                    w.copy_((torch.rand(w.shape, generator=generator) * 2 - 1) * bound)
                if m.bias is not None:
                    m.bias.zero_()


def _set_layer4_stride(net: models.ResNet, stride: int) -> None:
    """Give ``layer4``'s first block ``stride`` (its strided 3x3 conv and its 1x1 shortcut).

    ``stride=1`` is the official Tobias localization ResNets' ``layer4`` (built with stride 1, no
    dilation): the weights keep their shapes, only the output grid doubles.
    """
    block = net.layer4[0]
    conv = block.conv2 if isinstance(block, Bottleneck) else block.conv1
    conv.stride = (stride, stride)
    if block.downsample is not None:
        block.downsample[0].stride = (stride, stride)


def conv_trunk(arch: str = "resnet50", stage: str | None = None, init: str = "default", seed: int = 0,
               pretrained: bool = False, layer4_stride: int = 2) -> nn.Module:
    """A torchvision CNN cut after ``stage`` (default: its last conv stage), in **eval mode**.

    ``layer4_stride`` (ResNets only): 2 is torchvision's network (total stride 32, a 7x7 map at
    224 px); 1 is the network of the official Tobias localization code (``layer4`` at stride 1, total
    stride 16, a 14x14 map at 224 px). The same ``seed`` gives the same weights either way.

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
    if layer4_stride not in (1, 2) or isinstance(layer4_stride, bool):
        raise ValueError(f"layer4_stride must be 1 (the official Tobias ResNets) or 2 (torchvision), got {layer4_stride!r}")
    if layer4_stride != 2 and not arch.startswith("resnet"):
        raise ValueError(f"layer4_stride applies to the ResNets only; {arch} has no layer4")
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        if arch.startswith("resnet"):
            weights = "IMAGENET1K_V1" if pretrained else None
            net = getattr(models, arch)(weights=weights)
            _set_layer4_stride(net, layer4_stride)
            keep = ["conv1", "bn1", "relu", "maxpool"] + stages[: stages.index(stage) + 1]
            trunk = nn.Sequential(*[getattr(net, name) for name in keep])
        else:
            net = models.vgg16(weights="IMAGENET1K_V1" if pretrained else None)
            cut = _VGG_CUTS[stage]
            trunk = nn.Sequential(*list(net.features.children())[:cut])
    if not pretrained:
        _init_(trunk, init, torch.Generator().manual_seed(seed))
    stride = STAGES[arch][stage]
    if stage == "layer4" and layer4_stride == 1:
        stride //= 2
    trunk.arch, trunk.stage, trunk.stride, trunk.layer4_stride = arch, stage, stride, layer4_stride
    return trunk.eval()


def out_channels(trunk: nn.Module) -> int:
    """Channels of the trunk's output feature map."""
    convs = [m for m in trunk.modules() if isinstance(m, nn.Conv2d)]
    last = [m for m in trunk.modules() if isinstance(m, nn.BatchNorm2d)]
    if trunk.arch.startswith("resnet"):
        return last[-1].num_features
    return convs[-1].out_channels
