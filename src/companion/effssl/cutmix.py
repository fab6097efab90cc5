r"""CutMix on a single view, as the efficient single-branch method uses it.

A box of image :math:`\pi(i)` (a random permutation of the batch) is pasted into image :math:`i`.
One mixing ratio serves the whole batch:

.. math:: \lambda \sim \mathrm{Beta}(\alpha, \alpha),\quad \lambda \leftarrow \max(\lambda, 1-\lambda),\quad
          \text{box side} = \sqrt{1-\lambda}\times\text{image side},

then :math:`\lambda` is reset to the fraction of pixels that really stayed (the box is clipped at the
border). Taking :math:`\max(\lambda, 1-\lambda)` keeps image :math:`i` the larger part, so its own
index stays the main target.

``torchvision.transforms.v2.CutMix`` is not used: it needs a class count (here one class per
training image, so a dense ``B x N`` label matrix), pairs each image with its neighbour in the batch
(``roll``) rather than a random permutation, and has no :math:`\max(\lambda, 1-\lambda)` step.

Book section: *Efficient SSL* "CutMix on one view".
"""

from __future__ import annotations

import torch


def cutmix_box(height: int, width: int, lam: float) -> tuple[int, int, int, int]:
    """The pasted box ``(y1, y2, x1, x2)`` (exclusive ends) for mixing ratio ``lam``: sides
    ``sqrt(1 - lam)`` of the image's, centre uniform over the image, clipped at the border.
    Draws from torch's global generator. Book section: *Efficient SSL* "CutMix on one view".
    """
    for name, v in (("height", height), ("width", width)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    if isinstance(lam, bool) or not isinstance(lam, (int, float)) or not 0.0 <= lam <= 1.0:
        raise ValueError(f"lam must be a number in [0, 1], got {lam!r}")
    cut = (1.0 - lam) ** 0.5
    ch, cw = int(height * cut), int(width * cut)
    cy, cx = int(torch.randint(height, ()).item()), int(torch.randint(width, ()).item())
    y1, y2 = max(cy - ch // 2, 0), min(cy + ch // 2, height)
    x1, x2 = max(cx - cw // 2, 0), min(cx + cw // 2, width)
    return y1, y2, x1, x2


def cutmix(images: torch.Tensor, alpha: float = 0.5) -> tuple[torch.Tensor, torch.Tensor, float]:
    r"""Mix a batch ``(B, C, H, W)``: returns ``(mixed, perm, lam)``.

    ``mixed[i]`` is ``images[i]`` with a box of ``images[perm[i]]`` pasted in; ``lam`` in [0.5, 1] is
    the exact fraction of each image's own pixels. The matching targets are
    :func:`~companion.effssl.losses.mixed_targets`. Uses torch's global generator, so a seeded run
    (and a resumed one, which restores it) draws the same boxes. Book section: *Efficient SSL* "CutMix on one view".
    """
    if not torch.is_tensor(images) or images.ndim != 4:
        raise ValueError(f"cutmix takes an image batch (B, C, H, W), got {getattr(images, 'shape', type(images))}")
    if not images.is_floating_point():
        raise TypeError(f"cutmix takes float images, got dtype {images.dtype}")
    if images.shape[0] == 0:
        raise ValueError("cutmix got an empty batch")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < float("inf"):
        raise ValueError(f"alpha must be a positive finite number, got {alpha!r}")
    b, _, h, w = images.shape
    lam = float(torch.distributions.Beta(float(alpha), float(alpha)).sample())
    lam = max(lam, 1.0 - lam)
    perm = torch.randperm(b).to(images.device)
    y1, y2, x1, x2 = cutmix_box(h, w, lam)
    mixed = images.clone()
    mixed[:, :, y1:y2, x1:x2] = images[perm, :, y1:y2, x1:x2]
    lam = 1.0 - (y2 - y1) * (x2 - x1) / (h * w)
    return mixed, perm, lam
