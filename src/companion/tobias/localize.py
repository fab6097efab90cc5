r"""Random-CNN localization: the channel-summed activation map, its mean threshold, the largest
connected component and its box (the SCDA recipe the paper applies to a network that was never trained).

For an image :math:`x` and a CNN trunk :math:`f` cut after some stage, the activation tensor is
:math:`A = f(x) \in \mathbb{R}^{C\times h\times w}`. The paper sums it over channels,

.. math:: S_{ij} = \sum_{c=1}^{C} A_{cij},

keeps the cells above the map's mean, :math:`M_{ij} = [\,S_{ij} > \tau\,\bar S\,]` with
:math:`\bar S = \frac{1}{hw}\sum_{ij} S_{ij}` and :math:`\tau = 1`, keeps the largest 8-connected
component of :math:`M`, upsamples it to the image with nearest-neighbour interpolation and returns the
tight box around it (the whole image when no cell survives).

Book sections: *Tobias* "A random CNN", "The activation map" and "From a map to a box".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..boxes import largest_component, mask_to_box
from ..tensors import as_tensor, check_batch_size, check_unit_images

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "LocalizationResult",
    "prepare_images",
    "activation_map",
    "normalize_map",
    "boxes_from_maps",
    "upsample_masks",
    "localize",
]

#: ImageNet channel statistics: the paper feeds ImageNet-normalized images even to random networks.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def prepare_images(images, min_size: int = 1) -> torch.Tensor:
    """Check and convert images to a float ``(N, 3, H, W)`` batch in [0, 1].

    Accepted: a torch tensor or NumPy array, channels first: ``(N, C, H, W)``, one image ``(C, H, W)``
    or one grayscale image ``(H, W)``. ``C`` may be 1 (grayscale: repeated to three channels), 3 (RGB)
    or 4 (RGBA: the alpha channel is dropped, the colours are kept as they are). ``uint8`` images are
    divided by 255; float images must already lie in [0, 1] (nothing is clipped).

    Raises ``TypeError`` for non-numeric or boolean data and ``ValueError`` for an empty batch, a
    wrong number of dimensions or channels, NaNs, values outside [0, 1], or images smaller than
    ``min_size`` pixels a side. Book section: *Tobias* "The activation map".
    """
    if isinstance(images, np.ndarray):
        if images.dtype == object or not (np.issubdtype(images.dtype, np.number) or images.dtype == bool):
            raise TypeError(f"images must be a numeric array, got dtype {images.dtype}")
        images = torch.from_numpy(np.ascontiguousarray(images))
    if not torch.is_tensor(images):
        raise TypeError(f"images must be a torch tensor or NumPy array, got {type(images).__name__}")
    images = as_tensor(images, "images", dtype=None, finite=False, nonempty=False)  # refuses meta tensors
    if images.dtype == torch.bool or images.is_complex():
        raise TypeError(f"images must hold real pixel values (uint8 or float), got dtype {images.dtype}")
    x = images
    if x.ndim == 2:
        x = x[None, None]  # one grayscale image (H, W)
    elif x.ndim == 3:
        x = x[None]  # one image (C, H, W)
    if x.ndim != 4:
        raise ValueError(
            f"images must be (N, C, H, W), (C, H, W) or (H, W); got an array of shape {tuple(images.shape)}"
        )
    if x.shape[0] == 0:
        raise ValueError(f"images is an empty batch (shape {tuple(images.shape)})")
    c = x.shape[1]
    if c not in (1, 3, 4):
        raise ValueError(
            f"images must have 1 (grayscale), 3 (RGB) or 4 (RGBA) channels in dimension 1, got {c} "
            f"(shape {tuple(images.shape)}); channels-last arrays need .permute / np.moveaxis first"
        )
    if min(x.shape[-2:]) < min_size:
        raise ValueError(f"images of {x.shape[-2]}x{x.shape[-1]} px are too small: need at least {min_size} px a side")
    if x.dtype == torch.uint8:
        x = x.float() / 255.0
    elif x.is_floating_point():
        x = check_unit_images(x.float())
    else:
        raise TypeError(f"images must be uint8 or float, got dtype {x.dtype}")
    if c == 1:
        x = x.expand(-1, 3, -1, -1)
    elif c == 4:
        x = x[:, :3]
    return x.contiguous()


def _device_of(module: nn.Module) -> torch.device:
    p = next(module.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def activation_map(trunk: nn.Module, images, batch_size: int = 64) -> torch.Tensor:
    r"""The channel-summed activation map :math:`S_{ij} = \sum_c A_{cij}` of a batch: ``(N, h, w)``.

    ``trunk`` is a CNN cut after some stage (see :func:`companion.backbones.conv_trunk`); it must be
    in **eval mode**, so BatchNorm uses its running statistics and each image's map does not depend on
    the other images of the batch (in train mode a fresh network's BatchNorm would normalize with the
    batch's statistics). Images go through :func:`prepare_images` and ImageNet normalization; the
    forward runs under ``torch.inference_mode`` in chunks of ``batch_size`` on the trunk's device.
    The raw map is returned (float32, on the CPU); :func:`normalize_map` rescales it for display.
    Book section: *Tobias* "The activation map".
    """
    if trunk.training:
        raise ValueError("the trunk is in train mode: call trunk.eval() first (BatchNorm would mix the images of a batch)")
    check_batch_size(batch_size)
    x = prepare_images(images, min_size=getattr(trunk, "stride", 1))
    device = _device_of(trunk)
    mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1)
    out = []
    with torch.inference_mode():
        for chunk in x.split(batch_size):
            a = trunk((chunk.to(device, non_blocking=True) - mean) / std)  # (B, C, h, w)
            out.append(a.float().sum(1).cpu())  # (B, h, w)
    return torch.cat(out)


def normalize_map(maps: torch.Tensor) -> torch.Tensor:
    """Min-max rescale each map to [0, 1] for display (no threshold): ``(N, h, w)`` or ``(h, w)``.

    A constant map becomes all zeros. A map with a NaN or an infinite value is refused (``ValueError``
    naming the maps and cells): min-max scaling would otherwise turn the whole map into NaN or zeros.
    Book section: *Tobias* "The activation map".
    """
    m = torch.as_tensor(maps, dtype=torch.float32)
    single = m.ndim == 2
    if single:
        m = m[None]
    if m.ndim != 3:
        raise ValueError(f"maps must be (N, h, w) or (h, w), got shape {tuple(m.shape)}")
    if m.shape[0] == 0:
        raise ValueError("no maps given (empty batch)")
    bad = ~torch.isfinite(m)
    if bad.any():
        which = bad.flatten(1).any(1).nonzero().flatten().tolist()
        raise ValueError(
            f"maps contain {int(bad.sum())} NaN or infinite value(s) (in map(s) {which[:10]}); "
            "normalize_map cannot rescale them: check the images and the network for overflow"
        )
    lo = m.flatten(1).min(1).values.view(-1, 1, 1)
    hi = m.flatten(1).max(1).values.view(-1, 1, 1)
    out = (m - lo) / (hi - lo).clamp_min(1e-12)
    out = torch.where((hi - lo) > 0, out, torch.zeros_like(out))
    return out[0] if single else out


def _check_maps(maps) -> torch.Tensor:
    m = torch.as_tensor(maps, dtype=torch.float32)
    if m.ndim == 2:
        m = m[None]
    if m.ndim != 3:
        raise ValueError(f"maps must be (N, h, w) or (h, w), got shape {tuple(m.shape)}")
    if m.shape[0] == 0:
        raise ValueError("no maps given (empty batch)")
    if not torch.isfinite(m).all():
        raise ValueError("maps contain NaN or infinite values")
    return m


def boxes_from_maps(maps, image_size, threshold: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Map to box: :math:`M = [S > \tau \bar S]`, largest 8-connected component, nearest upsampling, tight box.

    ``maps``: ``(N, h, w)``; ``image_size``: ``(H, W)`` (or one int for squares); ``threshold`` is
    :math:`\tau` (the paper: 1, the mean itself; the comparison is strict). Components come from
    ``scipy.ndimage.label`` with a 3x3 structuring element (8-connectivity, what scikit-image's
    ``label`` uses by default in 2-D; scipy's own default is 4). When no cell exceeds the threshold
    (for instance a constant map) the box is the whole image.

    Returns ``(boxes (N, 4) x1 y1 x2 y2 in image pixels, exclusive ends; kept masks (N, h, w) bool)``.
    Book section: *Tobias* "From a map to a box".
    """
    m = _check_maps(maps)
    if isinstance(image_size, int):
        image_size = (image_size, image_size)
    height, width = (int(s) for s in image_size)
    if height < 1 or width < 1:
        raise ValueError(f"image_size must be positive, got {image_size}")
    if not np.isfinite(threshold) or threshold < 0:
        raise ValueError(f"threshold must be a non-negative multiple of the mean, got {threshold}")
    n, h, w = m.shape
    above = m > threshold * m.mean((1, 2), keepdim=True)  # (N, h, w) strict, as the paper
    kept = torch.from_numpy(np.stack([largest_component(a) for a in above.numpy()]))  # (N, h, w)
    up = F.interpolate(kept[:, None].float(), size=(height, width), mode="nearest")[:, 0] > 0.5  # (N, H, W)
    boxes = torch.stack([mask_to_box(u) for u in up.numpy()])  # (N, 4); whole image when empty
    return boxes, kept


def upsample_masks(masks: torch.Tensor, image_size) -> torch.Tensor:
    """Nearest-neighbour upsampling of ``(N, h, w)`` map-resolution masks to ``(N, H, W)``."""
    if isinstance(image_size, int):
        image_size = (image_size, image_size)
    return F.interpolate(torch.as_tensor(masks)[:, None].float(), size=tuple(image_size), mode="nearest")[:, 0] > 0.5


@dataclass
class LocalizationResult:
    """What :func:`localize` returns.

    maps: ``(N, h, w)`` raw channel sums; masks: ``(N, h, w)`` bool, the kept component at map
    resolution; boxes: ``(N, 4)`` float ``x1 y1 x2 y2`` in image pixels; image_size: ``(H, W)``.
    """

    maps: torch.Tensor
    masks: torch.Tensor
    boxes: torch.Tensor
    image_size: tuple[int, int]

    def heatmaps(self) -> torch.Tensor:
        """The maps rescaled to [0, 1] per image, for display."""
        return normalize_map(self.maps)

    def pixel_masks(self) -> torch.Tensor:
        """The kept components upsampled to the image, ``(N, H, W)`` bool."""
        return upsample_masks(self.masks, self.image_size)


def localize(trunk: nn.Module, images, threshold: float = 1.0, batch_size: int = 64) -> LocalizationResult:
    """Activation map, mean threshold, largest component, box, for a whole batch.

    The CNN runs batched under ``torch.inference_mode``; labelling the components is a short loop
    over the (tiny) maps. See :func:`activation_map` and :func:`boxes_from_maps`.
    Book section: *Tobias* "From a map to a box".
    """
    x = prepare_images(images, min_size=getattr(trunk, "stride", 1))
    maps = activation_map(trunk, x, batch_size=batch_size)
    boxes, masks = boxes_from_maps(maps, x.shape[-2:], threshold)
    return LocalizationResult(maps, masks, boxes, (int(x.shape[-2]), int(x.shape[-1])))
