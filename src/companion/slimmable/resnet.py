"""A universally slimmable ResNet (BasicBlock, ResNet-18 layout) with costs per width.

Book section: *US3L* "Slimmable networks".
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ..tensors import as_model_input, check_count
from .layers import SlimmableBatchNorm, SlimmableConv2d, active_channels, check_width, set_width


class SlimmableBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, divisor: int):
        super().__init__()
        conv = lambda i, o, k, s: SlimmableConv2d(i, o, k, s, padding=k // 2, bias=False, divisor=divisor)  # noqa: E731
        self.conv1, self.bn1 = conv(c_in, c_out, 3, stride), SlimmableBatchNorm(c_out)
        self.conv2, self.bn2 = conv(c_out, c_out, 3, 1), SlimmableBatchNorm(c_out)
        self.shortcut = None
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(conv(c_in, c_out, 1, stride), SlimmableBatchNorm(c_out))

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + (x if self.shortcut is None else self.shortcut(x)))


class SlimmableResNet(nn.Module):
    """ResNet-18 layout (two blocks per stage) whose every layer is slimmable; maps images to features.

    ``base_width`` 64 gives ResNet-18's channels (64-128-256-512); quick runs use a narrower base.
    ``small_stem``: a 3x3 stride-1 stem without max-pool, for 32-px images. At width ``w`` the feature
    dimension is ``feature_dim_at(w)``.
    """

    def __init__(self, base_width: int = 64, blocks=(2, 2, 2, 2), in_channels: int = 3,
                 small_stem: bool = True, divisor: int = 8):
        super().__init__()
        base_width = check_count(base_width, "base_width")
        in_channels = check_count(in_channels, "in_channels")
        if not isinstance(blocks, (tuple, list)) or not blocks:
            raise ValueError(f"blocks must be a non-empty tuple of blocks per stage, got {blocks!r}")
        for i, n in enumerate(blocks):
            check_count(n, f"blocks[{i}] (blocks in stage {i + 1})")
        widths = [base_width * 2**i for i in range(len(blocks))]
        self.divisor = divisor
        self.in_channels = in_channels
        if small_stem:
            self.stem = nn.Sequential(SlimmableConv2d(in_channels, widths[0], 3, 1, 1, bias=False, divisor=divisor),
                                      SlimmableBatchNorm(widths[0]), nn.ReLU(inplace=True))
        else:
            self.stem = nn.Sequential(SlimmableConv2d(in_channels, widths[0], 7, 2, 3, bias=False, divisor=divisor),
                                      SlimmableBatchNorm(widths[0]), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1))
        layers, c = [], widths[0]
        for i, (n, w) in enumerate(zip(blocks, widths)):
            for j in range(n):
                layers.append(SlimmableBlock(c, w, 2 if (j == 0 and i > 0) else 1, divisor))
                c = w
        self.layers = nn.Sequential(*layers)
        self.feature_dim = c
        self.width_mult = 1.0

    def feature_dim_at(self, width: float) -> int:
        return active_channels(self.feature_dim, width, self.divisor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = as_model_input(x, self, "x", ndim=4, shape_hint="(N, C, H, W)")
        if x.shape[1] != self.in_channels:
            # the stem would silently use the first channels' weights of a wider input layer
            raise ValueError(f"this network takes {self.in_channels}-channel images, got {x.shape[1]} channels "
                             f"(shape {tuple(x.shape)}); build it with in_channels={x.shape[1]} or convert the images")
        h = self.layers(self.stem(x))  # (N, c(w), H', W')
        return torch.flatten(nn.functional.adaptive_avg_pool2d(h, 1), 1)  # (N, c(w))


def cost_at(model: nn.Module, width: float, resolution: int, in_channels: int = 3) -> dict:
    """FLOPs per image (``FlopCounterMode``) and active parameters of ``model`` at ``width``."""
    check_width(width)
    previous = getattr(model, "width_mult", 1.0)
    set_width(model, width)
    was_training = model.training
    model.eval()
    used: dict[str, int] = {}
    hooks = []
    for name, m in model.named_modules():
        if isinstance(m, (SlimmableConv2d, nn.Linear)):
            def hook(mod, inp, out, name=name):
                c_in = inp[0].shape[1] if inp[0].dim() > 2 else inp[0].shape[-1]
                c_out = out.shape[1] if out.dim() > 2 else out.shape[-1]
                k = mod.weight[0, 0].numel()
                used[name] = c_out * c_in * k + (c_out if mod.bias is not None else 0)
            hooks.append(m.register_forward_hook(hook))
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            def bn_hook(mod, inp, out, name=name):
                used[name] = 2 * inp[0].shape[1]
            hooks.append(m.register_forward_hook(bn_hook))
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(torch.zeros(1, in_channels, resolution, resolution))
    finally:
        for h in hooks:
            h.remove()
        set_width(model, previous)
        model.train(was_training)
    return {"width": width, "flops": int(counter.get_total_flops()), "params": int(sum(used.values()))}
