r"""The two losses of single-branch instance discrimination: cross entropy against the memory bank
(with CutMix's mixed targets) and the square-root self-distillation loss (SqrtKL).

With an image feature :math:`z_i` and bank rows :math:`w_j` (all unit vectors), the logits are cosines
:math:`s_{ij} = z_i^\top w_j`. Instance discrimination treats every training image as its own class:

.. math:: p_{ij} = \frac{e^{s_{ij}/\tau}}{\sum_k e^{s_{ik}/\tau}}, \qquad
          \mathcal{L}_{ID} = -\frac1B\sum_i \sum_j y_{ij}\log p_{ij}

and SqrtKL pulls :math:`p` towards its own flatter square-root version :math:`u`, held constant:

.. math:: u_{ij} = \frac{\sqrt{p_{ij}}}{\sum_k \sqrt{p_{ik}}}, \qquad
          \mathcal{L}_{sqrt} = \frac1B\sum_i \mathrm{KL}\big(p_i \,\Vert\, \mathrm{sg}(u_i)\big)

Book section: *Efficient SSL* "The square-root loss".
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def check_temperature(temperature: float, name: str = "temperature") -> float:
    """A positive, finite float, or a ValueError naming the argument."""
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)):
        raise TypeError(f"{name} must be a number, got {temperature!r}")
    if not (temperature > 0 and temperature < float("inf")):
        raise ValueError(f"{name} must be positive and finite, got {temperature}")
    return float(temperature)


def _check_logits(logits: torch.Tensor) -> None:
    if not torch.is_tensor(logits):
        raise TypeError(f"logits must be a tensor, got {type(logits).__name__}")
    if not logits.is_floating_point():
        raise TypeError(f"logits must be floating point, got dtype {logits.dtype}")
    if logits.ndim != 2 or logits.shape[0] == 0 or logits.shape[1] < 2:
        raise ValueError(f"logits must be (B, C) with B >= 1 rows and C >= 2 columns, "
                         f"got shape {tuple(logits.shape)}")
    _check_finite(logits, "logits")


def _check_finite(t: torch.Tensor, name: str) -> None:
    """NaN or inf would pass through softmax and turn every loss and bank row into NaN."""
    bad = ~torch.isfinite(t.detach())
    if bool(bad.any()):
        rows = sorted({int(r) for r in bad.nonzero()[:, 0].tolist()})
        raise ValueError(f"{name} hold {int(bad.sum())} NaN or infinite value(s) in rows {rows[:8]}"
                         f"{' ...' if len(rows) > 8 else ''}: the network diverged or its input is broken")


def sqrt_target(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    r"""The square-root target :math:`u = \sqrt p / \sum\sqrt p` of :math:`p = \mathrm{softmax}(s/T)`, detached.

    Since :math:`\sqrt{p_j} \propto e^{s_j/2T}`, :math:`u` is simply the softmax at **twice** the
    temperature: :math:`u = \mathrm{softmax}(s/2T)`. ``logits``: ``(B, C)`` -> ``(B, C)``.
    Book section: *Efficient SSL* "The square-root loss".
    """
    _check_logits(logits)
    temperature = check_temperature(temperature)
    return F.softmax(logits.detach().float() / (2 * temperature), dim=1)


def sqrt_kl(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    r"""SqrtKL, :math:`\frac1B\sum_i \mathrm{KL}(p_i \Vert \mathrm{sg}(u_i))` with :math:`p = \mathrm{softmax}(s/T)`.

    Zero exactly when every row of ``logits`` is constant (uniform :math:`p`, then :math:`u = p`),
    positive otherwise. Gradients flow through :math:`p` only; the target :math:`u` is constant
    (:func:`sqrt_target`). The released code applies it to the raw cosines (``temperature=1``), not
    to the instance-discrimination logits :math:`s/\tau`. ``logits``: ``(B, C)``; returns a scalar.
    Book section: *Efficient SSL* "The square-root loss".
    """
    _check_logits(logits)
    temperature = check_temperature(temperature)
    log_p = F.log_softmax(logits.float() / temperature, dim=1)  # (B, C)
    log_u = F.log_softmax(logits.detach().float() / (2 * temperature), dim=1)  # (B, C), constant
    return (log_p.exp() * (log_p - log_u)).sum(1).mean()


def sqrt_kl_grad(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    r"""The gradient of :func:`sqrt_kl` with respect to ``logits``, in closed form.

    With :math:`u` held constant, :math:`\log p_k - \log u_k = \tfrac12\log p_k + \log\sum_j\sqrt{p_j}`, so

    .. math:: \frac{\partial\,\mathrm{KL}(p_i\Vert u_i)}{\partial s_{ik}}
              = \frac{1}{2T}\, p_{ik}\Big(\log p_{ik} - \sum_j p_{ij}\log p_{ij}\Big)

    (divided by :math:`B` for the batch mean). Columns more probable than the :math:`p`-weighted
    average of :math:`\log p` are pushed down, the others up: the loss flattens :math:`p`, and the
    push on a column is proportional to its probability. Book section: *Efficient SSL* "The square-root loss".
    """
    _check_logits(logits)
    temperature = check_temperature(temperature)
    log_p = F.log_softmax(logits.detach().float() / temperature, dim=1)
    p = log_p.exp()
    centred = log_p - (p * log_p).sum(1, keepdim=True)  # log p_k - E_p[log p]
    return p * centred / (2 * temperature * logits.shape[0])


def mixed_targets(batch: int, columns: int, lam: float = 1.0, perm: torch.Tensor | None = None,
                  device: torch.device | str | None = None) -> torch.Tensor:
    r"""Soft targets ``(B, C)`` for instance discrimination with the batch's own rows in columns ``0..B-1``.

    Without CutMix, :math:`y_{ii} = 1`. With CutMix (a box of image :math:`\pi(i)` pasted into image
    :math:`i`, keeping the fraction :math:`\lambda` of image :math:`i`), :math:`y_{ii} = \lambda` and
    :math:`y_{i\pi(i)} \mathrel{+}= 1-\lambda`. Targets are *column positions*, not dataset indices.
    Book section: *Efficient SSL* "CutMix on one view".
    """
    for name, v in (("batch", batch), ("columns", columns)):
        if isinstance(v, bool) or not isinstance(v, int):
            raise TypeError(f"{name} must be an integer, got {v!r}")
    if batch < 1 or columns < batch:
        raise ValueError(f"need 1 <= batch <= columns, got batch={batch}, columns={columns}")
    if isinstance(lam, bool) or not isinstance(lam, (int, float)) or not 0.0 <= lam <= 1.0:
        raise ValueError(f"lam must be a number in [0, 1], got {lam!r}")
    y = torch.zeros(batch, columns, device=device)
    rows = torch.arange(batch, device=device)
    y[rows, rows] = lam
    if perm is not None:
        if not torch.is_tensor(perm) or perm.shape != (batch,):
            raise ValueError(f"perm must be a tensor of shape ({batch},), got {getattr(perm, 'shape', perm)!r}")
        if perm.is_floating_point() or (batch and (int(perm.min()) < 0 or int(perm.max()) >= batch)):
            raise ValueError(f"perm must hold integer batch positions in 0..{batch - 1}, got {perm.tolist()}")
        y[rows, perm.to(y.device)] += 1.0 - lam
    return y


def instance_loss(logits: torch.Tensor, targets: torch.Tensor, temperature: float = 0.2) -> torch.Tensor:
    r"""Cross entropy of :math:`\mathrm{softmax}(s/\tau)` against soft targets, batch mean.

    .. math:: \mathcal{L}_{ID} = -\frac1B\sum_i\sum_j y_{ij}\log\frac{e^{s_{ij}/\tau}}{\sum_k e^{s_{ik}/\tau}}

    With CutMix targets this equals :math:`\lambda\,\mathrm{CE}(s/\tau, a) + (1-\lambda)\,\mathrm{CE}(s/\tau, b)`
    of the released code. ``logits``, ``targets``: ``(B, C)``. Book section: *Efficient SSL* "Instance discrimination with a memory bank".
    """
    _check_logits(logits)
    temperature = check_temperature(temperature)
    if not torch.is_tensor(targets) or targets.shape != logits.shape:
        raise ValueError(f"targets must have the logits' shape {tuple(logits.shape)}, "
                         f"got {getattr(targets, 'shape', type(targets).__name__)}")
    _check_finite(targets, "targets")
    if bool((targets < 0).any()):
        raise ValueError("targets must be non-negative (soft labels from mixed_targets), "
                         f"got a minimum of {float(targets.min()):.4g}")
    return -(targets * F.log_softmax(logits.float() / temperature, dim=1)).sum(1).mean()
