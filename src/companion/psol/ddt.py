r"""Deep Descriptor Transforming (DDT): class-agnostic pseudo boxes from one principal direction.

For one class :math:`c` with images :math:`\mathcal I_c`, every spatial cell :math:`(i, j)` of a
conv feature map is a descriptor :math:`x_{ij} \in \mathbb R^C`. DDT pools all of them,

.. math::

    \mu_c = \frac{1}{|\mathcal I_c|\,hw} \sum_{n \in \mathcal I_c} \sum_{i,j} x^{(n)}_{ij}, \qquad
    \Sigma_c = \frac{1}{|\mathcal I_c|\,hw} \sum_{n, i, j} (x^{(n)}_{ij} - \mu_c)(x^{(n)}_{ij} - \mu_c)^\top,

takes the first principal direction :math:`p_c` (the eigenvector of :math:`\Sigma_c` with the
largest eigenvalue) and projects every descriptor on it:

.. math::

    P^{(n)}(i, j) = (x^{(n)}_{ij} - \mu_c)^\top p_c .

Cells with :math:`P > 0` are foreground; the largest connected component of that mask, scaled
from the feature grid to the image, is the pseudo box.

**Sign convention.** An eigenvector is only defined up to sign, and the rule "foreground is
:math:`P > 0`" needs one. This library fixes it with :data:`SIGN_CONVENTIONS` ``"norm"`` (the
default): the sign of :math:`p_c` is chosen so that the projection is positively correlated with
the descriptor norm,

.. math::

    \sum_{n, i, j} P^{(n)}(i, j)\, \lVert x^{(n)}_{ij} \rVert_2 > 0 ,

i.e. "the object is where the features are strong". Negating every feature or permuting the
channels changes neither the norms nor :math:`|P|`, so the boxes stay exactly the same.

Book section: *PSOL* "Deep descriptor transforming".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import boxes as bx
from ..tensors import as_images, as_tensor, check_batch_size, check_unit_images

__all__ = [
    "SIGN_CONVENTIONS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "check_unit_images",
    "DDT",
    "extract_descriptors",
    "fit_ddt",
    "fit_ddt_per_class",
    "map_to_box",
    "ddt_boxes",
]

#: ``"norm"``: the projection correlates positively with the descriptor norm (default; invariant to
#: negating or permuting features). ``"sum"``: the direction's entries sum to a positive number
#: (sensible for post-ReLU features only; permutation- but not negation-invariant). ``"none"``:
#: whatever sign the eigen-solver returns (the pitfall, kept to show it).
SIGN_CONVENTIONS = ("norm", "sum", "none")

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Relative size of the top eigenvalue below which a class's descriptors count as constant.
_ZERO_VARIANCE = 1e-10


def _check_descriptors(descriptors: torch.Tensor, name: str = "descriptors") -> torch.Tensor:
    # DDT accumulates in float64, so float64 descriptors are kept as they are
    return as_tensor(descriptors, name, dtype=torch.float64, ndim=4, shape_hint="(N, C, h, w)")


@torch.no_grad()
def extract_descriptors(trunk: nn.Module, images: torch.Tensor, input_size: int | None = None,
                        normalize: bool = True, batch_size: int = 64, device: torch.device | str | None = None
                        ) -> torch.Tensor:
    """Conv descriptors of ``images`` ``(N, 3, H, W)`` in [0, 1]: ``(N, C, h, w)`` on the CPU.

    ``input_size``: squash-resize to ``input_size x input_size`` first (the paper: 448 for VGG16);
    ``normalize``: ImageNet mean/std, which pretrained trunks expect. The trunk runs in eval mode.

    Book section: *PSOL* "Deep descriptor transforming".
    """
    images = as_images(images, channels=3)
    check_batch_size(batch_size)
    if input_size is not None and input_size < 8:
        raise ValueError(f"input_size must be at least 8 pixels, got {input_size}")
    device = torch.device(device) if device is not None else next(trunk.parameters()).device
    was_training = trunk.training
    trunk.eval()
    mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1)
    out = []
    for start in range(0, len(images), batch_size):
        x = images[start : start + batch_size].to(device, torch.float32)
        if input_size is not None and x.shape[-2:] != (input_size, input_size):
            x = F.interpolate(x, size=(input_size, input_size), mode="bilinear", align_corners=False, antialias=True)
        if normalize:
            x = (x - mean) / std
        out.append(trunk(x).float().cpu())  # (B, C, h, w)
    trunk.train(was_training)
    return torch.cat(out)


@dataclass
class DDT:
    """One class's DDT transform: mean descriptor ``mean`` ``(C,)``, direction ``direction`` ``(C,)``
    (unit norm, sign fixed by ``sign``) and its eigenvalue ``variance`` (variance along ``p_c``).

    Book section: *PSOL* "Deep descriptor transforming".
    """

    mean: torch.Tensor
    direction: torch.Tensor
    variance: float
    explained: float
    sign: str = "norm"

    def project(self, descriptors: torch.Tensor) -> torch.Tensor:
        r"""The projection map :math:`P(i,j) = (x_{ij} - \mu_c)^\top p_c`: ``(N, C, h, w)`` -> ``(N, h, w)``."""
        d = _check_descriptors(descriptors)
        if d.shape[1] != len(self.mean):
            raise ValueError(f"descriptors have {d.shape[1]} channels but this DDT was fitted on {len(self.mean)}")
        centred = d.double() - self.mean.double().view(1, -1, 1, 1)
        return torch.einsum("nchw,c->nhw", centred, self.direction.double()).float()


def fit_ddt(descriptors: torch.Tensor, sign: str = "norm") -> DDT:
    r"""Fit DDT on one class's descriptors ``(N, C, h, w)`` (all its images together).

    :math:`\mu_c` and :math:`\Sigma_c` are accumulated in float64, :math:`p_c` is the top eigenvector
    of :math:`\Sigma_c` (``torch.linalg.eigh``), and its sign is fixed by ``sign`` (see the module
    docstring). Raises ``ValueError`` for a single image (co-localization needs a set) and for
    descriptors without variance (no direction to find).

    Book section: *PSOL* "Deep descriptor transforming".
    """
    if sign not in SIGN_CONVENTIONS:
        raise ValueError(f"sign must be one of {SIGN_CONVENTIONS}, got {sign!r}")
    d = _check_descriptors(descriptors)
    if d.shape[0] < 2:
        raise ValueError(f"DDT needs at least 2 images of a class to co-localize, got {d.shape[0]}")
    x = d.double().permute(0, 2, 3, 1).reshape(-1, d.shape[1])  # (N*h*w, C): one row per cell
    mean = x.mean(0)
    centred = x - mean
    cov = centred.T @ centred / len(x)  # (C, C)
    evals, evecs = torch.linalg.eigh(cov)  # ascending
    top, total = float(evals[-1]), float(evals.clamp_min(0).sum())
    scale = float((x**2).mean()) + 1e-300
    if top <= _ZERO_VARIANCE * scale or total == 0.0:
        raise ValueError("the descriptors have (almost) zero variance: every cell looks the same, "
                         "so there is no principal direction to separate object from background")
    p = evecs[:, -1].clone()  # (C,)
    if sign == "norm":
        score = float(((centred @ p) * x.norm(dim=1)).sum())
        if abs(score) <= 1e-12 * (x.norm(dim=1).sum() * (centred @ p).abs().sum() + 1e-300):
            # norms carry no information (all equal): fall back to the largest entry being positive
            score = float(p[p.abs().argmax()])
        if score < 0:
            p = -p
    elif sign == "sum":
        if float(p.sum()) < 0:
            p = -p
    return DDT(mean=mean.float(), direction=p.float(), variance=top, explained=top / total, sign=sign)


def _check_labels(labels, n: int) -> torch.Tensor:
    labels = torch.as_tensor(labels)
    if labels.ndim != 1 or len(labels) != n:
        raise ValueError(f"labels must be a 1-D sequence of {n} class ids, got shape {tuple(labels.shape)}")
    if labels.is_floating_point():
        raise TypeError(f"labels must be integers, got {labels.dtype}")
    return labels.long()


def fit_ddt_per_class(descriptors: torch.Tensor, labels, sign: str = "norm") -> dict[int, DDT]:
    """One :class:`DDT` per class: ``{class id: DDT}``; each class needs at least 2 images.

    Book section: *PSOL* "Deep descriptor transforming".
    """
    d = _check_descriptors(descriptors)
    labels = _check_labels(labels, len(d))
    out = {}
    for c in labels.unique().tolist():
        idx = (labels == c).nonzero().flatten()
        try:
            out[int(c)] = fit_ddt(d[idx], sign=sign)
        except ValueError as err:
            raise ValueError(f"class {c}: {err}") from None
    return out


def map_to_box(projection: torch.Tensor, image_size, threshold: float = 0.0) -> torch.Tensor:
    """Pseudo box from one projection map ``(h, w)``: cells ``> threshold``, largest 8-connected
    component, its cell box scaled to the image (nearest-neighbour upsampling, as the paper does).

    ``image_size``: ``H`` or ``(H, W)`` of the image the box is for. Returns ``(4,)`` xyxy pixels;
    the whole image when no cell is foreground. A map with NaN or infinite cells is a ``ValueError``.

    Book section: *PSOL* "Deep descriptor transforming".
    """
    # NaN > 0 is False everywhere: without the finiteness check the map would silently give the whole image
    projection = as_tensor(projection, "projection", dtype=torch.float64, ndim=2, shape_hint="one (h, w) map")
    H, W = (image_size, image_size) if isinstance(image_size, (int, np.integer)) else tuple(image_size)
    if H <= 0 or W <= 0:
        raise ValueError(f"image_size must be positive, got {image_size}")
    h, w = projection.shape
    mask = bx.largest_component((projection > threshold).cpu().numpy())
    if not mask.any():
        return torch.tensor([0.0, 0.0, float(W), float(H)])
    cell = bx.mask_to_box(mask)  # in cells, exclusive ends
    return cell * torch.tensor([W / w, H / h, W / w, H / h])


def ddt_boxes(descriptors: torch.Tensor, labels, image_size, models: dict[int, DDT] | None = None,
              sign: str = "norm") -> tuple[torch.Tensor, torch.Tensor, dict[int, DDT]]:
    """DDT pseudo boxes for a labelled set: ``(boxes (N, 4) xyxy pixels, maps (N, h, w), models)``.

    Without ``models`` each class's DDT is fitted on these descriptors (the paper: all training
    images of the class); with ``models`` (fitted on training images) held-out images are projected
    on the direction of their class. ``image_size``: ``H``, ``(H, W)`` for all images, or an
    ``(N, 2)`` tensor of per-image ``(H, W)``.

    Book section: *PSOL* "Deep descriptor transforming".
    """
    d = _check_descriptors(descriptors)
    labels = _check_labels(labels, len(d))
    if models is None:
        models = fit_ddt_per_class(d, labels, sign=sign)
    missing = sorted(set(labels.unique().tolist()) - set(models))
    if missing:
        raise ValueError(f"no DDT fitted for classes {missing}")
    sizes = torch.as_tensor(image_size)
    if sizes.ndim == 2:
        if sizes.shape != (len(d), 2):
            raise ValueError(f"per-image sizes must have shape ({len(d)}, 2), got {tuple(sizes.shape)}")
        per_image = [tuple(int(v) for v in s) for s in sizes]
    else:
        per_image = [image_size] * len(d)
    maps = torch.empty(d.shape[0], d.shape[2], d.shape[3])
    for c in labels.unique().tolist():
        idx = (labels == c).nonzero().flatten()
        maps[idx] = models[int(c)].project(d[idx])
    out = torch.stack([map_to_box(maps[i], per_image[i]) for i in range(len(d))])
    return out, maps, models
