r"""Batched augmentation on the training device: multi-crop, CutMix within a crop group, jitter.

The whole batch is cropped at once with ``torchvision.ops.roi_align`` (one box per crop, bilinear,
averaged over 2x2 samples per output pixel), so pretraining with six crops per image costs one call,
on the CPU of a quick run and on the GPU of a full run alike, instead of thousands of per-image PIL
transforms.

Book section: *ViT with 2040 images* "Multi-crop and CutMix".
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torchvision.ops import roi_align

from .config import Crops


def _check_batch(images: torch.Tensor) -> None:
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images must be a torch.Tensor, got {type(images).__name__}")
    if images.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {tuple(images.shape)}")
    if not images.is_floating_point():
        raise TypeError(f"images must be floating point in [0, 1], got {images.dtype}")
    if images.shape[0] == 0:
        raise ValueError("images is empty")


def random_resized_boxes(n: int, height: int, width: int, scale: tuple[float, float],
                         ratio: tuple[float, float] = (3 / 4, 4 / 3), device=None) -> torch.Tensor:
    r"""``n`` random crop boxes ``(n, 4)`` (x1, y1, x2, y2, pixels) as in ``RandomResizedCrop``.

    Area fraction $s\sim U(\text{scale})$, aspect $r$ log-uniform in ``ratio``, $w=\sqrt{sHWr}$,
    $h=\sqrt{sHW/r}$ (clipped to the image instead of torchvision's retries), position uniform.

    Book section: *ViT with 2040 images* "Multi-crop and CutMix".
    """
    lo, hi = scale
    if not 0 < lo <= hi <= 1:
        raise ValueError(f"scale must satisfy 0 < lo <= hi <= 1, got {scale}")
    area = torch.empty(n, device=device).uniform_(lo, hi) * height * width
    log_r = torch.empty(n, device=device).uniform_(math.log(ratio[0]), math.log(ratio[1]))
    w = (area * log_r.exp()).sqrt().clamp(max=width)
    h = (area / log_r.exp()).sqrt().clamp(max=height)
    x1 = torch.rand(n, device=device) * (width - w)
    y1 = torch.rand(n, device=device) * (height - h)
    return torch.stack([x1, y1, x1 + w, y1 + h], dim=1)


def color_jitter(images: torch.Tensor, strength: float, p: float = 0.8, p_gray: float = 0.2) -> torch.Tensor:
    """Per-image random brightness, contrast and saturation (factors in ``1 +- strength``) and grayscale.

    The same recipe as ``ColorJitter(s, s, s)`` with probability ``p`` and ``RandomGrayscale(p_gray)``,
    drawn independently per image and applied to the whole batch at once. One-channel images are
    returned unchanged.
    """
    if strength == 0 or images.shape[1] != 3:
        return images
    n = images.shape[0]

    def factor():
        f = 1 + (torch.rand(n, 1, 1, 1, device=images.device) * 2 - 1) * strength
        return torch.where(torch.rand(n, 1, 1, 1, device=images.device) < p, f, torch.ones_like(f))

    gray_w = torch.tensor([0.299, 0.587, 0.114], device=images.device).view(1, 3, 1, 1)
    x = (images * factor()).clamp(0, 1)  # brightness
    mean = (x * gray_w).sum(1, keepdim=True).mean((2, 3), keepdim=True)
    x = (mean + factor() * (x - mean)).clamp(0, 1)  # contrast
    gray = (x * gray_w).sum(1, keepdim=True)
    x = (gray + factor() * (x - gray)).clamp(0, 1)  # saturation
    to_gray = torch.rand(n, 1, 1, 1, device=images.device) < p_gray
    return torch.where(to_gray, (x * gray_w).sum(1, keepdim=True).expand_as(x), x)


def random_resized_crops(images: torch.Tensor, copies: int, size: int, scale: tuple[float, float],
                         ratio: tuple[float, float] = (3 / 4, 4 / 3), hflip: bool = True,
                         jitter: float = 0.0) -> torch.Tensor:
    """``(B, C, H, W)`` -> ``(copies * B, C, size, size)``: ``copies`` random resized crops of each image.

    Crop ``k`` of image ``i`` is row ``k * B + i`` (so targets are ``index.repeat(copies)``).

    Book section: *ViT with 2040 images* "Multi-crop and CutMix".
    """
    _check_batch(images)
    if copies < 1 or size < 1:
        raise ValueError(f"copies and size must be positive, got {copies}, {size}")
    b, _, h, w = images.shape
    boxes = random_resized_boxes(copies * b, h, w, scale, ratio, device=images.device)
    which = torch.arange(b, device=images.device).repeat(copies).to(images.dtype)
    crops = roi_align(images, torch.cat([which[:, None], boxes.to(images.dtype)], 1), output_size=size,
                      spatial_scale=1.0, sampling_ratio=2, aligned=True)
    if hflip:
        flip = torch.rand(len(crops), 1, 1, 1, device=images.device) < 0.5
        crops = torch.where(flip, crops.flip(-1), crops)
    return color_jitter(crops, jitter)


def multi_crop(images: torch.Tensor, crops: Crops, size: int, local: bool = True) -> list[torch.Tensor]:
    r"""The crop groups of one pretraining batch: ``[global (n_g B, C, s, s), local (n_l B, C, s, s)]``.

    Global crops cover ``crops.global_scale`` of the image, local crops ``crops.local_scale``; all are
    ``size`` pixels (the paper's 112). ``local=False`` gives the global group only (no multi-crop).

    Book section: *ViT with 2040 images* "Multi-crop and CutMix".
    """
    groups = [random_resized_crops(images, crops.n_global, size, crops.global_scale, crops.ratio,
                                   crops.hflip, crops.color_jitter)]
    if local and crops.n_local:
        groups.append(random_resized_crops(images, crops.n_local, size, crops.local_scale, crops.ratio,
                                           crops.hflip, crops.color_jitter))
    return groups


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
    _check_batch(images)
    if labels.shape != (images.shape[0],) or labels.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"labels must be integer (N,) = ({images.shape[0]},), got {labels.dtype} {tuple(labels.shape)}")
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
    perm = torch.randperm(m, device=images.device)
    mixed = images.clone()
    mixed[:, :, y1:y2, x1:x2] = images[perm, :, y1:y2, x1:x2]
    lam = 1 - (y2 - y1) * (x2 - x1) / (h * w)
    targets = lam * F.one_hot(labels.long(), num_classes).to(images.dtype)
    targets += (1 - lam) * F.one_hot(labels[perm].long(), num_classes).to(images.dtype)
    return mixed, targets, lam
