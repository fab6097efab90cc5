r"""Multi-crop and CutMix within a crop group, on whole batches on the training device.

Crops come from the shared toolkit's ``companion.ssl.GPUAugment`` (random resized crop with
``torchvision.ops.roi_align``, colour jitter, grayscale, blur, flip, with parameters drawn per
image), so pretraining with six crops per image costs a few batched calls, on the CPU of a quick run
and on the GPU of a full run alike, instead of thousands of per-image PIL transforms.

Book section: *ViT with 2040 images* "Multi-crop and CutMix".
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..ssl import GPUAugment
from .config import Crops
from .model import check_batch as _check_batch


def crop_augment(size: int, scale: tuple[float, float], crops: Crops) -> GPUAugment:
    """The batched augmentation of one crop group: ``size``-px crops covering ``scale`` of the image.

    Book section: *ViT with 2040 images* "Multi-crop and CutMix".
    """
    return GPUAugment(size, scale=scale, ratio=crops.ratio, p_flip=0.5 if crops.hflip else 0.0,
                      p_jitter=0.8 if crops.color else 0.0, p_gray=0.2 if crops.color else 0.0,
                      blur=crops.blur)


class CropGroups:
    r"""``images (B, C, H, W)`` -> ``[global (n_g B, C, s, s), local (n_l B, C, s, s)]``.

    Global crops cover ``crops.global_scale`` of the image, local ones ``crops.local_scale``; every
    crop has the pretraining resolution ``s`` (the paper's 112 px, for local crops too). Crop ``k`` of
    image ``i`` is row ``k B + i`` of its group, so its instance target is ``index.repeat(n)[k B + i]``.
    ``local=False`` keeps the global group only (pretraining without multi-crop).

    Book section: *ViT with 2040 images* "Multi-crop and CutMix".
    """

    def __init__(self, crops: Crops, size: int, local: bool = True):
        self.groups = [(crop_augment(size, crops.global_scale, crops), crops.n_global)]
        if local and crops.n_local:
            self.groups.append((crop_augment(size, crops.local_scale, crops), crops.n_local))

    def __call__(self, images: torch.Tensor) -> list[torch.Tensor]:
        images = _check_batch(images)
        return [augment(images.repeat(copies, 1, 1, 1)) for augment, copies in self.groups]


def cutmix(images: torch.Tensor, labels: torch.Tensor, num_classes: int, alpha: float = 0.5
           ) -> tuple[torch.Tensor, torch.Tensor, float]:
    r"""CutMix as the paper pretrains with it: one box per batch, the larger share kept by the image.

    $$\lambda\sim\mathrm{Beta}(\alpha,\alpha),\quad \lambda\leftarrow\max(\lambda,1-\lambda),$$
    a box of area $\approx(1-\lambda)HW$ from a shuffled partner $\pi(i)$ is pasted into image $i$,
    then $\lambda$ is reset to the exact kept area $1-\frac{|\text{box}|}{HW}$ and the target is
    $$\tilde y_i=\lambda\,\mathrm{onehot}(y_i)+(1-\lambda)\,\mathrm{onehot}(y_{\pi(i)}).$$

    ``images (M, C, H, W)``, ``labels (M,)`` int -> (mixed images (a new tensor), soft targets
    ``(M, num_classes)``, $\lambda$). Call it on one crop group at a time.

    Book section: *ViT with 2040 images* "Multi-crop and CutMix".
    """
    images = _check_batch(images)
    if not isinstance(labels, torch.Tensor) or labels.shape != (images.shape[0],) or labels.is_floating_point():
        raise ValueError(f"labels must be an integer tensor of shape ({images.shape[0]},), got "
                         f"{getattr(labels, 'dtype', type(labels))} {tuple(getattr(labels, 'shape', ()))}")
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    if alpha <= 0:
        raise ValueError(f"alpha must be positive, got {alpha}")
    if int(labels.min()) < 0 or int(labels.max()) >= num_classes:
        raise ValueError(f"labels must lie in [0, {num_classes}), got [{int(labels.min())}, {int(labels.max())}]")
    m, _, h, w = images.shape
    lam = float(torch.distributions.Beta(alpha, alpha).sample())
    lam = max(lam, 1 - lam)
    cut = math.sqrt(1 - lam)
    ch, cw = int(h * cut), int(w * cut)
    cy, cx = int(torch.randint(h, ())), int(torch.randint(w, ()))
    y1, y2 = max(cy - ch // 2, 0), min(cy + ch // 2, h)
    x1, x2 = max(cx - cw // 2, 0), min(cx + cw // 2, w)
    perm = torch.randperm(m).to(images.device)
    mixed = images.clone()  # the paper's code pastes in place; a copy keeps the caller's crops intact
    mixed[:, :, y1:y2, x1:x2] = images[perm, :, y1:y2, x1:x2]
    lam = 1 - (y2 - y1) * (x2 - x1) / (h * w)
    targets = lam * F.one_hot(labels.long(), num_classes).to(images.dtype)
    targets += (1 - lam) * F.one_hot(labels[perm].long(), num_classes).to(images.dtype)
    return mixed, targets, lam
