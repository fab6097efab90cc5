r"""Multi-crop and CutMix within a crop group, on whole batches on the training device.

Crops come from the shared toolkit's ``companion.ssl.GPUAugment`` (random resized crop with
``torchvision.ops.roi_align``, colour jitter, grayscale, blur, flip, with parameters drawn per
image), so pretraining with six crops per image costs a few batched calls, on the CPU of a quick run
and on the GPU of a full run alike, instead of thousands of per-image PIL transforms. Fine-tuning adds
the official RandAugment (torchvision's ``transforms.v2.RandAugment``, drawn per image).

Book section: *ViT with 2040 images* "Multi-crop and CutMix".
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torchvision.transforms import v2

from ..ssl import GPUAugment
from .config import Crops, FinetuneAugment
from .model import check_batch as _check_batch


def grey_jitter(images: torch.Tensor, p: float, brightness: float, contrast: float) -> torch.Tensor:
    r"""Brightness and contrast jitter of 1-channel images, drawn per image, applied with probability ``p``.

    It is what ``ColorJitter`` does to a grey image (saturation, hue and grayscale leave grey
    unchanged): $x \leftarrow b\,x$ with $b\sim U[1-\text{brightness}, 1+\text{brightness}]$, then
    $x \leftarrow c\,x+(1-c)\,\bar x$ with $c\sim U[1-\text{contrast}, 1+\text{contrast}]$ and
    $\bar x$ the image's mean, each clamped to [0, 1] as torchvision does.
    """
    n = len(images)
    u = torch.rand(3, n)  # drawn on the CPU whatever the device: the same draws everywhere
    on = u[0] < p
    b = torch.where(on, 1 + brightness * (2 * u[1] - 1), torch.ones(n)).view(n, 1, 1, 1).to(images)
    c = torch.where(on, 1 + contrast * (2 * u[2] - 1), torch.ones(n)).view(n, 1, 1, 1).to(images)
    x = (images * b).clamp(0, 1)
    return (c * x + (1 - c) * x.mean((2, 3), keepdim=True)).clamp(0, 1)


#: torchvision's RandAugment, one operation at each official magnitude 1..9 of 10 (index 0 unused)
_RAND_AUGMENT = [v2.RandAugment(num_ops=1, magnitude=m, num_magnitude_bins=11) for m in range(10)]


def rand_augment(images: torch.Tensor) -> torch.Tensor:
    """The official fine-tuning RandAugment (``utils/data_utils.py``), per image: two operations, each
    applied with probability 0.5 at a magnitude drawn from 1..9 of 10, here torchvision's operations
    (``transforms.v2.RandAugment``: 14 including the identity; the official list has Invert and Cutout
    instead of the identity and Color). Drawn once per batch instead, it cost the quick run about 3
    points of fine-tuned and of from-scratch accuracy (3 seeds), so it is drawn per image.
    """
    out = []
    for image in images:
        for _ in range(2):
            if float(torch.rand(())) < 0.5:
                image = _RAND_AUGMENT[int(torch.randint(1, 10, ()))](image)
        out.append(image)
    return torch.stack(out)


class Augment:
    """A batched augmentation: ``GPUAugment``'s crop, flip and colour, brightness and contrast jitter on
    1-channel images (``GPUAugment`` skips colour there), then RandAugment when ``randaugment``.

    Book section: *ViT with 2040 images* "Multi-crop and CutMix" and "Fine-tuning".
    """

    def __init__(self, base: GPUAugment, randaugment: bool = False):
        self.base, self.randaugment = base, randaugment

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        x = self.base(images)
        if x.shape[1] == 1 and self.base.p_jitter > 0:
            b, c, _, _ = self.base.jitter
            x = grey_jitter(x, self.base.p_jitter, b, c)
        return rand_augment(x) if self.randaugment else x


def crop_augment(size: int, scale: tuple[float, float], crops: Crops) -> Augment:
    """The batched augmentation of one crop group: ``size``-px crops covering ``scale`` of the image,
    with the official pretraining colour jitter (``crops.jitter``, p 0.8) and grayscale (p 0.2).

    Book section: *ViT with 2040 images* "Multi-crop and CutMix".
    """
    return Augment(GPUAugment(size, scale=scale, ratio=crops.ratio, p_flip=0.5 if crops.hflip else 0.0,
                              jitter=crops.jitter, p_jitter=0.8 if crops.color else 0.0,
                              p_gray=0.2 if crops.color else 0.0, blur=crops.blur))


def finetune_augment(size: int, aug: FinetuneAugment) -> Augment:
    """The official fine-tuning augmentation at ``size`` px: crop, jitter, grayscale, RandAugment, flip; no blur.

    Book section: *ViT with 2040 images* "Fine-tuning".
    """
    return Augment(GPUAugment(size, scale=aug.scale, p_flip=0.5 if aug.hflip else 0.0, jitter=aug.jitter,
                              p_jitter=aug.p_jitter, p_gray=aug.p_gray, blur=False), randaugment=aug.randaugment)


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
    a box of area $\approx(1-\lambda)HW$ from a shuffled partner $\pi(i)$ is pasted into image $i$
    (its half-sides at least one pixel, so the box is never empty: the official code's box, whose
    half-side ``int(H sqrt(1 - lambda)) // 2`` is 0 in about 1 % of draws at 224 px, 2 % at 112 px and
    43 % at 6 px),
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
    half_h, half_w = max(int(h * cut) // 2, 1), max(int(w * cut) // 2, 1)  # never an empty box
    cy, cx = int(torch.randint(h, ())), int(torch.randint(w, ()))
    y1, y2 = max(cy - half_h, 0), min(cy + half_h, h)
    x1, x2 = max(cx - half_w, 0), min(cx + half_w, w)
    perm = torch.randperm(m).to(images.device)
    mixed = images.clone()  # the paper's code pastes in place; a copy keeps the caller's crops intact
    mixed[:, :, y1:y2, x1:x2] = images[perm, :, y1:y2, x1:x2]
    lam = 1 - (y2 - y1) * (x2 - x1) / (h * w)
    targets = lam * F.one_hot(labels.long(), num_classes).to(images.dtype)
    targets += (1 - lam) * F.one_hot(labels[perm].long(), num_classes).to(images.dtype)
    return mixed, targets, lam
