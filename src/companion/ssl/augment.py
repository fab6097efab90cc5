"""Two-view augmentations: the MoCo v2 / SimSiam recipe with ``torchvision.transforms.v2`` (per image, on
the CPU, in DataLoader workers), multi-crop, and :class:`GPUAugment`, the same recipe on a whole batch
on the tensor's device so that data loading does not bottleneck a GPU.

Book sections: *S3L* "Small resolution, small architecture", *Tobias* "Background swap inside MoCo v2",
*SSQL* "The SimSiam loss with a quantized branch", *US3L* "A momentum teacher for every width",
*Efficient SSL* "Multi-crop".
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import roi_align
from torchvision.transforms import v2

from ..tensors import as_tensor, check_unit_images

#: The smallest crop side (px) the recipe produces; below it a crop has no content left to learn from.
MIN_RESOLUTION = 4
#: Gaussian blur is on by default from this resolution (a 3x3 kernel blurs most of a smaller image).
BLUR_MIN_RESOLUTION = 32
#: Grayscale weights (ITU-R 601-2, as torchvision uses).
_GRAY = (0.299, 0.587, 0.114)


def _check_resolution(resolution, name: str = "resolution") -> int:
    if isinstance(resolution, bool) or not isinstance(resolution, int):
        raise TypeError(f"{name} must be an integer number of pixels, got {resolution!r}")
    if resolution < MIN_RESOLUTION:
        raise ValueError(f"{name}={resolution} is too small for a random resized crop; use at least {MIN_RESOLUTION} px")
    return resolution


def _check_channels(channels) -> int:
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels!r}")
    return channels


def blur_kernel_size(resolution: int) -> int:
    """Odd kernel side of about 10% of the image (SimCLR's rule; 23 px at 224), at least 3."""
    return max(3, int(0.1 * resolution) // 2 * 2 + 1)


class CheckImage(nn.Module):
    """First step of every CPU pipeline: a PIL image or uint8 tensor becomes float [0, 1]; a float
    tensor must be ``(C, H, W)`` with the expected channel count and at least ``MIN_RESOLUTION`` px a side."""

    def __init__(self, channels: int):
        super().__init__()
        self.channels = channels

    def forward(self, image):
        if not torch.is_tensor(image):
            image = v2.functional.to_image(image)  # PIL / numpy -> (C, H, W) uint8 tensor
        if image.dtype == torch.uint8:
            image = image.float() / 255.0
        if not image.is_floating_point():
            raise TypeError(f"images must be float tensors in [0, 1] or uint8, got dtype {image.dtype}")
        check_unit_images(image)  # 0-255 floats would be clamped to blank images by the colour steps
        if image.ndim != 3:
            raise ValueError(f"expected one image (C, H, W), got shape {tuple(image.shape)}")
        if image.shape[0] != self.channels:
            raise ValueError(
                f"expected {self.channels}-channel images, got {image.shape[0]} channels (shape {tuple(image.shape)}); "
                f"pass channels={image.shape[0]} if that is intended"
            )
        if min(image.shape[-2:]) < MIN_RESOLUTION:
            raise ValueError(f"image of {tuple(image.shape[-2:])} px is too small to crop; need at least {MIN_RESOLUTION} px a side")
        return image.as_subclass(torch.Tensor) if type(image) is not torch.Tensor else image


def ssl_augment(
    resolution: int, *, blur: bool | None = None, channels: int = 3, scale: tuple[float, float] = (0.2, 1.0),
    jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.1), p_jitter: float = 0.8, p_gray: float = 0.2,
    p_blur: float = 0.5, p_flip: float = 0.5,
) -> v2.Compose:
    """The MoCo v2 / SimSiam augmentation ("aug-plus") for one view, output ``(C, resolution, resolution)``:

    RandomResizedCrop(scale 0.2-1) -> ColorJitter(0.4, 0.4, 0.4, 0.1) with p 0.8 -> Grayscale p 0.2 ->
    GaussianBlur(sigma 0.1-2, kernel ~10% of the side) p 0.5 -> horizontal flip.

    ``blur=None`` turns blur on from 32 px (SimSiam's CIFAR recipe has none; the ImageNet one has it).
    Colour jitter and grayscale are skipped for ``channels=1``; ``p_flip=0`` drops the flip (digits).
    Input: float ``(C, H, W)`` in [0, 1]
    (PIL images and uint8 tensors are converted). Book section: *S3L* "Small resolution, small architecture".
    """
    resolution = _check_resolution(resolution)
    channels = _check_channels(channels)
    if blur is None:
        blur = resolution >= BLUR_MIN_RESOLUTION
    if blur and resolution < 8:
        raise ValueError(f"resolution={resolution} is too small for Gaussian blur (a 3x3 kernel); use blur=False or at least 8 px")
    lo, hi = scale
    if not 0 < lo <= hi <= 1:
        raise ValueError(f"scale must satisfy 0 < low <= high <= 1, got {scale}")
    steps: list[nn.Module] = [CheckImage(channels), v2.RandomResizedCrop(resolution, scale=scale, antialias=True)]
    if channels == 3:
        steps += [v2.RandomApply([v2.ColorJitter(*jitter)], p=p_jitter), v2.RandomGrayscale(p=p_gray)]
    if blur:
        steps.append(v2.RandomApply([v2.GaussianBlur(blur_kernel_size(resolution), sigma=(0.1, 2.0))], p=p_blur))
    if p_flip > 0:
        steps.append(v2.RandomHorizontalFlip(p=p_flip))
    return v2.Compose(steps)


class TwoViews:
    """``image -> (transform(image), transform2(image))``: two independent random views of one image.

    ``transform2`` defaults to ``transform`` (symmetric methods); BYOL-style asymmetric recipes pass a second one.
    Book section: *S3L* "Small resolution, small architecture".
    """

    def __init__(self, transform, transform2=None):
        self.transform, self.transform2 = transform, transform2 or transform

    def __call__(self, image):
        return self.transform(image), self.transform2(image)

    def __repr__(self) -> str:
        return f"TwoViews({self.transform!r})"


class MultiCrop:
    """``image -> [n_global crops at global_res] + [n_local crops at local_res]`` (SwAV / DINO multi-crop).

    Each crop is the full recipe of :func:`ssl_augment` with its own crop-scale range.
    Book section: *Efficient SSL* "Multi-crop", and the ViT-with-2040-images chapter.
    """

    def __init__(
        self, global_res: int, local_res: int, n_global: int = 2, n_local: int = 4,
        global_scale: tuple[float, float] = (0.25, 1.0), local_scale: tuple[float, float] = (0.05, 0.25),
        channels: int = 3, blur: bool | None = None,
    ):
        _check_resolution(global_res, "global_res")
        _check_resolution(local_res, "local_res")
        if local_res > global_res:
            raise ValueError(f"local_res ({local_res}) must not exceed global_res ({global_res})")
        if n_global < 1 or n_local < 0:
            raise ValueError(f"need n_global >= 1 and n_local >= 0, got {n_global} and {n_local}")
        self.n_global, self.n_local = n_global, n_local
        self.global_t = ssl_augment(global_res, scale=global_scale, channels=channels, blur=blur)
        self.local_t = ssl_augment(local_res, scale=local_scale, channels=channels, blur=blur if local_res >= 8 else False)

    def __call__(self, image) -> list[torch.Tensor]:
        return [self.global_t(image) for _ in range(self.n_global)] + [self.local_t(image) for _ in range(self.n_local)]


# ---------------------------------------------------------------- batched augmentation on the device


def _gray(x: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) -> (N, 1, H, W) luma."""
    w = torch.tensor(_GRAY, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


def rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    """Batched RGB -> HSV, ``(N, 3, H, W)`` in [0, 1] -> hue, saturation, value in [0, 1]."""
    r, g, b = x.unbind(1)
    maxc, minc = x.amax(1), x.amin(1)
    delta = maxc - minc
    s = torch.where(maxc > 0, delta / maxc.clamp_min(1e-8), torch.zeros_like(maxc))
    dc = delta.clamp_min(1e-8)
    rc, gc, bc = (maxc - r) / dc, (maxc - g) / dc, (maxc - b) / dc
    h = torch.where(maxc == r, bc - gc, torch.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
    h = torch.where(delta > 0, (h / 6.0) % 1.0, torch.zeros_like(h))
    return torch.stack([h, s, maxc], 1)


def hsv_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """Batched HSV -> RGB, the inverse of :func:`rgb_to_hsv`."""
    h, s, v = x.unbind(1)
    h6 = h * 6.0
    i = torch.floor(h6)
    f = h6 - i
    i = i.long() % 6
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    # sector i picks (r, g, b) from (v, q, p, t) as in the classic algorithm
    r = torch.stack([v, q, p, p, t, v], 1).gather(1, i.unsqueeze(1)).squeeze(1)
    g = torch.stack([t, v, v, q, p, p], 1).gather(1, i.unsqueeze(1)).squeeze(1)
    b = torch.stack([p, p, t, v, v, q], 1).gather(1, i.unsqueeze(1)).squeeze(1)
    return torch.stack([r, g, b], 1)


class GPUAugment(nn.Module):
    """The :func:`ssl_augment` recipe on a whole batch ``(N, C, H, W)`` on its own device, with random
    parameters drawn per sample: one call, a handful of kernels, no Python loop over images.

    - random resized crop: a box per image (area ``scale``, aspect ``ratio``, as torchvision samples it,
      up to 10 tries then the whole image) resampled to ``resolution`` with ``torchvision.ops.roi_align``
      (bilinear; when a crop is larger than the output, several samples per output pixel are averaged,
      which softens aliasing like an antialiased resize);
    - colour jitter with probability ``p_jitter``: brightness, contrast, saturation, hue, in that fixed
      order (torchvision shuffles the order per image; a fixed order keeps it batched);
    - grayscale with ``p_gray``; Gaussian blur with ``p_blur`` (per-image sigma in [0.1, 2], separable
      depthwise convolution), on by default from 32 px; horizontal flip with probability 0.5.

    Colour steps are skipped for 1-channel batches. ``generator`` (a CPU ``torch.Generator``) makes the
    draws repeatable; parameters are drawn on the CPU and moved, so CPU and GPU give the same crops.
    Book section: *S3L* "Small resolution, small architecture" (full runs).
    """

    def __init__(
        self, resolution: int, *, scale: tuple[float, float] = (0.2, 1.0), ratio: tuple[float, float] = (3 / 4, 4 / 3),
        jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.1), p_jitter: float = 0.8, p_gray: float = 0.2,
        blur: bool | None = None, p_blur: float = 0.5, p_flip: float = 0.5, sigma: tuple[float, float] = (0.1, 2.0),
    ):
        super().__init__()
        self.resolution = _check_resolution(resolution)
        if blur is None:
            blur = resolution >= BLUR_MIN_RESOLUTION
        if blur and resolution < 8:
            raise ValueError(f"resolution={resolution} is too small for Gaussian blur; use blur=False or at least 8 px")
        lo, hi = scale
        if not 0 < lo <= hi <= 1:
            raise ValueError(f"scale must satisfy 0 < low <= high <= 1, got {scale}")
        for name, p in (("p_jitter", p_jitter), ("p_gray", p_gray), ("p_blur", p_blur), ("p_flip", p_flip)):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {p}")
        self.scale, self.ratio, self.jitter, self.sigma = tuple(scale), tuple(ratio), tuple(jitter), tuple(sigma)
        self.p_jitter, self.p_gray, self.p_flip = p_jitter, p_gray, p_flip
        self.p_blur = p_blur if blur else 0.0
        self.kernel = blur_kernel_size(resolution)

    def extra_repr(self) -> str:
        return f"resolution={self.resolution}, scale={self.scale}, p_blur={self.p_blur}"

    def _crop_boxes(self, n: int, h: int, w: int, g: torch.Generator | None) -> torch.Tensor:
        """``(n, 4)`` boxes x1 y1 x2 y2 in pixels, sampled like ``RandomResizedCrop.get_params``."""
        tries = 10
        area = h * w * torch.empty(n, tries).uniform_(*self.scale, generator=g)
        log_r = torch.empty(n, tries).uniform_(math.log(self.ratio[0]), math.log(self.ratio[1]), generator=g)
        r = log_r.exp()
        cw, ch = (area * r).sqrt().round(), (area / r).sqrt().round()
        ok = (cw > 0) & (ch > 0) & (cw <= w) & (ch <= h)
        first = torch.where(ok.any(1), ok.float().argmax(1), torch.full((n,), -1))
        pick = first.clamp_min(0).unsqueeze(1)
        cw = torch.where(first >= 0, cw.gather(1, pick).squeeze(1), torch.full((n,), float(w)))
        ch = torch.where(first >= 0, ch.gather(1, pick).squeeze(1), torch.full((n,), float(h)))
        x1 = (torch.rand(n, generator=g) * (w - cw + 1)).floor().clamp(max=w - cw)
        y1 = (torch.rand(n, generator=g) * (h - ch + 1)).floor().clamp(max=h - ch)
        return torch.stack([x1, y1, x1 + cw, y1 + ch], 1)

    def sample(self, n: int, h: int, w: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """All random parameters for a batch of ``n`` images of ``h x w`` (CPU tensors)."""
        g = generator
        u = lambda *s: torch.rand(*s, generator=g)  # noqa: E731
        b, c, s, hue = self.jitter
        return {
            "boxes": self._crop_boxes(n, h, w, g),
            "flip": u(n) < self.p_flip,
            "jitter": u(n) < self.p_jitter,
            "brightness": 1 + b * (2 * u(n) - 1),
            "contrast": 1 + c * (2 * u(n) - 1),
            "saturation": 1 + s * (2 * u(n) - 1),
            "hue": hue * (2 * u(n) - 1),
            "gray": u(n) < self.p_gray,
            "blur": u(n) < self.p_blur,
            "sigma": self.sigma[0] + (self.sigma[1] - self.sigma[0]) * u(n),
        }

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        x = as_tensor(x, "images", dtype=None, ndim=4, finite=False, nonempty=False,
                      shape_hint="(N, C, H, W)")
        if not x.is_floating_point():
            raise TypeError(f"GPUAugment takes float images in [0, 1], got dtype {x.dtype}")
        n, c, h, w = x.shape
        if c not in (1, 3):
            raise ValueError(f"GPUAugment takes 1- or 3-channel images, got {c} channels (shape {tuple(x.shape)})")
        if n == 0:
            raise ValueError("GPUAugment got an empty batch of images")
        if min(h, w) < MIN_RESOLUTION:
            raise ValueError(f"images of {h}x{w} px are too small to crop; need at least {MIN_RESOLUTION} px a side")
        # the colour steps clamp to [0, 1]: 0-255 floats would silently become blank images
        check_unit_images(x)
        cpu = self.sample(n, h, w, generator)
        hue_any = bool((cpu["hue"][cpu["jitter"]] != 0).any())  # decided on the CPU: no device sync
        # one host-to-device copy for all parameters
        keys = list(cpu)
        packed = torch.cat([cpu[k].float().reshape(n, -1) for k in keys], 1).to(x.device, non_blocking=True)
        prm, col = {}, 0
        for k in keys:
            width = cpu[k].reshape(n, -1).shape[1]
            v = packed[:, col : col + width].reshape(cpu[k].shape)
            prm[k] = v.bool() if cpu[k].dtype == torch.bool else v
            col += width
        prm["hue_any"] = hue_any
        dtype = x.dtype
        with torch.autocast(x.device.type, enabled=False):  # augment in float32 even inside a mixed-precision step
            return self._apply(x.float(), prm, n, c).to(dtype)

    def _apply(self, x: torch.Tensor, prm: dict, n: int, c: int) -> torch.Tensor:
        rois = torch.cat([torch.arange(n, device=x.device, dtype=x.dtype).unsqueeze(1), prm["boxes"].to(x.dtype)], 1)  # (N, 5)
        # sampling_ratio=-1: ceil(crop / output) bilinear samples per output pixel, averaged (area-like when shrinking)
        out = roi_align(x, rois, output_size=self.resolution, spatial_scale=1.0, sampling_ratio=-1, aligned=True)  # (N, C, r, r)
        out = torch.where(prm["flip"].view(n, 1, 1, 1), out.flip(-1), out)
        if c == 3:
            out = self._colour(out, prm)
        if self.p_blur > 0:
            out = self._blur(out, prm)
        return out.clamp_(0, 1)

    def _colour(self, x: torch.Tensor, prm: dict) -> torch.Tensor:
        n = len(x)
        on = prm["jitter"]
        view = lambda t, ident: torch.where(on, t, torch.full_like(t, ident)).view(n, 1, 1, 1)  # noqa: E731
        x = (x * view(prm["brightness"], 1.0)).clamp(0, 1)
        mean = _gray(x).mean((2, 3), keepdim=True)
        cf = view(prm["contrast"], 1.0)
        x = (cf * x + (1 - cf) * mean).clamp(0, 1)
        sf = view(prm["saturation"], 1.0)
        x = (sf * x + (1 - sf) * _gray(x)).clamp(0, 1)
        hf = view(prm["hue"], 0.0)
        if prm["hue_any"]:
            hsv = rgb_to_hsv(x)
            hsv = torch.cat([(hsv[:, :1] + hf) % 1.0, hsv[:, 1:]], 1)
            x = torch.where(on.view(n, 1, 1, 1), hsv_to_rgb(hsv), x)
        return torch.where(prm["gray"].view(n, 1, 1, 1), _gray(x).expand_as(x), x)

    def _blur(self, x: torch.Tensor, prm: dict) -> torch.Tensor:
        n, c, h, w = x.shape
        k = self.kernel
        t = torch.arange(k, device=x.device, dtype=x.dtype) - (k - 1) / 2
        ker = torch.exp(-(t**2) / (2 * prm["sigma"].to(x.dtype).view(n, 1) ** 2))  # (N, k)
        ker = ker / ker.sum(1, keepdim=True)
        delta = (t == 0).to(x.dtype).expand(n, k)
        ker = torch.where(prm["blur"].view(n, 1), ker, delta).repeat_interleave(c, 0)  # (N*C, k)
        y = x.reshape(1, n * c, h, w)
        p = k // 2
        y = F.conv2d(F.pad(y, (p, p, 0, 0), mode="reflect"), ker.view(n * c, 1, 1, k), groups=n * c)
        y = F.conv2d(F.pad(y, (0, 0, p, p), mode="reflect"), ker.view(n * c, 1, k, 1), groups=n * c)
        return y.view(n, c, h, w)
