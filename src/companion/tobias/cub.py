"""CUB-200-2011 for random-CNN localization (full mode): images squashed to a square, boxes rescaled.

Book section: *Tobias* "Full run".
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

__all__ = ["CUBLocalization"]


class CUBLocalization(Dataset):
    """Items ``(image (3, S, S) uint8, box (4,) float xyxy in the resized image, label)``.

    ``records``: :class:`companion.data.datasets.CUBRecord` entries (e.g. the test split of
    :func:`companion.data.cub200`). Each image is decoded with Pillow as RGB (CUB has a few grayscale files) and
    resized to ``size x size`` ignoring its aspect ratio, as the paper's script does; its box is scaled
    by the same factors.
    """

    def __init__(self, records, size: int = 224):
        if len(records) == 0:
            raise ValueError("no CUB records given")
        if not isinstance(size, int) or size < 32:
            raise ValueError(f"size must be an integer of at least 32 px, got {size!r}")
        self.records, self.size = list(records), size

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int):
        from PIL import Image
        from torchvision.transforms.v2 import functional as F

        r = self.records[index]
        with Image.open(r.path) as pil:
            image = F.pil_to_tensor(pil.convert("RGB"))  # (3, H, W) uint8
        h, w = image.shape[-2:]
        image = F.resize(image, [self.size, self.size], antialias=True)
        sx, sy = self.size / w, self.size / h
        x1, y1, x2, y2 = r.box
        box = torch.tensor([x1 * sx, y1 * sy, x2 * sx, y2 * sy], dtype=torch.float32).clamp(0, self.size)
        return image, box, r.label
