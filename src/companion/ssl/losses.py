"""Self-supervised losses: negative cosine (SimSiam), BYOL's normalized MSE, InfoNCE (MoCo), NT-Xent (SimCLR).

Every loss works on float32 internally (inputs may come from mixed precision) and returns a scalar.

Book sections: *S3L* "MoCo v2 on the target data", *SSQL* "The SimSiam loss with a quantized branch",
*US3L* "A momentum teacher for every width", *Efficient SSL* "Instance discrimination",
*Tobias* "Background swap inside MoCo v2".
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _check_pair(a: torch.Tensor, b: torch.Tensor, names: str) -> None:
    if not (torch.is_tensor(a) and torch.is_tensor(b)):
        raise TypeError(f"{names} must be tensors")
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(f"{names} must be two (N, D) tensors of the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    if a.shape[0] == 0:
        raise ValueError(f"{names} are empty (N = 0)")


def _check_temperature(temperature: float) -> None:
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")


def negative_cosine(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    r"""SimSiam's criterion with stop-gradient on the target.

    .. math:: \mathcal{D}(p, z) = -\frac{1}{N}\sum_i \frac{p_i}{\lVert p_i\rVert_2}\cdot\frac{\mathrm{sg}(z_i)}{\lVert z_i\rVert_2}

    In [-1, 1]: -1 when every prediction points along its target, 0 when orthogonal.
    ``p``, ``z``: ``(N, D)``. Book section: *SSQL* "The SimSiam loss with a quantized branch".
    """
    _check_pair(p, z, "p and z")
    return -F.cosine_similarity(p.float(), z.detach().float(), dim=-1).mean()


def simsiam_loss(p1: torch.Tensor, p2: torch.Tensor, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    r"""Symmetrized SimSiam loss: each view's prediction matches the other view's projection.

    .. math:: \mathcal{L} = \tfrac12\,\mathcal{D}(p_1, z_2) + \tfrac12\,\mathcal{D}(p_2, z_1)

    Book section: *SSQL* "The SimSiam loss with a quantized branch".
    """
    return 0.5 * (negative_cosine(p1, z2) + negative_cosine(p2, z1))


def byol_loss(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    r"""BYOL's normalized mean squared error against a (stop-gradient) target projection.

    .. math:: \mathcal{L}(p, z) = \frac1N\sum_i \Big\lVert \bar p_i - \bar z_i \Big\rVert_2^2 = 2 - \frac2N\sum_i \cos(p_i, \mathrm{sg}(z_i))

    In [0, 4]; 0 when aligned. Book section: *US3L* "A momentum teacher for every width".
    """
    _check_pair(p, z, "p and z")
    return 2.0 - 2.0 * F.cosine_similarity(p.float(), z.detach().float(), dim=-1).mean()


def moco_logits(q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor | None, temperature: float) -> torch.Tensor:
    r"""InfoNCE logits ``(N, 1 + K)``: column 0 is the positive key, the rest the queue.

    Rows of ``q`` (``(N, D)``), ``k`` (``(N, D)``) and ``queue`` (``(K, D)``) are L2-normalized here.
    With no queue (``None`` or ``K = 0``) the other keys of the batch are the negatives (logits
    ``(N, N)``, positives on the diagonal), as in MoCo v3.
    """
    _check_pair(q, k, "q and k")
    _check_temperature(temperature)
    q = F.normalize(q.float(), dim=-1)
    k = F.normalize(k.detach().float(), dim=-1)
    if queue is None or queue.shape[0] == 0:
        return q @ k.t() / temperature  # (N, N)
    if queue.ndim != 2 or queue.shape[1] != q.shape[1]:
        raise ValueError(f"queue must be (K, {q.shape[1]}), got {tuple(queue.shape)}")
    neg = F.normalize(queue.detach().float(), dim=-1)
    pos = (q * k).sum(-1, keepdim=True)  # (N, 1)
    return torch.cat([pos, q @ neg.t()], dim=1) / temperature  # (N, 1 + K)


def info_nce(q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor | None, temperature: float = 0.2) -> torch.Tensor:
    r"""MoCo's InfoNCE: pick the positive key out of the queue of negatives.

    .. math:: \mathcal{L}_q = -\log \frac{\exp(q\cdot k_+/\tau)}{\exp(q\cdot k_+/\tau) + \sum_{j=1}^{K}\exp(q\cdot k_j/\tau)}

    ``q``: queries ``(N, D)`` (with gradient); ``k``: keys ``(N, D)`` (stop-gradient); ``queue``: ``(K, D)``.
    Book sections: *S3L* "MoCo v2 on the target data", *Tobias* "Background swap inside MoCo v2".
    """
    logits = moco_logits(q, k, queue, temperature)
    if queue is None or queue.shape[0] == 0:
        target = torch.arange(len(q), device=q.device)
    else:
        target = torch.zeros(len(q), dtype=torch.long, device=q.device)
    return F.cross_entropy(logits, target)


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    r"""SimCLR's normalized temperature-scaled cross entropy over the 2N views of a batch.

    With :math:`s_{ij} = \bar z_i\cdot\bar z_j` over all 2N embeddings and :math:`j(i)` the other view of :math:`i`:

    .. math:: \mathcal{L} = -\frac{1}{2N}\sum_{i=1}^{2N} \log\frac{\exp(s_{i,j(i)}/\tau)}{\sum_{l\ne i}\exp(s_{il}/\tau)}

    ``z1``, ``z2``: ``(N, D)``, both with gradient. Book section: *US3L* "A momentum teacher for every width".
    """
    _check_pair(z1, z2, "z1 and z2")
    _check_temperature(temperature)
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]).float(), dim=-1)  # (2N, D)
    sim = z @ z.t() / temperature  # (2N, 2N)
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(sim, target)
