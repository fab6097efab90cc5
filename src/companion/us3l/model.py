r"""US3L: one self-supervised network for every width, and the naive slimmable baseline.

Per step, with widths :math:`w_1 = 1 > w_2 > \dots` from the sandwich rule:

- **full width** against a momentum teacher :math:`\xi` kept at full width (guideline: a temporally
  consistent target), contrastive across views with the released code's ``InfoNCEv2_distill``, an
  NT-Xent over the :math:`2B \times 2B` similarities of :math:`[z; \mathrm{sg}(t)]`:
  :math:`\mathcal{L}_1 = \tfrac12[\mathrm{NTXent}(z^{(1)}_1, t_2) + \mathrm{NTXent}(z^{(1)}_2, t_1)]`;
- **each smaller width** only distils the teacher's targets through an auxiliary predictor :math:`h`
  used by sub-networks alone:
  :math:`\mathcal{L}_w = -\tfrac12[\cos(h(z^{(w)}_1), t_2) + \cos(h(z^{(w)}_2), t_1)]`;
- plus group regularization in place of weight decay, once per trained width (the released code
  adds it to every width's loss), over the encoder, the projector and, for sub-networks, the
  auxiliary head.

The naive baseline **as released** (``mode="naive"``, the released code's
``us_resnet18_simclr_cifar.yaml``): the full width gets the plain SimCLR loss on its two views; each
smaller width passes its embedding through the auxiliary predictor and distils the full width's
detached embeddings of the same batch (cross-view negative cosine), with no momentum teacher and no
dynamic sampling (the experiment builds it with ``dynamic=False``). ``mode="naive_simclr"``, this
book's earlier baseline, gives every width the plain SimCLR loss on its own two views instead:
sub-networks then chase targets that move with the network they share weights with. The baselines
(and a network trained alone) get the released code's weight decay 1e-4, written here as the same
per-width penalty :math:`\lambda\lVert\theta\rVert^2` with :math:`\lambda = 5\cdot10^{-5}` and no
grouping, so that every mode is regularized alike. ``momentum=0`` makes the teacher the online
network itself (its detached outputs): US3L without the momentum teacher.

This library sums the losses of all widths and takes **one** optimizer step per batch (the sandwich
rule of US-Nets), where the released code steps once per width; the chapter says why.

Book section: *US3L* "Three guidelines".
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ..slimmable import SlimmableLinear, SlimmableResNet, check_width, set_width
from ..ssl.ema import ema_update_
from ..ssl.heads import predictor
from ..ssl.losses import negative_cosine, nt_xent
from .schedule import check_group_alpha, group_regularization, regularization_alpha, sample_widths

MODES = ("us3l", "naive", "naive_simclr", "fixed")


class SlimProjector(nn.Module):
    """A projector whose first layer reads however many features the slimmed encoder gives.

    ``layers`` linear layers, (Linear, BN, ReLU) before each but the last: 3 as the released code's
    ``encoder_q.fc`` (a slimmable first layer, then hidden-to-hidden, then hidden-to-``out_dim``)."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int, layers: int = 3):
        super().__init__()
        if isinstance(layers, bool) or not isinstance(layers, int) or layers < 2:
            raise ValueError(f"layers must be an integer >= 2 (the projector's linear layers), got {layers!r}")
        self.first = SlimmableLinear(in_dim, hidden, slim_out=False)
        rest: list[nn.Module] = []
        for _ in range(layers - 2):
            rest += [nn.BatchNorm1d(hidden), nn.ReLU(inplace=True), nn.Linear(hidden, hidden)]
        self.rest = nn.Sequential(*rest, nn.BatchNorm1d(hidden), nn.ReLU(inplace=True), nn.Linear(hidden, out_dim))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.rest(self.first(h))  # (N, c(w)) -> (N, out_dim)


