r"""The memory bank of non-parametric instance discrimination: one unit vector per training image.

The bank :math:`W \in \mathbb{R}^{N\times d}` is a registered buffer, so it travels in the model's
``state_dict`` and therefore in every checkpoint of :func:`companion.train.fit`.

Two update rules, both followed by re-normalizing the touched rows:

- **momentum** (NPID and the released code): only the rows of the batch move,
  :math:`w_i \leftarrow \mathrm{normalize}(m\,w_i + (1-m)\,z_i)`;
- **gradient** (derived here from the loss, the rule this library calls *corrected*): every column
  that took part in the softmax moves along the negative gradient of the cross entropy,

  .. math:: \frac{\partial\mathcal{L}_{ID}}{\partial w_j} = \frac{1}{B\tau}\sum_i (p_{ij} - y_{ij})\,z_i
            \quad\Longrightarrow\quad
            w_j \leftarrow \mathrm{normalize}\Big(w_j + \eta\sum_i (y_{ij} - p_{ij})\,z_i\Big).

  The own row is pulled towards :math:`z_i` with weight :math:`y_{ii} - p_{ii}` and every other
  column is pushed away from :math:`z_i` with weight :math:`p_{ij}`. With
  :math:`\eta = (1-m)/m` and :math:`p \to 0` it reduces to the momentum rule (the direction of
  :math:`m w + (1-m) z` is that of :math:`w + \frac{1-m}{m} z`).

Book section: *Efficient SSL* "Two ways to update the bank".
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .losses import _check_finite

UPDATE_RULES = ("momentum", "gradient")


class MemoryBank(nn.Module):
    """``N`` rows of dimension ``dim``, unit length, in the buffer ``weight``; random rows at first.

    Book section: *Efficient SSL* "Instance discrimination with a memory bank".
    """

    def __init__(self, size: int, dim: int, seed: int = 0):
        super().__init__()
        for name, v in (("size", size), ("dim", dim)):
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if size < 2:
            raise ValueError(f"a memory bank needs at least 2 rows (instances to tell apart), got {size}")
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("weight", F.normalize(torch.randn(size, dim, generator=g), dim=1))  # (N, d)

    def __len__(self) -> int:
        return self.weight.shape[0]

    @property
    def dim(self) -> int:
        return self.weight.shape[1]

    def extra_repr(self) -> str:
        return f"size={len(self)}, dim={self.dim}"

    def check_index(self, index: torch.Tensor) -> torch.Tensor:
        """``index`` as a 1-D long tensor on the bank's device; errors for floats, duplicates and
        indices outside ``[0, N)`` (a dataset larger than the bank)."""
        if not torch.is_tensor(index):
            index = torch.as_tensor(index)
        if index.dtype in (torch.bool,) or index.is_floating_point() or index.is_complex():
            raise TypeError(f"bank indices must be integers, got dtype {index.dtype}")
        if index.ndim != 1 or index.numel() == 0:
            raise ValueError(f"bank indices must be a non-empty 1-D tensor, got shape {tuple(index.shape)}")
        lo, hi = int(index.min()), int(index.max())
        if lo < 0 or hi >= len(self):
            bad = lo if lo < 0 else hi
            raise ValueError(f"dataset index {bad} is outside the memory bank of {len(self)} rows (valid: 0..{len(self) - 1}); "
                             "build the bank with one row per training image")
        if len(torch.unique(index)) != index.numel():
            raise ValueError("bank indices within a batch must be distinct (each image appears once per batch)")
        return index.long().to(self.weight.device)

    @torch.no_grad()
    def set_(self, index: torch.Tensor, features: torch.Tensor) -> None:
        """``W[index] = normalize(features)``: how feature calibration fills the bank.

        Book section: *Efficient SSL* "Feature calibration".
        """
        index = self.check_index(index)
        self._check_features(features, len(index))
        self.weight[index] = F.normalize(features.detach().float(), dim=1).to(self.weight.dtype)

    def columns(self, index: torch.Tensor, negatives: int | None = None) -> torch.Tensor:
        """Bank rows to score a batch against: the batch's own rows first (so the target of row ``i`` is
        column ``i``), then ``negatives`` other rows drawn uniformly without replacement (``None``: all
        of them). ``(B + K,)`` long indices. Draws from torch's global generator.
        Book section: *Efficient SSL* "Instance discrimination with a memory bank".
        """
        index = self.check_index(index)
        n = len(self)
        others = torch.ones(n, dtype=torch.bool, device=index.device)
        others[index] = False
        if negatives is None or negatives >= n - len(index):
            rest = others.nonzero().squeeze(1)
        else:
            if negatives < 0:
                raise ValueError(f"negatives must be >= 0 or None, got {negatives}")
            perm = torch.randperm(n).to(index.device)
            rest = perm[others[perm]][:negatives]
        return torch.cat([index, rest])

    def _check_features(self, features: torch.Tensor, rows: int) -> None:
        if not torch.is_tensor(features) or features.ndim != 2 or features.shape != (rows, self.dim):
            raise ValueError(f"features must be ({rows}, {self.dim}), "
                             f"got {getattr(features, 'shape', type(features))}")
        _check_finite(features, "features")

    @torch.no_grad()
    def momentum_update_(self, index: torch.Tensor, features: torch.Tensor, momentum: float = 0.5) -> None:
        r"""NPID's rule for the batch rows only: :math:`w_i \leftarrow \mathrm{normalize}(m\,w_i + (1-m)\,z_i)`.

        ``features``: ``(B, d)`` (normalized here). Book section: *Efficient SSL* "Two ways to update the bank".
        """
        if isinstance(momentum, bool) or not isinstance(momentum, (int, float)) or not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum must be a number in [0, 1], got {momentum!r}")
        index = self.check_index(index)
        self._check_features(features, len(index))
        z = F.normalize(features.detach().float(), dim=1)
        new = momentum * self.weight[index].float() + (1.0 - momentum) * z
        self.weight[index] = F.normalize(new, dim=1).to(self.weight.dtype)

    @torch.no_grad()
    def gradient_update_(self, columns: torch.Tensor, features: torch.Tensor, probs: torch.Tensor,
                         targets: torch.Tensor, step: float = 1.0) -> None:
        r"""The gradient-derived rule: :math:`w_j \leftarrow \mathrm{normalize}(w_j + \eta\sum_i (y_{ij} - p_{ij})\,z_i)`
        for every scored column :math:`j`.

        ``columns``: ``(C,)`` bank rows that were scored (from :meth:`columns`, distinct);
        ``features``: ``(B, d)``; ``probs``, ``targets``: ``(B, C)`` (the softmax at temperature
        :math:`\tau` and the soft targets of :func:`~companion.effssl.losses.mixed_targets`);
        ``step`` is :math:`\eta`. Book section: *Efficient SSL* "Two ways to update the bank".
        """
        if isinstance(step, bool) or not isinstance(step, (int, float)) or not 0 <= step < float("inf"):
            raise ValueError(f"step must be a non-negative finite number, got {step!r}")
        columns = self.check_index(columns)
        b = features.shape[0] if torch.is_tensor(features) and features.ndim == 2 else -1
        self._check_features(features, b)
        if probs.shape != (b, len(columns)) or targets.shape != probs.shape:
            raise ValueError(f"probs and targets must be ({b}, {len(columns)}), "
                             f"got {tuple(probs.shape)} and {tuple(targets.shape)}")
        _check_finite(probs, "probs")
        _check_finite(targets, "targets")
        z = F.normalize(features.detach().float(), dim=1)  # (B, d)
        delta = (targets.float() - probs.detach().float()).t() @ z  # (C, d): sum_i (y_ij - p_ij) z_i
        new = self.weight[columns].float() + step * delta
        self.weight[columns] = F.normalize(new, dim=1).to(self.weight.dtype)

    def row_norms(self) -> torch.Tensor:
        """``(N,)`` Euclidean norms of the rows (all 1 after every update)."""
        return self.weight.float().norm(dim=1)
