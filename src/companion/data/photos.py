"""Data that ships with the project's dependencies: scikit-image photos and scikit-learn digits.

Book section: *How to read this book*, "The quick data".
"""

from __future__ import annotations

import numpy as np
import torch

#: scikit-image photos that load without a download (colour unless noted).
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "camera", "stereo_motorcycle", "immunohistochemistry", "hubble_deep_field")


def _as_rgb(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    if image.shape[-1] == 4:
        image = image[..., :3]
    return image


def load_photo(name: str, size: int | None = None) -> torch.Tensor:
    """One scikit-image photo as a ``(3, H, W)`` float tensor in [0, 1].

    ``size`` resizes the shorter side to ``size`` pixels and centre-crops to a square.
    Grayscale photos (``camera``) are repeated to three channels.
    """
    import skimage.data

    if name not in PHOTOS:
        raise ValueError(f"unknown photo {name!r}; bundled photos are {PHOTOS}")
    raw = getattr(skimage.data, name)()
    if name == "stereo_motorcycle":
        raw = raw[0]
    image = torch.from_numpy(_as_rgb(np.asarray(raw)).astype(np.float32) / 255.0).permute(2, 0, 1).contiguous()
    if size is not None:
        from torchvision.transforms.v2 import functional as F

        image = F.center_crop(F.resize(image, size, antialias=True), [size, size]).clamp(0, 1)
    return image


def load_photos(names: tuple[str, ...] = PHOTOS, size: int = 224) -> tuple[torch.Tensor, tuple[str, ...]]:
    """Several photos as one ``(N, 3, size, size)`` batch, and their names."""
    return torch.stack([load_photo(n, size) for n in names]), tuple(names)


def load_digits_images(size: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 1,797 handwritten digits as ``(N, 1, 8, 8)`` floats in [0, 1] and labels.

    ``size`` upsamples bilinearly (e.g. 16 or 32 px for networks that need more pixels).
    """
    from sklearn.datasets import load_digits

    d = load_digits()
    images = torch.from_numpy(d.images.astype(np.float32) / 16.0).unsqueeze(1)
    if size is not None and size != 8:
        images = torch.nn.functional.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
    return images.clamp(0, 1), torch.from_numpy(d.target.astype(np.int64))
