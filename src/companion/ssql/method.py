r"""The SSQL training step: SimSiam plus a randomly quantized branch of the *same* weights.

For two augmented views $x_1, x_2$, with $f$ = encoder + projector, $h$ = predictor,
$f_q$ = the same $f$ fake-quantized at a bit-width pair drawn afresh every step, and
$\mathcal D(p, z) = -\cos(p, \mathrm{sg}(z))$:

$$z_i = f(x_i),\quad p_i = h(z_i),\qquad z^q_i = f_q(x_i),\quad p^q_i = h(z^q_i)$$

$$\mathcal L_{\mathrm{FP}} = \tfrac12\big[\mathcal D(p_1, z_2) + \mathcal D(p_2, z_1)\big],\qquad
  \mathcal L_{\mathrm Q} = \tfrac12\big[\mathcal D(p^q_1, z_2) + \mathcal D(p^q_2, z_1)\big]$$

$$\mathcal L_{\mathrm{SSQL}} = \tfrac12\big(\mathcal L_{\mathrm{FP}} + \mathcal L_{\mathrm Q}\big)$$

The quantized prediction of one view must match the full-precision projection of the other view:
the full-precision branch is the (stop-gradient) teacher of its own quantized self. The predictor is
shared and never quantized; the projector's linears are quantized to 8-bit weights with no activation
quantization; the first conv is pinned to 8/8 (the SSQL code's bit configuration).

Book section: *SSQL* "The SimSiam loss with a quantized branch".
"""

from __future__ import annotations

import torch
from torch import nn

from ..quant import BitSampler, QuantizedModel, check_bits, check_weight_bits
from ..ssl.losses import negative_cosine, simsiam_loss
from ..ssl.methods import SimSiam

#: the SSQL code's per-step bit ranges (numpy ``arange(2, 9)`` and ``arange(4, 9)``: upper ends inclusive here)
W_RANGE = (2, 8)
A_RANGE = (4, 8)
#: projector linears: 8-bit weights, no activation quantization
PROJECTOR_BITS = (8, 0)


def _std(z: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(z.detach().float(), dim=1).std(0).mean()


class SSQL(SimSiam):
    r"""SimSiam with a quantized branch (SSQL): ``forward(v1, v2) -> {"loss", "loss_fp", "loss_q", ...}``.

    Built exactly like :class:`companion.ssl.SimSiam` (same heads, same initialization for the same
    seed), plus a :class:`~companion.quant.BitSampler` whose generator state is a buffer (it is saved
    in checkpoints). ``w_range``/``a_range``: inclusive ranges the per-step bits are drawn from.
    ``bits``: a fixed ``(w, a)`` pair instead of sampling (for analysis).
    Book section: *SSQL* "The SimSiam loss with a quantized branch".
    """

    def __init__(self, encoder: nn.Module, proj_dim: int = 2048, pred_dim: int = 512, proj_layers: int = 3, *,
                 w_range: tuple[int, int] = W_RANGE, a_range: tuple[int, int] = A_RANGE,
                 projector_bits: tuple[int, int] = PROJECTOR_BITS, first: tuple[int, int] | None = (8, 8),
                 convention: str = "ssql", bits: tuple[int, int] | None = None, seed: int = 0):
        super().__init__(encoder, proj_dim=proj_dim, pred_dim=pred_dim, proj_layers=proj_layers)
        self.sampler = BitSampler(w_range, a_range, seed=seed)
        self.projector_bits = (check_weight_bits(projector_bits[0], "projector w_bits"),
                               check_bits(projector_bits[1], "projector a_bits"))
        self.first = first
        self.convention = convention
        self.fixed_bits = None if bits is None else (check_weight_bits(bits[0], "w_bits"),
                                                     check_bits(bits[1], "a_bits"))
        self.quantized(4, 4)  # refuse unsupported encoders now, not at the first step

    def quantized(self, w_bits, a_bits) -> QuantizedModel:
        """$f_q$: encoder + projector at ``(w_bits, a_bits)``, sharing this module's weights.

        Built on the fly (cheap) so that it is not a second registered copy of the modules.
        """
        f = nn.Sequential(self.encoder, self.projector)  # "0" = encoder, "1" = projector
        return QuantizedModel(f, w_bits, a_bits, convention=self.convention, first=self.first,
                              overrides={"1": self.projector_bits})

    def forward(self, v1: torch.Tensor, v2: torch.Tensor) -> dict:
        w_bits, a_bits = self.fixed_bits if self.fixed_bits is not None else self.sampler()
        fq = self.quantized(w_bits, a_bits)
        # 1. full-precision pass; activation ranges are observed on both views (reset every step)
        with fq.observing(reset=True):
            z1, z2 = fq.model(v1), fq.model(v2)  # (N, proj_dim)
        p1, p2 = self.predictor(z1), self.predictor(z2)
        loss_fp = simsiam_loss(p1, p2, z1, z2)
        # 2. quantized pass with the same weights and the ranges just observed
        zq1, zq2 = fq.map([v1, v2])  # (N, proj_dim) each; weights quantized once for both views
        pq1, pq2 = self.predictor(zq1), self.predictor(zq2)
        # 3. quantized predictions against the other view's full-precision (stop-gradient) targets
        loss_q = 0.5 * (negative_cosine(pq1, z2) + negative_cosine(pq2, z1))
        loss = 0.5 * (loss_fp + loss_q)
        return {"loss": loss, "loss_fp": loss_fp.detach(), "loss_q": loss_q.detach(),
                "w_bits": float(w_bits), "a_bits": float(a_bits), "std": _std(z1)}
