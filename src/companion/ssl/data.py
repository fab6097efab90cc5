"""Datasets that yield two augmented views of each image.

Book sections: *S3L* "Small resolution, small architecture", *Tobias* "Background swap inside MoCo v2".
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset


class TwoViewDataset(Dataset):
    """Items ``(v1, v2, index)``: two draws of ``transform`` on image ``index``.

    ``images``: an ``(N, C, H, W)`` tensor, or a Dataset whose items are images or ``(image, label)``
    (labels are ignored: this is self-supervised). ``transform`` maps one image to one view; a
    :class:`~companion.ssl.augment.TwoViews` is used as is. Book section: *S3L* "Small resolution, small architecture".
    """

    def __init__(self, images: torch.Tensor | Dataset, transform):
        if torch.is_tensor(images):
            if images.ndim != 4:
                raise ValueError(f"images must be a batch (N, C, H, W), got shape {tuple(images.shape)}")
        elif not hasattr(images, "__getitem__") or not hasattr(images, "__len__"):
            raise TypeError(f"images must be a tensor or a Dataset, got {type(images).__name__}")
        if len(images) == 0:
            raise ValueError("images is empty")
        if not callable(transform):
            raise TypeError("transform must be callable")
        self.images, self.transform = images, transform

    def __len__(self) -> int:
        return len(self.images)

    def image(self, index: int):
        item = self.images[index]
        return item[0] if isinstance(item, (tuple, list)) else item

    def __getitem__(self, index: int):
        from .augment import TwoViews

        image = self.image(index)
        if isinstance(self.transform, TwoViews):
            v1, v2 = self.transform(image)
        else:
            v1, v2 = self.transform(image), self.transform(image)
        return v1, v2, index


class ImagesOnly(Dataset):
    """The images of a Dataset of ``(image, label)`` (for batched augmentation after loading)."""

    def __init__(self, data: Dataset):
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int):
        item = self.data[index]
        return (item[0] if isinstance(item, (tuple, list)) else item,)
