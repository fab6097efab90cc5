r"""Parametric instance discrimination: a classifier with one class per training image.

Each training image $x_i$, $i=1..N$, is its own class. The ViT's class token $f(x)\in\mathbb R^D$ goes
through a linear head $W\in\mathbb R^{N\times D}$ and the loss is the cross-entropy on the image's
index, summed over the crop groups $g$ (global, local), each CutMixed within itself:

$$\mathcal L=\sum_{g}\frac{1}{|g|}\sum_{(\tilde x,\tilde y)\in g}
  -\sum_{i=1}^{N}\tilde y_i\log\mathrm{softmax}(W f(\tilde x))_i ,$$

with $\tilde y$ the CutMix target ($\lambda$ on the crop's own index, $1-\lambda$ on its partner's).

Book section: *ViT with 2040 images* "Instance discrimination".
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import VisionTransformer

from .. import train
from .augment import CropGroups, cutmix
from .config import Crops


def num_instances(model: VisionTransformer) -> int:
    """The number of classes of the ViT's head: one per training image in pretraining.

    Book section: *ViT with 2040 images* "Instance discrimination".
    """
    return model.heads[-1].out_features


def as_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 images (how full runs keep them in memory) -> floats in [0, 1]; floats pass through.

    Book section: *ViT with 2040 images* "Full run" (images kept as uint8).
    """
    return images.float().div_(255) if images.dtype == torch.uint8 else images


class InstanceDiscrimination:
    """The pretraining step for ``companion.train.fit``: ``step(model, (images, index)) -> dict``.

    ``size`` is the crop resolution (the model's ``image_size``); ``multi_crop`` adds the local
    group; ``cutmix`` mixes within each group. Logged: ``loss`` and ``inst_acc`` (how often a global
    crop's largest logit is its own image), and with ``cutmix`` the pasted share of each crop
    (``cutmix_area``, mean over the groups' draws) and the share of draws that pasted at least one
    ``patch_size`` x ``patch_size`` patch's area (``cutmix_patch``; the premise that CutMix pastes a
    real region).

    Book section: *ViT with 2040 images* "Instance discrimination".
    """

    def __init__(self, num_instances: int, size: int, crops: Crops = Crops(), multi_crop: bool = True,
                 cutmix: bool = True, alpha: float = 0.5, patch_size: int = 1):
        if not isinstance(num_instances, int) or num_instances < 2:
            raise ValueError(f"num_instances must be an integer >= 2, got {num_instances!r}")
        if isinstance(patch_size, bool) or not isinstance(patch_size, int) or not 1 <= patch_size <= size:
            raise ValueError(f"patch_size must be an integer in [1, size = {size}], got {patch_size!r}")
        self.n, self.size, self.patch_area = num_instances, size, (patch_size / size) ** 2
        self.crop_groups = CropGroups(crops, size, local=multi_crop)
        self.cutmix, self.alpha = cutmix, alpha

    def __call__(self, model: nn.Module, batch) -> dict:
        images, index = batch  # (B, C, H, W), (B,)
        if int(index.max()) >= self.n:
            raise ValueError(f"image index {int(index.max())} but the instance head has {self.n} classes")
        groups = self.crop_groups(as_float(images))
        inputs, targets, pasted = [], [], []
        for crops in groups:
            y = index.repeat(len(crops) // len(index))  # crop k of image i is row k * B + i
            if self.cutmix:
                crops, y, lam = cutmix(crops, y, self.n, self.alpha)
                pasted.append(1 - lam)
            inputs.append(crops)
            targets.append(y)
        logits = model(torch.cat(inputs))  # one pass over all groups: (sum |g|, N)
        loss, start = 0.0, 0
        for y in targets:
            part = logits[start:start + len(y)]
            loss = loss + F.cross_entropy(part, y)  # int indices or CutMix's soft targets
            start += len(y)
        own = targets[0] if targets[0].ndim == 1 else targets[0].argmax(1)
        inst_acc = (logits[: len(own)].argmax(1) == own).float().mean()
        logs = {"loss": loss, "inst_acc": inst_acc}
        if pasted:
            logs["cutmix_area"] = sum(pasted) / len(pasted)
            # a small tolerance: an area of exactly one patch counts despite float rounding
            logs["cutmix_patch"] = sum(a >= self.patch_area - 1e-9 for a in pasted) / len(pasted)
        return logs


def pretrain(model: VisionTransformer, images: torch.Tensor, step: InstanceDiscrimination,
             fit_config: train.FitConfig) -> train.FitResult:
    """Pretrain ``model`` (head size N) by instance discrimination on ``images`` (N, C, H, W).

    ``images`` may be larger than the crops (crops are resized to ``step.size``); each image's
    class is its row index. A head whose size differs from the number of images is an error: the
    head is built for one dataset and cannot follow a dataset that changed size.

    Book section: *ViT with 2040 images* "Instance discrimination".
    """
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        raise ValueError(f"images must be an (N, C, H, W) tensor, got {getattr(images, 'shape', type(images))}")
    n = len(images)
    if num_instances(model) != n or step.n != n:
        raise ValueError(
            f"the instance head has {num_instances(model)} classes and the step expects {step.n}, but the "
            f"dataset has {n} images: build the model with num_classes=len(images) for this dataset"
        )
    if model.image_size != step.size:
        raise ValueError(f"the model takes {model.image_size}-px inputs but the crops are {step.size} px")
    if images.shape[1] != model.conv_proj.in_channels:
        raise ValueError(f"the ViT takes {model.conv_proj.in_channels}-channel images, got {images.shape[1]}")
    index = torch.arange(n, device=images.device)
    return train.fit(model, (images, index), step, fit_config)
