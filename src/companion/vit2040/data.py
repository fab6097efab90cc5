"""The chapter's data: scikit-learn digits for quick runs, Flowers-102 (train+val = 2,040) for full runs.

Book section: *ViT with 2040 images* "Quick run" and "Full run".
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..data import data_root, load_digits_images, torchvision_dataset


@dataclass
class Split:
    """Training and test images with labels. Full runs keep images as uint8 to save memory.

    Book section: *ViT with 2040 images* "Quick run" and "Full run".
    """

    train_x: torch.Tensor  # (N, C, H, W)
    train_y: torch.Tensor  # (N,)
    test_x: torch.Tensor  # (M, C, h, w)
    test_y: torch.Tensor  # (M,)
    num_classes: int
    description: str


def digits_split(per_class: int, size: int, seed: int = 0) -> Split:
    """scikit-learn's 1,797 digits at ``size`` px: ``per_class`` random training images of each digit,
    all the others for testing.

    The split is fixed by ``seed`` (0 in the chapter), the same for every training seed.

    Book section: *ViT with 2040 images* "Quick run".
    """
    images, labels = load_digits_images(size=size)  # (1797, 1, size, size) in [0, 1]
    smallest = int(torch.bincount(labels).min())
    if not isinstance(per_class, int) or not 1 <= per_class < smallest:
        raise ValueError(f"per_class must be an integer in [1, {smallest - 1}], got {per_class!r}")
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    chosen = torch.cat([order[labels[order] == c][:per_class] for c in range(10)])
    is_train = torch.zeros(len(labels), dtype=torch.bool)
    is_train[chosen] = True
    tr, te = is_train.nonzero()[:, 0], (~is_train).nonzero()[:, 0]
    return Split(images[tr], labels[tr], images[te], labels[te], 10,
                 f"scikit-learn digits, {len(tr)} training ({per_class} per class) / {len(te)} test images at {size} px")


def _decode(dataset, workers: int) -> tuple[torch.Tensor, torch.Tensor]:
    from torch.utils.data import DataLoader
    from tqdm.auto import tqdm

    xs, ys = [], []
    loader = DataLoader(dataset, batch_size=64, num_workers=workers)
    for x, y in tqdm(loader, desc="decode", leave=False):
        xs.append(x)
        ys.append(torch.as_tensor(y))
    return torch.cat(xs), torch.cat(ys)


def flowers_split(train_size: int = 256, test_size: int = 224, download: bool = True, workers: int | None = None) -> Split:
    """Flowers-102: train + val (1,020 + 1,020 = 2,040 images) for training, the 6,149 test images.

    Training images are resized (shorter side ``train_size``) and centre-cropped to a square, test
    images resized to ``train_size`` and centre-cropped to ``test_size`` (the paper's 256 -> 224),
    all kept as uint8 and cached next to the dataset so a resumed session skips the decoding.
    Missing files raise ``companion.data.DatasetMissingError`` saying what to fetch and where.

    Book section: *ViT with 2040 images* "Full run".
    """
    import os

    from torchvision.transforms import v2

    cache = data_root() / "flowers-102" / f"vit2040_cache_{train_size}_{test_size}.pt"
    if cache.exists():
        return Split(**torch.load(cache))
    workers = min(8, os.cpu_count() or 1) if workers is None else workers

    def load(split, crop):
        t = v2.Compose([v2.PILToTensor(), v2.Resize(train_size, antialias=True), v2.CenterCrop(crop)])
        return _decode(torchvision_dataset("flowers102", split=split, download=download, transform=t), workers)

    tx, ty = zip(load("train", train_size), load("val", train_size))
    test_x, test_y = load("test", test_size)
    split = Split(torch.cat(tx), torch.cat(ty), test_x, test_y, 102,
                  f"Flowers-102, train+val {sum(len(t) for t in ty)} / test {len(test_y)} images")
    cache.parent.mkdir(parents=True, exist_ok=True)
    torch.save(vars(split), cache)
    return split
