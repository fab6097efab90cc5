r"""Scoring boxes: CorLoc and mean IoU, the three baselines, and a breakdown by object size.

IoU is ``torchvision.ops.box_iou`` (through :mod:`companion.boxes`); when an image has several
ground-truth boxes the best one counts:

.. math:: \mathrm{IoU}_n = \max_m \frac{|\hat b_n \cap b_{nm}|}{|\hat b_n \cup b_{nm}|},\qquad
          \mathrm{CorLoc} = \frac1N\sum_n [\,\mathrm{IoU}_n > 0.5\,].

With class labels both are computed per class and averaged over classes, as the paper's CUB and
ImageNet scripts do.

Book section: *Tobias* "Measuring it: CorLoc, IoU and three baselines".
"""

from __future__ import annotations

import numpy as np
import torch

from ..boxes import as_boxes, best_iou

__all__ = [
    "SIZE_BINS",
    "localization_scores",
    "whole_image_boxes",
    "centred_boxes",
    "best_centred_fraction",
    "random_boxes",
    "box_area_fraction",
    "size_bin",
    "photo_boxes",
]

#: Object-size bins by the ground-truth box's share of the image area: (name, low, high).
SIZE_BINS = (("small", 0.0, 0.2), ("medium", 0.2, 0.4), ("large", 0.4, 1.0 + 1e-9))


def _class_mean(values: torch.Tensor, labels) -> float:
    if labels is None:
        return float(values.mean())
    labels = torch.as_tensor(labels)
    if len(labels) != len(values):
        raise ValueError(f"{len(labels)} labels for {len(values)} boxes")
    return float(torch.stack([values[labels == c].mean() for c in labels.unique()]).mean())


def localization_scores(pred, gts, labels=None, threshold: float = 0.5) -> dict:
    """``{"corloc": %, "miou": %}`` of predicted boxes against ground truth (percent, 0-100).

    ``pred``: ``(N, 4)``; ``gts``: ``(N, 4)`` or a list of ``(M_i, 4)`` (the best GT box counts);
    ``labels``: optional ``(N,)`` classes for the per-class average. A hit needs IoU strictly above
    ``threshold``. Book section: *Tobias* "Measuring it: CorLoc, IoU and three baselines".
    """
    if not 0.0 <= threshold < 1.0:
        raise ValueError(f"threshold must be in [0, 1), got {threshold}")
    iou = best_iou(pred, gts)  # (N,)
    return {
        "corloc": 100.0 * _class_mean((iou > threshold).float(), labels),
        "miou": 100.0 * _class_mean(iou, labels),
    }


def _check_count(n: int, height: int, width: int) -> None:
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if height < 1 or width < 1:
        raise ValueError(f"image size must be positive, got {height}x{width}")


def whole_image_boxes(n: int, height: int, width: int) -> torch.Tensor:
    """Baseline 1: the whole image as the box, ``(n, 4)``."""
    _check_count(n, height, width)
    return torch.tensor([[0.0, 0.0, float(width), float(height)]]).repeat(n, 1)


def centred_boxes(n: int, height: int, width: int, fraction: float) -> torch.Tensor:
    """Baseline 2: a box in the image centre whose sides are ``fraction`` of the image's sides."""
    _check_count(n, height, width)
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    bw, bh = fraction * width, fraction * height
    box = [(width - bw) / 2, (height - bh) / 2, (width + bw) / 2, (height + bh) / 2]
    return torch.tensor([box], dtype=torch.float32).repeat(n, 1)


def best_centred_fraction(gts, height: int, width: int, fractions=None) -> tuple[float, dict]:
    """The centred-box size with the highest mean IoU on ``gts`` (an oracle: it sees the answers).

    ``fractions`` default: 0.10, 0.15, ..., 1.00. Returns ``(fraction, scores of that box)``.
    Tuning on the evaluation set itself favours this baseline, which makes beating it more convincing.
    """
    gts = as_boxes(gts, "ground-truth boxes")
    fractions = np.round(np.arange(0.10, 1.0001, 0.05), 2) if fractions is None else fractions
    best = None
    for f in fractions:
        s = localization_scores(centred_boxes(len(gts), height, width, float(f)), gts)
        if best is None or s["miou"] > best[1]["miou"]:
            best = (float(f), s)
    return best


def random_boxes(n: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    """Baseline 3: boxes with corners drawn uniformly (two sorted uniform draws per axis), seeded."""
    _check_count(n, height, width)
    g = torch.Generator().manual_seed(seed)
    xs = (torch.rand(n, 2, generator=g) * width).sort(1).values
    ys = (torch.rand(n, 2, generator=g) * height).sort(1).values
    return torch.stack([xs[:, 0], ys[:, 0], xs[:, 1], ys[:, 1]], 1)


def box_area_fraction(boxes, height: int, width: int) -> torch.Tensor:
    """Each box's area as a fraction of the ``height x width`` image, ``(N,)``."""
    b = as_boxes(boxes)
    return (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) / float(height * width)


def size_bin(boxes, height: int, width: int) -> list[str]:
    """The :data:`SIZE_BINS` name of each ground-truth box."""
    area = box_area_fraction(boxes, height, width)
    names = []
    for a in area.tolist():
        names.append(next(name for name, lo, hi in SIZE_BINS if lo <= a < hi))
    return names


def photo_boxes(names=None, size: int = 224) -> tuple[torch.Tensor, dict]:
    """Hand-drawn object boxes of the bundled photos (``companion/data/photo_boxes.json``) in pixels of
    the ``size`` x ``size`` centre crop that :func:`companion.data.load_photo` returns.

    ``names``: which photos (default: all that have a box). Returns ``(boxes (N, 4) x1 y1 x2 y2,
    the file's record: what each box holds, when and by whom it was drawn)``. The boxes were drawn by
    eye, not by an annotation protocol; they are a check on real images, not a benchmark.
    Book section: *Tobias* "Real photos, hand-drawn boxes".
    """
    import json
    from importlib import resources

    record = json.loads(resources.files("companion.data").joinpath("photo_boxes.json").read_text())
    known = record["boxes"]
    names = tuple(known) if names is None else tuple(names)
    missing = [n for n in names if n not in known]
    if missing:
        raise ValueError(f"no hand-drawn box for photo(s) {missing}; boxes exist for {sorted(known)}")
    if not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"size must be a positive integer, got {size!r}")
    boxes = torch.tensor([known[n]["box"] for n in names], dtype=torch.float32) * float(size)
    return boxes, record
