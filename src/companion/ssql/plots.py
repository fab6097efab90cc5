"""Figures of the SSQL chapter: what a bit-width does to weights, activations and accuracy.

Book section: *SSQL* "What quantization does to a network" (the explorable figure).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..quant import QuantizedModel, compare_activations, sqnr_db, weight_grid, weight_scale
from ..quant.fake_quant import fake_quant_weight
from ..runtime import torch_threads
from ..viz import PALETTE
from .evaluate import pair_name

COLORS = {"simsiam": PALETTE["baseline"], "ssql": PALETTE["method"], "random": PALETTE["other"]}
LABELS = {"simsiam": "SimSiam", "ssql": "SSQL", "random": "random init"}


def conv_layers(encoder: nn.Module) -> list[str]:
    """Names of the encoder's Conv2d layers, in order."""
    return [n for n, m in encoder.named_modules() if isinstance(m, nn.Conv2d)]


def draw_bits(result, bits: int, *, layer: str | None = None, channel: int = 0, image_index: int = 0,
              feature_point: str | None = None, a_curve: int = 4, calibration: int = 256):
    """One frame of the explorable figure at ``bits`` (weights and activations at ``bits``, first conv 8/8).

    Panels: (a) one output channel's weights of ``layer`` in the SSQL encoder, with the grid at that
    bit-width; (b) SQNR per activation point for every encoder; (c) an input and one feature map,
    full precision vs quantized; (d) kNN accuracy against weight bits at ``a_curve``-bit activations
    (mean over seeds) with the current setting marked. ``result``: :class:`~companion.ssql.SSQLResult`.
    Book section: *SSQL* "What quantization does to a network".
    """
    with torch_threads(1):  # tiny tensors: extra threads only add synchronisation
        return _draw_bits(result, bits, layer, channel, image_index, feature_point, a_curve, calibration)


