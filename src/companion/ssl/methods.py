"""SimSiam, BYOL, MoCo v2 and SimCLR as modules: ``forward(v1, v2) -> {"loss", ...}`` and
``on_step(step, total_steps)`` for the momentum updates that follow each optimizer step.

Book sections: *SSQL* "The SimSiam loss with a quantized branch", *US3L* "A momentum teacher for every width",
*S3L* "MoCo v2 on the target data", *Tobias* "Background swap inside MoCo v2", *Efficient SSL* "Instance discrimination".
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .ema import cosine_momentum, ema_update_, frozen_copy
from .heads import mlp, predictor, projector
from .losses import byol_loss, moco_logits, nt_xent, simsiam_loss


def _std(z: torch.Tensor) -> torch.Tensor:
    """:func:`companion.ssl.evaluate.embedding_std` as a tensor, logged every step to spot collapse."""
    return F.normalize(z.detach().float(), dim=1).std(0).mean()


class SSLMethod(nn.Module):
    """Common interface: ``.encoder`` (the online backbone, what gets evaluated), ``forward(v1, v2)``, ``on_step``."""

    encoder: nn.Module

    def on_step(self, step: int, total_steps: int) -> None:
        """Called after every optimizer step (momentum updates); nothing for methods without a target."""

    def check_dataset_size(self, n: int) -> None:
        """Raise if the method cannot train on ``n`` images (MoCo's queue); nothing by default."""


def _feature_dim(encoder: nn.Module) -> int:
    d = getattr(encoder, "feature_dim", None)
    if not isinstance(d, int):
        raise ValueError("the encoder needs an integer attribute feature_dim (every companion.ssl encoder has one)")
    return d


class SimSiam(SSLMethod):
    r"""SimSiam (Chen & He 2021): predictor + stop-gradient, no negatives, no momentum encoder.

    .. math:: z_i = f(x_i),\quad p_i = h(z_i),\quad \mathcal{L} = \tfrac12\mathcal{D}(p_1, \mathrm{sg}(z_2)) + \tfrac12\mathcal{D}(p_2, \mathrm{sg}(z_1))

    f = encoder + projector (``proj_layers`` layers, width ``proj_dim``, ending in BN); h = predictor with
    bottleneck ``pred_dim``. Book section: *SSQL* "The SimSiam loss with a quantized branch".
    """

    def __init__(self, encoder: nn.Module, proj_dim: int = 2048, pred_dim: int = 512, proj_layers: int = 3):
        super().__init__()
        self.encoder = encoder
        self.projector = projector(_feature_dim(encoder), proj_dim, proj_dim, layers=proj_layers)
        self.predictor = predictor(proj_dim, pred_dim)

    def forward(self, v1: torch.Tensor, v2: torch.Tensor) -> dict:
        z1, z2 = self.projector(self.encoder(v1)), self.projector(self.encoder(v2))  # (N, proj_dim)
        p1, p2 = self.predictor(z1), self.predictor(z2)
        return {"loss": simsiam_loss(p1, p2, z1, z2), "std": _std(z1)}


class BYOL(SSLMethod):
    r"""BYOL (Grill et al. 2020): the online network predicts an EMA target network's projection.

    .. math:: \mathcal{L} = \lVert \bar q_\theta(z_1) - \bar z'_{\xi,2}\rVert^2 + \lVert \bar q_\theta(z_2) - \bar z'_{\xi,1}\rVert^2,
              \qquad \xi \leftarrow m_t\,\xi + (1-m_t)\,\theta

    with :math:`m_t` rising from ``base_momentum`` to 1 (:func:`~companion.ssl.ema.cosine_momentum`).
    Book section: *US3L* "A momentum teacher for every width".
    """

    def __init__(self, encoder: nn.Module, proj_dim: int = 256, hidden: int = 4096, base_momentum: float = 0.99):
        super().__init__()
        if not 0.0 <= base_momentum <= 1.0:
            raise ValueError(f"base_momentum must be in [0, 1], got {base_momentum}")
        self.encoder = encoder
        self.projector = mlp(_feature_dim(encoder), hidden, proj_dim, layers=2, last_bn=False)
        self.predictor = predictor(proj_dim, hidden)
        self.target_encoder = frozen_copy(encoder)
        self.target_projector = frozen_copy(self.projector)
        self.base_momentum = base_momentum
        self.momentum = base_momentum

    def forward(self, v1: torch.Tensor, v2: torch.Tensor) -> dict:
        z1, z2 = self.projector(self.encoder(v1)), self.projector(self.encoder(v2))  # (N, proj_dim)
        p1, p2 = self.predictor(z1), self.predictor(z2)
        with torch.no_grad():
            t1 = self.target_projector(self.target_encoder(v1))
            t2 = self.target_projector(self.target_encoder(v2))
        loss = byol_loss(p1, t2) + byol_loss(p2, t1)
        return {"loss": loss, "std": _std(z1), "momentum": self.momentum}

    def on_step(self, step: int, total_steps: int) -> None:
        self.momentum = cosine_momentum(step, total_steps, self.base_momentum)
        ema_update_(self.target_encoder, self.encoder, self.momentum)
        ema_update_(self.target_projector, self.projector, self.momentum)


class MoCo(SSLMethod):
    r"""MoCo v2 (Chen et al. 2020): a query encoder, a momentum key encoder and a queue of past keys.

    .. math:: q = \bar g(f_\theta(x_1)),\ k = \bar g'(f_\xi(x_2)),\quad
              \mathcal{L} = -\log\frac{e^{q\cdot k/\tau}}{e^{q\cdot k/\tau} + \sum_{j=1}^{K} e^{q\cdot \kappa_j/\tau}},\quad
              \xi \leftarrow m\,\xi + (1-m)\,\theta

    The head g is MoCo v2's Linear-ReLU-Linear to ``dim``. After each step the batch's keys replace the
    oldest ``N`` queue entries. ``queue_size`` K must not exceed ``dataset_size``: a longer queue holds
    several stale keys of the same image, which then act as negatives against their own positive.
    Single-process: no shuffle-BN and no all-gather of keys across GPUs.
    Book sections: *S3L* "MoCo v2 on the target data", *Tobias* "Background swap inside MoCo v2".
    """

    def __init__(
        self, encoder: nn.Module, dim: int = 128, queue_size: int = 4096, momentum: float = 0.99, temperature: float = 0.2,
        dataset_size: int | None = None, hidden: int | None = None, momentum_schedule: str = "constant", symmetric: bool = False,
    ):
        super().__init__()
        if not isinstance(queue_size, int) or queue_size < 0:
            raise ValueError(f"queue_size must be a non-negative integer, got {queue_size!r}")
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum must be in [0, 1], got {momentum}")
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        if momentum_schedule not in ("constant", "cosine"):
            raise ValueError(f"momentum_schedule must be 'constant' or 'cosine', got {momentum_schedule!r}")
        self.queue_size = queue_size
        if dataset_size is not None:
            self.check_dataset_size(dataset_size)
        d = _feature_dim(encoder)
        self.encoder = encoder
        self.projector = mlp(d, hidden or d, dim, layers=2, last_bn=False, hidden_bn=False)
        self.key_encoder = frozen_copy(encoder)
        self.key_projector = frozen_copy(self.projector)
        self.base_momentum = self.momentum = momentum
        self.momentum_schedule = momentum_schedule
        self.temperature = temperature
        self.symmetric = symmetric
        # random unit keys to start, as in MoCo: the first K / N steps contrast against noise
        self.register_buffer("queue", F.normalize(torch.randn(queue_size, dim), dim=1))  # (K, dim)
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))

    def check_dataset_size(self, n: int) -> None:
        if self.queue_size > n:
            raise ValueError(
                f"queue_size={self.queue_size} is larger than the dataset ({n} images): the queue would hold "
                f"stale copies of the same images as negatives; use queue_size <= {n}"
            )

    def _query(self, x):
        return F.normalize(self.projector(self.encoder(x)).float(), dim=1)

    @torch.no_grad()
    def _key(self, x):
        return F.normalize(self.key_projector(self.key_encoder(x)).float(), dim=1)

    def _loss(self, q, k):
        logits = moco_logits(q, k, self.queue, self.temperature)  # (N, 1 + K)
        target = torch.zeros(len(q), dtype=torch.long, device=q.device) if self.queue_size else torch.arange(len(q), device=q.device)
        return F.cross_entropy(logits, target), (logits.argmax(1) == target).float().mean()

    def forward(self, v1: torch.Tensor, v2: torch.Tensor) -> dict:
        q1, k2 = self._query(v1), self._key(v2)  # (N, dim)
        loss, acc = self._loss(q1, k2)
        keys = [k2]
        if self.symmetric:
            q2, k1 = self._query(v2), self._key(v1)
            loss2, acc2 = self._loss(q2, k1)
            loss, acc = 0.5 * (loss + loss2), 0.5 * (acc + acc2)
            keys.append(k1)
        if self.training:
            for k in keys:
                self._enqueue(k)
        return {"loss": loss, "acc": acc, "std": _std(q1)}

    @torch.no_grad()
    def _enqueue(self, k: torch.Tensor) -> None:
        if self.queue_size == 0:
            return
        k = k[-self.queue_size :]
        idx = (self.queue_ptr + torch.arange(len(k), device=k.device)) % self.queue_size
        self.queue[idx] = k.to(self.queue.dtype)
        self.queue_ptr.fill_(int((self.queue_ptr + len(k)) % self.queue_size))

    def on_step(self, step: int, total_steps: int) -> None:
        if self.momentum_schedule == "cosine":
            self.momentum = cosine_momentum(step, total_steps, self.base_momentum)
        ema_update_(self.key_encoder, self.encoder, self.momentum)
        ema_update_(self.key_projector, self.projector, self.momentum)


class SimCLR(SSLMethod):
    r"""SimCLR (Chen et al. 2020): NT-Xent over the 2N views of a batch, negatives from the batch itself.

    .. math:: z = g(f(x)),\qquad \mathcal{L} = \text{NT-Xent}(z_1, z_2; \tau)

    g is Linear-BN-ReLU-Linear to ``dim``. Book section: *US3L* "A momentum teacher for every width".
    """

    def __init__(self, encoder: nn.Module, dim: int = 128, temperature: float = 0.5, hidden: int | None = None):
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        d = _feature_dim(encoder)
        self.encoder = encoder
        self.projector = mlp(d, hidden or d, dim, layers=2, last_bn=False)
        self.temperature = temperature

    def forward(self, v1: torch.Tensor, v2: torch.Tensor) -> dict:
        z1, z2 = self.projector(self.encoder(v1)), self.projector(self.encoder(v2))
        return {"loss": nt_xent(z1, z2, self.temperature), "std": _std(z1)}


METHODS: dict[str, type[SSLMethod]] = {"simsiam": SimSiam, "byol": BYOL, "moco": MoCo, "simclr": SimCLR}
