r"""WSOL metrics, averaged per class then over classes, as PSOL reports them.

With :math:`\mathrm{hit}_n = [\max_{g \in G_n} \mathrm{IoU}(\hat b_n, g) > 0.5]` (strictly greater:
an IoU of exactly 0.5 is a miss),

.. math::

    \text{GT-known Loc} = \operatorname{mean}_c \operatorname{mean}_{n \in c} \mathrm{hit}_n, \qquad
    \text{Top-}k\text{ Loc} = \operatorname{mean}_c \operatorname{mean}_{n \in c}
    \mathrm{hit}_n \cdot [y_n \in \operatorname{top}_k(s_n)] .

Book section: *PSOL* "Measuring localization".
"""

from __future__ import annotations

import torch

from .. import boxes as bx

__all__ = ["localization_metrics", "hits", "best_iou", "per_class"]


def best_iou(pred, gts) -> torch.Tensor:
    """Per image, the IoU of its box with the best of its ground-truth boxes: ``(N,)``.

    One box per image (``gts`` an ``(N, 4)`` tensor) is computed in one vectorized pass; a list
    of ``(M_n, 4)`` tensors goes through :func:`companion.boxes.best_iou`.

    Book section: *PSOL* "Measuring localization".
    """
    if isinstance(gts, torch.Tensor) and gts.ndim == 2:
        p, g = bx.as_boxes(pred, "predicted boxes"), bx.as_boxes(gts, "ground-truth boxes")
        if len(p) != len(g):
            raise ValueError(f"{len(p)} predicted boxes but ground truth for {len(g)} images")
        if len(p) == 0:
            raise ValueError("no boxes to score")
        lt, rb = torch.maximum(p[:, :2], g[:, :2]), torch.minimum(p[:, 2:], g[:, 2:])
        inter = (rb - lt).clamp_min(0).prod(1)
        area = lambda b: (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])  # noqa: E731
        union = area(p) + area(g) - inter
        return torch.where(union > 0, inter / union.clamp_min(1e-12), torch.zeros_like(inter))
    return bx.best_iou(pred, gts)


def hits(pred, gts, threshold: float = 0.5) -> torch.Tensor:
    """Per image: does the box overlap a ground-truth box with IoU strictly above ``threshold``?

    Book section: *PSOL* "Measuring localization".
    """
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    return best_iou(pred, gts) > threshold


def per_class(values: torch.Tensor, labels) -> torch.Tensor:
    """The mean of ``values`` within each class, classes in ascending order: ``(N,) -> (classes,)``."""
    labels = torch.as_tensor(labels).long()
    return torch.stack([values[labels == c].float().mean() for c in labels.unique()])


def _per_class_mean(values: torch.Tensor, labels: torch.Tensor) -> float:
    return float(per_class(values, labels).mean())


def localization_metrics(pred, gts, labels, class_scores=None, topk=(1, 5), threshold: float = 0.5) -> dict:
    """GT-known Loc and, given ``class_scores`` ``(N, C)``, Top-k Loc and Top-k classification, in percent.

    ``pred``: ``(N, 4)`` xyxy boxes; ``gts``: ``(N, 4)`` or a list of ``(M_n, 4)`` (the best box
    counts); ``labels``: ``(N,)`` true classes. Every number is a mean over classes of per-class
    means. An image with no ground-truth box is a ``ValueError`` naming it (the official code
    skips such images silently; here the caller drops them, so the count stays visible).
    Top-k for ``k`` >= the number of classes is skipped (it would be GT-known).

    Book section: *PSOL* "Measuring localization".
    """
    labels = torch.as_tensor(labels).long()
    if not isinstance(gts, torch.Tensor):
        empty = [i for i, g in enumerate(gts) if torch.as_tensor(g).numel() == 0]
        if empty:
            # the official code skips such images; a silent skip changes the denominator, so refuse
            raise ValueError(f"{len(empty)} image(s) have no ground-truth box (indices {empty[:10]}): "
                             "GT-known Loc is undefined for them; drop them before scoring")
    h = hits(pred, gts, threshold)
    if len(labels) != len(h):
        raise ValueError(f"{len(h)} boxes but {len(labels)} labels")
    out = {"gt_known_loc": 100 * _per_class_mean(h, labels), "mean_iou": 100 * _per_class_mean(best_iou(pred, gts), labels)}
    if class_scores is not None:
        scores = torch.as_tensor(class_scores)
        if scores.ndim != 2 or len(scores) != len(labels):
            raise ValueError(f"class_scores must be (N, C) with N={len(labels)}, got {tuple(scores.shape)}")
        for k in topk:
            if k >= scores.shape[1] and k != 1:
                continue
            correct = (scores.topk(k, dim=1).indices == labels[:, None]).any(1)
            out[f"top{k}_cls"] = 100 * _per_class_mean(correct, labels)
            out[f"top{k}_loc"] = 100 * _per_class_mean(correct & h, labels)
    return out
