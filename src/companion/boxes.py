"""Boxes, masks and the localization metrics shared by Tobias and PSOL.

Boxes are ``(x1, y1, x2, y2)`` in pixels, ``x2``/``y2`` exclusive, as ``torchvision.ops`` uses them.

Book sections: *Tobias* "From a map to a box", *PSOL* "Measuring localization".
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from scipy import ndimage
from torchvision.ops import box_convert, box_iou

__all__ = [
    "as_boxes",
    "box_iou",
    "largest_component",
    "mask_to_box",
    "best_iou",
    "corloc",
    "gt_known_loc",
    "top_k_loc",
    "xyxy_to_cxcywh",
    "cxcywh_to_xyxy",
]

# 8-connectivity: diagonal neighbours belong to the same component (scipy's default is 4).
EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


def as_boxes(boxes, name: str = "boxes") -> torch.Tensor:
    """Validate and convert to a float ``(N, 4)`` tensor of ``x1 y1 x2 y2`` boxes."""
    t = torch.as_tensor(boxes, dtype=torch.float32)
    if t.ndim == 1:
        t = t.unsqueeze(0)
    if t.ndim != 2 or t.shape[-1] != 4:
        raise ValueError(f"{name} must have shape (N, 4) as x1, y1, x2, y2; got {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contain NaN or infinite coordinates")
    if (t[:, 2] < t[:, 0]).any() or (t[:, 3] < t[:, 1]).any():
        raise ValueError(f"{name} must satisfy x2 >= x1 and y2 >= y1")
    return t


def check_inside(boxes: torch.Tensor, height: int, width: int, name: str = "boxes") -> None:
    """Raise when a box leaves the ``height x width`` image."""
    if (boxes[:, :2] < 0).any() or (boxes[:, 2] > width).any() or (boxes[:, 3] > height).any():
        raise ValueError(f"{name} lie outside the {width}x{height} image: {boxes.tolist()}")


def largest_component(mask) -> np.ndarray:
    """The largest 8-connected component of a boolean mask (``scipy.ndimage.label``).

    An empty mask stays empty. Ties go to the component scipy labels first (top-left first).
    """
    m = np.asarray(mask, dtype=bool)
    if m.ndim != 2:
        raise ValueError(f"mask must be 2-D (H, W), got shape {m.shape}")
    labels, count = ndimage.label(m, structure=EIGHT_CONNECTED)
    if count == 0:
        return m.copy()
    sizes = np.bincount(labels.ravel())[1:]
    return labels == (int(np.argmax(sizes)) + 1)


def mask_to_box(mask) -> torch.Tensor:
    """The tight ``x1 y1 x2 y2`` box around the ``True`` pixels; the whole image when none are."""
    m = np.asarray(mask, dtype=bool)
    if m.ndim != 2:
        raise ValueError(f"mask must be 2-D (H, W), got shape {m.shape}")
    h, w = m.shape
    ys, xs = np.nonzero(m)
    if len(xs) == 0:
        return torch.tensor([0.0, 0.0, float(w), float(h)])
    return torch.tensor([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=torch.float32)


def check_threshold(threshold) -> float:
    """An IoU threshold in ``(0, 1]``; anything else (1.5, -1, NaN, a string) raises ``ValueError``."""
    try:
        t = float(threshold)
    except (TypeError, ValueError):
        raise ValueError(f"threshold must be a number in (0, 1], got {threshold!r}") from None
    if not 0 < t <= 1:  # also False for NaN
        raise ValueError(f"threshold must be in (0, 1], got {threshold!r}")
    return t


def best_iou(pred, gts: Sequence) -> torch.Tensor:
    """For each predicted box, the IoU with the best of its image's ground-truth boxes.

    ``pred``: ``(N, 4)``; ``gts``: a list of N tensors ``(M_i, 4)`` (several objects per image
    are allowed: the best one counts), or an ``(N, 4)`` tensor for one object each.
    """
    p = as_boxes(pred, "predicted boxes")
    if isinstance(gts, torch.Tensor) and gts.ndim == 2:
        gts = list(gts.unsqueeze(1))
    if len(gts) != len(p):
        raise ValueError(f"{len(p)} predicted boxes but ground truth for {len(gts)} images")
    if len(p) == 0:
        raise ValueError("no boxes to score")
    out = torch.empty(len(p))
    for i, g in enumerate(gts):
        g = as_boxes(g, "ground-truth boxes")
        out[i] = box_iou(p[i : i + 1], g).max()
    return out


def corloc(pred, gts, labels=None, threshold: float = 0.5) -> float:
    """Correct localization: the share of images whose box has IoU > ``threshold`` with a GT box.

    With ``labels`` the share is computed per class and averaged over classes, as the
    co-localization literature reports it.
    """
    threshold = check_threshold(threshold)
    hits = (best_iou(pred, gts) > threshold).float()
    if labels is None:
        return float(hits.mean())
    labels = torch.as_tensor(labels)
    if len(labels) != len(hits):
        raise ValueError(f"{len(labels)} labels for {len(hits)} boxes")
    return float(torch.stack([hits[labels == c].mean() for c in labels.unique()]).mean())


def gt_known_loc(pred, gts, threshold: float = 0.5) -> float:
    """GT-known localization accuracy: IoU > ``threshold`` with the class assumed known (PSOL)."""
    threshold = check_threshold(threshold)
    return float((best_iou(pred, gts) > threshold).float().mean())


def top_k_loc(pred, gts, class_scores, labels, k: int = 1, threshold: float = 0.5) -> float:
    """Top-k Loc: the true class is among the k highest scores *and* IoU > ``threshold``."""
    threshold = check_threshold(threshold)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    scores = torch.as_tensor(class_scores)
    labels = torch.as_tensor(labels)
    if scores.ndim != 2 or len(scores) != len(labels):
        raise ValueError(f"class_scores must be (N, C) for N={len(labels)} labels, got {tuple(scores.shape)}")
    topk = scores.topk(min(k, scores.shape[1]), dim=1).indices
    correct = (topk == labels[:, None]).any(dim=1)
    loc = best_iou(pred, gts) > threshold
    return float((correct & loc).float().mean())


def xyxy_to_cxcywh(boxes) -> torch.Tensor:
    return box_convert(as_boxes(boxes), "xyxy", "cxcywh")


def cxcywh_to_xyxy(boxes) -> torch.Tensor:
    return box_convert(torch.as_tensor(boxes, dtype=torch.float32), "cxcywh", "xyxy")
