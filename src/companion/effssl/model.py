r"""Single-branch instance discrimination: one augmented view per image per step, a memory bank of
instance features, feature calibration, CutMix, SqrtKL, and either bank update rule.

Per step, for a batch of images :math:`x` with dataset indices :math:`I`:

1. (CutMix) paste boxes of a permuted batch in, keep the fraction :math:`\lambda` of each image;
2. :math:`z = \mathrm{normalize}(g(f(x)))`, shape ``(B, d)`` (encoder :math:`f`, MLP head :math:`g`);
3. score :math:`z` against the bank rows of :math:`I` (first) and :math:`K` sampled others: :math:`s = z W_{cols}^\top`;
4. :math:`\mathcal{L} = \mathcal{L}_{ID}(s/\tau, y) + \lambda_{sqrt}\,\mathrm{KL}(p \Vert \mathrm{sg}(u))`;
5. after the optimizer step, update the bank (momentum or gradient rule, :mod:`~companion.effssl.bank`).

Two-branch methods (SimSiam, BYOL, MoCo) encode two views of every image per step; this one encodes
one, so a step costs about half as much. Book section: *Efficient SSL* "Instance discrimination with a memory bank".
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..ssl.heads import mlp
from .bank import UPDATE_RULES, MemoryBank
from .cutmix import cutmix
from .losses import check_temperature, instance_loss, mixed_targets, sqrt_kl


class SingleBranchID(nn.Module):
    """Encoder + MLP head + memory bank, trained with one view per image.

    ``dataset_size``: bank rows (one per training image; batches carry dataset indices).
    ``temperature``: :math:`\\tau` of the instance-discrimination softmax (0.2 in the released code).
    ``negatives``: sampled bank rows per step besides the batch's own (``None``: every row).
    ``update``: ``"momentum"`` (released code, ``momentum`` = 0.5) or ``"gradient"`` (the corrected
    rule, step ``bank_step``; ``None`` takes :math:`(1-m)/m`, which matches the momentum rule's pull on
    the own row). ``sqrt_weight``: :math:`\\lambda_{sqrt}` (20 in the released code; 0 turns SqrtKL off),
    applied at ``sqrt_temperature`` on the cosines. ``cutmix_alpha``: Beta parameter (0 turns CutMix off).
    ``forward(x, index) -> dict(loss, id, sqrt, p_pos, acc)`` (``p_pos``: mean probability of the own row;
    ``acc``: how often the own row scores highest, i.e. instance recognition); :meth:`update_bank` (also ``on_step``) after
    each optimizer step. The bank lives in one process: under DistributedDataParallel every process
    would keep and update its own copy, so train on one GPU. Book section: *Efficient SSL* "Instance discrimination with a memory bank".
    """

    def __init__(
        self, encoder: nn.Module, dataset_size: int, dim: int = 128, hidden: int = 512, head_layers: int = 2,
        temperature: float = 0.2, negatives: int | None = None, update: str = "momentum", momentum: float = 0.5,
        bank_step: float | None = None, sqrt_weight: float = 0.0, sqrt_temperature: float = 1.0,
        cutmix_alpha: float = 0.5, seed: int = 0,
    ):
        super().__init__()
        feature_dim = getattr(encoder, "feature_dim", None)
        if not isinstance(feature_dim, int):
            raise ValueError("the encoder needs an integer attribute feature_dim (every companion.ssl encoder has one)")
        if update not in UPDATE_RULES:
            raise ValueError(f"update must be one of {UPDATE_RULES}, got {update!r}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        for name, v in (("sqrt_weight", sqrt_weight), ("cutmix_alpha", cutmix_alpha)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < float("inf"):
                raise ValueError(f"{name} must be a finite number >= 0 (0 turns it off), got {v!r}")
        if negatives is not None and (isinstance(negatives, bool) or not isinstance(negatives, int) or negatives < 1):
            raise ValueError(f"negatives must be a positive integer or None, got {negatives!r}")
        self.temperature = check_temperature(temperature, "temperature")
        self.sqrt_temperature = check_temperature(sqrt_temperature, "sqrt_temperature")
        self.encoder = encoder
        self.head = mlp(feature_dim, hidden, dim, layers=head_layers, last_bn=False)
        self.bank = MemoryBank(dataset_size, dim, seed=seed)
        self.negatives, self.update, self.momentum = negatives, update, momentum
        if bank_step is None:
            bank_step = (1.0 - momentum) / momentum if momentum > 0 else 1.0
        if isinstance(bank_step, bool) or not isinstance(bank_step, (int, float)) or not 0 <= bank_step < float("inf"):
            raise ValueError(f"bank_step must be a finite number >= 0, got {bank_step!r}")
        self.bank_step = float(bank_step)
        self.sqrt_weight, self.cutmix_alpha = float(sqrt_weight), float(cutmix_alpha)
        self._pending: tuple | None = None

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W) -> (B, d)`` unit-length features :math:`z = \\mathrm{normalize}(g(f(x)))`."""
        return F.normalize(self.head(self.encoder(x)).float(), dim=1)

    def forward(self, x: torch.Tensor, index: torch.Tensor) -> dict:
        index = self.bank.check_index(index)
        if not torch.is_tensor(x) or x.ndim != 4 or len(x) != len(index):
            raise ValueError(f"x must be a batch (B, C, H, W) with one image per index ({len(index)}), "
                             f"got {getattr(x, 'shape', type(x))}")
        lam, perm = 1.0, None
        if self.training and self.cutmix_alpha > 0:
            x, perm, lam = cutmix(x, self.cutmix_alpha)
        z = self.embed(x)  # (B, d)
        cols = self.bank.columns(index, self.negatives)  # (C,) batch rows first
        w = self.bank.weight[cols].float()  # (C, d), a copy: the bank may change in place later
        s = z @ w.t()  # (B, C) cosines
        y = mixed_targets(len(index), len(cols), lam, perm, device=s.device)  # (B, C)
        loss_id = instance_loss(s, y, self.temperature)
        loss_sqrt = sqrt_kl(s, self.sqrt_temperature)
        loss = loss_id + self.sqrt_weight * loss_sqrt if self.sqrt_weight > 0 else loss_id
        p = F.softmax(s.detach() / self.temperature, dim=1)  # (B, C)
        if self.training:
            self._pending = (index, cols, z.detach(), p, y)
        hit = (s.detach().argmax(1) == torch.arange(len(index), device=s.device)).float().mean()
        return {"loss": loss, "id": loss_id.detach(), "sqrt": loss_sqrt.detach(), "p_pos": p.diagonal().mean(), "acc": hit}

    @torch.no_grad()
    def update_bank(self) -> None:
        """Apply the bank update of the last training forward (once; a no-op when there is none).

        Book section: *Efficient SSL* "Two ways to update the bank".
        """
        if self._pending is None:
            return
        index, cols, z, p, y = self._pending
        self._pending = None
        if self.update == "momentum":
            self.bank.momentum_update_(index, z, self.momentum)
        else:
            self.bank.gradient_update_(cols, z, p, y, self.bank_step)

    def on_step(self, step: int, total_steps: int) -> None:
        """Called by the training loop after every optimizer step: the bank update."""
        self.update_bank()

    @torch.no_grad()
    def calibrate_(self, images: torch.Tensor, batch_size: int = 256, transform=None) -> None:
        """Feature calibration: fill the bank with one pass of the (untrained) network,
        :math:`w_i = \\mathrm{normalize}(g(f(x_i)))`.

        As in the released code the pass runs in training mode (batch-norm batch statistics) without
        gradients; batch-norm running statistics are restored afterwards. ``transform`` (e.g. the
        training augmentation) is applied to each batch first. ``images``: ``(N, C, H, W)``, row ``i``
        of the bank gets image ``i``. Book section: *Efficient SSL* "Feature calibration".
        """
        if not torch.is_tensor(images) or images.ndim != 4:
            raise ValueError(f"images must be (N, C, H, W), got {getattr(images, 'shape', type(images))}")
        if len(images) != len(self.bank):
            raise ValueError(f"calibration needs one image per bank row: got {len(images)} images for {len(self.bank)} rows")
        if batch_size < 2:
            raise ValueError(f"batch_size must be >= 2 (batch statistics), got {batch_size}")
        saved = {k: v.clone() for k, v in self.named_buffers() if not k.startswith("bank.")}
        was_training = self.training
        self.train()
        device = self.bank.weight.device
        try:
            for start in range(0, len(images), batch_size):
                x = images[start:start + batch_size].to(device)
                if len(x) < 2:  # a last batch of one cannot use batch statistics: join it to the previous
                    x = images[start - 1:start + 1].to(device)
                    start -= 1
                if transform is not None:
                    x = transform(x)
                idx = torch.arange(start, start + len(x), device=device)
                self.bank.set_(idx, self.embed(x))
        finally:
            self.load_state_dict({**self.state_dict(), **saved})
            self.train(was_training)
