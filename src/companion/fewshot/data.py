"""The labelled images the experiment splits into base and novel classes.

Quick: scikit-learn's digits (bundled), base classes 0-4 and novel classes 5-9.
Full: CIFAR-FS, all 600 images of each CIFAR-100 class, split 64 / 16 / 20 into base, validation
and novel classes by class name (Bertinetto et al., 2019).

Book section: *Worst case* "Base and novel classes".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

# The CIFAR-FS class lists of Bertinetto et al. (2019), as reproduced in the public CIFAR-FS
# preparation script of ArnoutDevos/maml-cifar-fs (get_cifarfs.py) and, identically, in a second
# independent few-shot loader. The original split files (bertinetto/r2d2,
# data/cifar-fs/splits/bertinetto/{train,val,test}.txt) could not be checked directly when this was
# written; tests check 64/16/20 classes, no overlap and all 100 CIFAR-100 names covered.
CIFAR_FS_BASE = (
    "train", "skyscraper", "turtle", "raccoon", "spider", "orange", "castle", "keyboard",
    "clock", "pear", "girl", "seal", "elephant", "apple", "aquarium_fish", "bus",
    "mushroom", "possum", "squirrel", "chair", "tank", "plate", "wolf", "road", "mouse",
    "boy", "shrew", "couch", "sunflower", "tiger", "caterpillar", "lion", "streetcar",
    "lawn_mower", "tulip", "forest", "dolphin", "cockroach", "bear", "porcupine", "bee",
    "hamster", "lobster", "bowl", "can", "bottle", "trout", "snake", "bridge",
    "pine_tree", "skunk", "lizard", "cup", "kangaroo", "oak_tree", "dinosaur", "rabbit",
    "orchid", "willow_tree", "ray", "palm_tree", "mountain", "house", "cloud",
)
CIFAR_FS_VAL = (
    "otter", "motorcycle", "television", "lamp", "crocodile", "shark", "butterfly", "sea",
    "beaver", "beetle", "tractor", "flatfish", "maple_tree", "camel", "crab", "cattle",
)
CIFAR_FS_NOVEL = (
    "baby", "bed", "bicycle", "chimpanzee", "fox", "leopard", "man", "pickup_truck",
    "plain", "poppy", "rocket", "rose", "snail", "sweet_pepper", "table", "telephone",
    "wardrobe", "whale", "woman", "worm",
)


@dataclass
class FewShotData:
    """Images ``(N, C, H, W)`` (normalised with the base classes' mean and std), labels ``(N,)``,
    and which classes are base and novel."""

    name: str
    images: torch.Tensor
    labels: torch.Tensor
    base_classes: tuple[int, ...]
    novel_classes: tuple[int, ...]
    class_names: tuple[str, ...]

    def base_indices(self) -> np.ndarray:
        return np.flatnonzero(np.isin(self.labels.numpy(), self.base_classes))

    def base_set(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Base images and their labels renumbered ``0..len(base_classes)-1`` (for pre-training)."""
        idx = torch.as_tensor(self.base_indices())
        remap = torch.full((int(self.labels.max()) + 1,), -1, dtype=torch.long)
        remap[list(self.base_classes)] = torch.arange(len(self.base_classes))
        return self.images[idx], remap[self.labels[idx]]


def _normalise(images: torch.Tensor, base_mask: torch.Tensor) -> torch.Tensor:
    """Per-channel standardisation with statistics of the base images only (novel images stay unseen)."""
    base = images[base_mask]
    mean = base.mean(dim=(0, 2, 3), keepdim=True)
    std = base.std(dim=(0, 2, 3), keepdim=True)
    return (images - mean) / std


def digits(size: int | None = None) -> FewShotData:
    """scikit-learn's 1,797 digits: base classes 0-4, novel classes 5-9 (about 180 images each).

    Every 5-way episode on the novel classes uses all five of them; episodes differ in which
    images are support and query.

    Book section: *Worst case* "Quick run".
    """
    from ..data import load_digits_images

    images, labels = load_digits_images(size)
    base_mask = labels < 5
    return FewShotData("digits", _normalise(images, base_mask), labels, (0, 1, 2, 3, 4), (5, 6, 7, 8, 9),
                       tuple(str(i) for i in range(10)))


def cifar_fs(root: str | Path | None = None, download: bool = True) -> FewShotData:
    """CIFAR-FS built from CIFAR-100 (both of its splits: 600 images per class), 32 px.

    Downloads CIFAR-100 (about 170 MB, checked by torchvision) through
    :func:`companion.data.torchvision_dataset` when missing; raises
    :class:`companion.data.DatasetMissingError` with what to fetch when it cannot.

    Book section: *Worst case* "Full run".
    """
    from ..data import torchvision_dataset

    root = Path(root) if root is not None else None
    parts = [torchvision_dataset("cifar100", split, download=download, root=root) for split in ("train", "test")]
    names = tuple(parts[0].classes)
    index = {n: i for i, n in enumerate(names)}
    missing = [n for n in (*CIFAR_FS_BASE, *CIFAR_FS_VAL, *CIFAR_FS_NOVEL) if n not in index]
    if missing:
        raise ValueError(f"CIFAR-100 class names not found: {missing}")
    images = torch.cat([torch.from_numpy(np.asarray(p.data)) for p in parts]).permute(0, 3, 1, 2).float().div_(255)
    labels = torch.cat([torch.as_tensor(p.targets, dtype=torch.long) for p in parts])
    base = tuple(index[n] for n in CIFAR_FS_BASE)
    novel = tuple(index[n] for n in CIFAR_FS_NOVEL)
    base_mask = torch.isin(labels, torch.tensor(base))
    keep = base_mask | torch.isin(labels, torch.tensor(novel))  # validation classes are not used
    images = _normalise(images, base_mask)
    return FewShotData("cifar_fs", images[keep], labels[keep], base, novel, names)


def load(name: str, root: str | Path | None = None, download: bool = True) -> FewShotData:
    if name == "digits":
        return digits()
    if name == "cifar_fs":
        return cifar_fs(root, download)
    raise ValueError(f"unknown dataset {name!r}; choose 'digits' or 'cifar_fs'")