class SlimmableSSL(nn.Module):
    r"""Slimmable self-supervised training in one of three modes.

    ``mode="us3l"``: momentum teacher, auxiliary distillation head, sandwich widths, group regularization.
    ``mode="naive"``: the released naive baseline: SimCLR at full width; smaller widths distil the full
    width's detached embeddings through the auxiliary head (no teacher).
    ``mode="naive_simclr"``: the same widths, each with the plain SimCLR loss (no teacher, no head).
    ``mode="fixed"``: a single width ``fixed_width`` with the plain SimCLR loss (a network trained
    separately for that width).
    ``reg_lambda``: :math:`\lambda` of the penalty every mode adds per trained width (5e-5, i.e.
    weight decay 1e-4); ``reg_alpha``: the grouping of US3L's (0 for the other modes).
    ``projector_layers``: linear layers of the projector (3, the released code's).
    ``forward(v1, v2) -> dict(loss=..., ...)`` and ``on_step(step, total)`` fit
    :func:`companion.ssl.pretrain.pretrain`.
    """

    def __init__(self, encoder: SlimmableResNet, total_steps: int, mode: str = "us3l", dim: int = 64, hidden: int = 256,
                 temperature: float = 0.5, momentum: float = 0.99, n_widths: int = 3, dynamic: bool = True,
                 phases: int = 4, reg_lambda: float = 5e-5, reg_alpha: float = 0.05, reg_bins: int = 8,
                 fixed_width: float | None = None, seed: int = 0, projector_layers: int = 3):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if mode == "fixed":
            if fixed_width is None:
                raise ValueError("mode='fixed' needs fixed_width")
            check_width(fixed_width)
        if total_steps <= 0:
            raise ValueError(f"total_steps must be positive, got {total_steps}")
        if isinstance(reg_bins, bool) or not isinstance(reg_bins, int) or reg_bins < 1:
            raise ValueError(f"reg_bins must be a positive integer, got {reg_bins!r}")
        check_group_alpha(reg_alpha, reg_bins)
        if isinstance(reg_lambda, bool) or not isinstance(reg_lambda, (int, float)) or not reg_lambda >= 0:
            raise ValueError(f"reg_lambda must be a number >= 0, got {reg_lambda!r}")
        if not (isinstance(momentum, (int, float)) and 0 <= momentum < 1):
            raise ValueError(f"momentum must be in [0, 1) (0: the online network is the teacher), got {momentum!r}")
        if not (isinstance(temperature, (int, float)) and temperature > 0):
            raise ValueError(f"temperature must be positive, got {temperature!r}")
        if mode != "fixed" and (isinstance(n_widths, bool) or not isinstance(n_widths, int) or n_widths < 2):
            raise ValueError(f"the sandwich rule needs n_widths >= 2, got {n_widths!r}")
        self.encoder, self.mode = encoder, mode
        self.projector = SlimProjector(encoder.feature_dim, hidden, dim, projector_layers)
        self.temperature, self.momentum = temperature, momentum
        self.total, self.n_widths, self.dynamic, self.phases = total_steps, n_widths, dynamic, phases
        self.reg_lambda, self.reg_alpha, self.reg_bins = reg_lambda, reg_alpha, reg_bins
        self.fixed_width, self.seed = fixed_width, seed
        self.register_buffer("step", torch.zeros((), dtype=torch.long))  # saved with checkpoints: resume samples alike
        if mode in ("us3l", "naive"):  # the released code's predictor, used by sub-networks only
            self.aux_predictor = predictor(dim, hidden, dim)
        if mode == "us3l":
            self.teacher = nn.ModuleDict({"encoder": copy.deepcopy(encoder), "projector": copy.deepcopy(self.projector)})
            for p in self.teacher.parameters():
                p.requires_grad_(False)

    def widths(self) -> list[float]:
        step = int(self.step)
        if self.mode == "fixed":
            return [self.fixed_width]
        return sample_widths(min(step, self.total - 1), self.total, self.n_widths, self.seed, self.phases, self.dynamic)

    def embed(self, x: torch.Tensor, width: float) -> torch.Tensor:
        set_width(self.encoder, width)
        return self.projector(self.encoder(x))

    @torch.no_grad()
    def _targets(self, v1, v2):
        self.teacher.train()  # batch statistics, as in the online network during SSL training
        set_width(self.teacher["encoder"], 1.0)
        t = [nn.functional.normalize(self.teacher["projector"](self.teacher["encoder"](v)), dim=1) for v in (v1, v2)]
        return t

    def forward(self, v1: torch.Tensor, v2: torch.Tensor) -> dict:
        widths = self.widths()
        logs = {}
        total = v1.new_zeros(())
        if self.mode == "us3l":
            t1, t2 = self._targets(v1, v2)
            for i, w in enumerate(widths):
                z1, z2 = self.embed(v1, w), self.embed(v2, w)
                if i == 0:  # full width: NT-Xent over [z; sg(t)], across views (InfoNCEv2_distill)
                    loss = 0.5 * (nt_xent(z1, t2, self.temperature) + nt_xent(z2, t1, self.temperature))
                else:  # sub-networks: distil the teacher through the auxiliary head
                    p1, p2 = self.aux_predictor(z1), self.aux_predictor(z2)
                    loss = 0.5 * (negative_cosine(p1, t2) + negative_cosine(p2, t1))
                logs[f"loss_w{w:.2f}"] = loss.detach()
                total = total + loss
        elif self.mode == "naive":
            for i, w in enumerate(widths):
                z1, z2 = self.embed(v1, w), self.embed(v2, w)
                if i == 0:  # full width: plain SimCLR; its detached embeddings are the sub-networks' targets
                    loss = nt_xent(z1, z2, self.temperature)
                    t1, t2 = z1.detach(), z2.detach()
                else:  # sub-networks: distil this batch's full-width embeddings (CosineSimilarity, cross-view)
                    p1, p2 = self.aux_predictor(z1), self.aux_predictor(z2)
                    loss = 0.5 * (negative_cosine(p1, t2) + negative_cosine(p2, t1))
                logs[f"loss_w{w:.2f}"] = loss.detach()
                total = total + loss
        else:
            for w in widths:
                loss = nt_xent(self.embed(v1, w), self.embed(v2, w), self.temperature)
                logs[f"loss_w{w:.2f}"] = loss.detach()
                total = total + loss
        if self.reg_lambda > 0:
            reg = self.regularization(widths)
            total = total + reg
            logs["reg"] = reg.detach()
        set_width(self.encoder, 1.0)
        logs["loss"] = total
        logs["n_widths"] = float(len(widths))
        return logs

    def regularization(self, widths: list[float]) -> torch.Tensor:
        r""":math:`\sum_w R_w`, the released code's penalty added to each trained width's loss: the
        encoder and projector every time, the auxiliary head only for sub-networks (:math:`w < 1`)."""
        alpha_t = regularization_alpha(min(int(self.step), self.total - 1), self.total, self.reg_alpha)
        lam, bins = self.reg_lambda, self.reg_bins
        online = group_regularization(self.encoder, lam, alpha_t, bins) + group_regularization(
            self.projector, lam, alpha_t, bins)
        reg = online * len(widths)
        students = sum(1 for w in widths if w < 1.0)
        if hasattr(self, "aux_predictor") and students:
            reg = reg + students * group_regularization(self.aux_predictor, lam, alpha_t, bins)
        return reg

    @torch.no_grad()
    def on_step(self, step: int, total_steps: int) -> None:
        """After each optimizer step: advance the width schedule; move the teacher towards the online net."""
        self.step.fill_(step + 1)
        if self.mode == "us3l":
            ema_update_(self.teacher["encoder"], self.encoder, self.momentum)
            ema_update_(self.teacher["projector"], self.projector, self.momentum)