def _draw_bits(result, bits, layer, channel, image_index, feature_point, a_curve, calibration):
    import matplotlib.pyplot as plt

    encoders = result.encoders
    calib = result.data.train_x[:calibration]
    x = result.data.test_x[:64]
    ssql_encoder = encoders.get("ssql", next(iter(encoders.values())))
    layer = layer or conv_layers(ssql_encoder)[1]  # the first conv is pinned to 8 bits
    fig = plt.figure(figsize=(7.2, 5.2))
    grid = fig.add_gridspec(2, 3, width_ratios=[1.15, 1.15, 1.0], hspace=0.55, wspace=0.38)

    # (a) the weight grid
    ax = fig.add_subplot(grid[0, 0])
    w = dict(ssql_encoder.named_modules())[layer].weight.detach()
    wc = w[channel].flatten()
    s = float(weight_scale(w, bits)[channel])
    qmin, qmax, _ = weight_grid(bits)
    ax.hist(wc.numpy(), bins=40, color=COLORS["ssql"], alpha=0.75)
    for k in range(qmin, qmax + 1):
        ax.axvline(k * s, color="black", lw=0.6, alpha=0.6)
    wq = fake_quant_weight(w, bits)[channel].flatten()
    ax.set_title(f"(a) {layer}[{channel}] weights, {bits}-bit grid\nSQNR {sqnr_db(wc, wq):.1f} dB", fontsize=9.5)
    ax.set_yticks([])

    # (b) SQNR per layer, FP vs quantized activations, for each encoder
    ax = fig.add_subplot(grid[0, 1])
    captured = {}
    for name, enc in encoders.items():
        enc.eval()
        q = QuantizedModel(enc, bits, bits)
        q.calibrate([calib])
        acts = compare_activations(q, x)
        captured[name] = acts
        points = list(acts)
        ax.plot(range(len(points)), [sqnr_db(*acts[p]) for p in points], "o-", ms=3, color=COLORS.get(name),
                label=LABELS.get(name, name))
    ax.set_xticks(range(len(points)))
    ax.set_xticklabels([f"{i + 1}" for i in range(len(points))], fontsize=9.5)
    ax.set_xlabel("activation point (depth)", fontsize=9.5)
    ax.set_ylabel("SQNR (dB)", fontsize=9.5)
    ax.set_title(f"(b) activation SQNR at {pair_name(bits, bits)}", fontsize=9.5)
    ax.legend(fontsize=9.5, frameon=False)

    # (c) an input, a feature map in full precision and quantized (SSQL encoder)
    acts = captured.get("ssql", next(iter(captured.values())))
    point = feature_point or list(acts)[1]
    fp, qa = acts[point]
    sub = grid[0, 2].subgridspec(1, 3, wspace=0.08)
    fmap_c = int(fp[image_index].flatten(1).var(1).argmax())  # the most varied channel of that image
    image = x[image_index].permute(1, 2, 0) if x.shape[1] == 3 else x[image_index, 0]
    panels = [(image, "input"), (fp[image_index, fmap_c], "FP"), (qa[image_index, fmap_c], f"{bits}w{bits}f")]
    vmax = float(fp[image_index, fmap_c].max()) or 1.0
    for i, (img, title) in enumerate(panels):
        a = fig.add_subplot(sub[0, i])
        a.imshow(img.numpy(), cmap="gray", vmin=0, vmax=1 if i == 0 else vmax)
        a.set_title(title, fontsize=9.5)
        a.axis("off")
    fig.text(0.83, 0.94, f"(c) feature map at {point}", ha="center", fontsize=9.5)

    # (d) accuracy against weight bits
    ax = fig.add_subplot(grid[1, :])
    ws = [w_ for w_ in result.config.grid_w]
    xs = np.arange(len(ws))
    for name in result.metrics["mean"]:
        for a_bits, style in ((a_curve, "-"), (0, ":")):
            ys = [result.value(name, "knn", pair_name(w_, a_bits)) for w_ in ws]
            if any(y is None for y in ys):
                continue
            label = LABELS.get(name, name) if a_bits == a_curve else None
            ax.plot(xs, ys, style, marker="o", ms=3, color=COLORS.get(name), label=label)
    if bits in ws:
        ax.axvline(ws.index(bits), color="black", lw=0.8, alpha=0.5)
    ax.set_xticks(xs)
    ax.set_xticklabels(["FP" if w_ == 0 else f"{w_}" for w_ in ws])
    ax.set_xlabel("weight bits", fontsize=9.5)
    ax.set_ylabel("kNN accuracy (%)", fontsize=9.5)
    ax.set_title(f"(d) kNN accuracy after PTQ, mean of {len(result.config.seeds)} seeds "
                 f"(solid: {a_curve}-bit activations, dotted: FP activations)", fontsize=9.5)
    ax.legend(fontsize=9.5, frameon=False, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return fig


def draw_branch_losses(result, method: str = "ssql"):
    """The SSQL run's full-precision and quantized-branch losses per step, coloured by the step's weight bits.

    Book section: *SSQL* "Quick run".
    """
    import matplotlib.pyplot as plt

    h = result.histories[method]
    steps = np.array([e["step"] for e in h])
    fp = np.array([e["loss_fp"] for e in h])
    q = np.array([e["loss_q"] for e in h])
    wb = np.array([e["w_bits"] for e in h])
    fig, axes = plt.subplots(1, 2, figsize=(7.2, 2.4))
    axes[0].plot(steps, fp, color=PALETTE["baseline"], lw=1, label=r"$\mathcal{L}_{FP}$")
    axes[0].plot(steps, q, color=PALETTE["method"], lw=1, alpha=0.8, label=r"$\mathcal{L}_{Q}$")
    axes[0].set_xlabel("step")
    axes[0].set_ylabel("loss")
    axes[0].legend(frameon=False, fontsize=9.5)
    axes[0].set_title("the two halves of the SSQL loss", fontsize=9.5)
    sc = axes[1].scatter(steps, q - fp, c=wb, cmap="viridis", s=8)
    axes[1].axhline(0, color="black", lw=0.6)
    axes[1].set_xlabel("step")
    axes[1].set_ylabel(r"$\mathcal{L}_{Q} - \mathcal{L}_{FP}$")
    axes[1].set_title("extra loss of the quantized branch", fontsize=9.5)
    fig.colorbar(sc, ax=axes[1], label="weight bits")
    fig.tight_layout()
    return fig


def branch_losses_alt(result, method: str = "ssql") -> str:
    """Alt text of :func:`draw_branch_losses`, written from the same history the figure plots."""
    h = result.histories[method]
    fp = [e["loss_fp"] for e in h]
    q = [e["loss_q"] for e in h]
    gap = branch_gap(result, method)
    gaps = ", ".join(f"{b} bits {v:+.3f}" for b, v in gap.items())
    return (f"Two panels over the {len(h)} logged steps of the first seed's SSQL pretraining. Left: line plots "
            f"of the full-precision loss (from {fp[0]:.2f} to {fp[-1]:.2f}) and the quantized-branch loss (from "
            f"{q[0]:.2f} to {q[-1]:.2f}). Right: a scatter of the quantized-minus-full-precision loss at each "
            f"step, coloured by the drawn weight bit-width; mean gap per weight bit-width: {gaps}.")


@torch.no_grad()
def branch_gap(result, method: str = "ssql") -> dict[int, float]:
    """Mean of ``loss_q - loss_fp`` over the steps that drew each weight bit-width (seed 0's run)."""
    h = result.histories[method]
    out: dict[int, list[float]] = {}
    for e in h:
        out.setdefault(int(e["w_bits"]), []).append(e["loss_q"] - e["loss_fp"])
    return {k: float(np.mean(v)) for k, v in sorted(out.items())}
