"""The S3L chapter's explorable figure: views at a resolution, what a pixel costs, and accuracy against cost.

Book section: *S3L* "Explore: resolution, cost and accuracy".
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch

from .. import viz
from ..ssl import GPUAugment

#: The schedules in the order the chapter shows them, and their colours.
ORDER = ("low", "full", "multistage", "untrained")
COLOURS = {"low": viz.PALETTE["method"], "full": viz.PALETTE["other"], "multistage": viz.PALETTE["pseudo"],
           "untrained": viz.PALETTE["baseline"]}


def schedules(out: dict) -> dict[str, str]:
    """``{arm: "8 -> 16 px"}`` for every schedule ``run()`` measured, in :data:`ORDER`."""
    arms = out["arms"]
    return {a: " -> ".join(map(str, arms[a]["resolutions"])) + " px" if arms[a]["resolutions"] else "none"
            for a in ORDER if a in arms}


def resolutions(out: dict) -> list[int]:
    """Every resolution some schedule pretrained at, ascending."""
    return sorted({r for a in schedules(out) for r in out["arms"][a]["resolutions"]})


def draw_resolution(out: dict, config, sample: torch.Tensor, resolution: int, measure: str):
    """Left: views of ``sample`` at ``resolution`` as the pretraining's augmentation draws them; middle: the
    MFLOPs of one image at each resolution; right: each schedule's ``measure`` ("kNN" or "fine-tuned")
    accuracy against its pretraining GFLOPs, the schedules that train at ``resolution`` highlighted."""
    arms, names = out["arms"], schedules(out)
    mflops = {int(k[1:]): v for k, v in out["forward_mflops"].items()}  # "r16" -> 16
    augment = GPUAugment(resolution, blur=config.blur, **config.augment)
    generator = torch.Generator().manual_seed(0)
    views = augment(sample.repeat(2, 1, 1, 1), generator=generator)
    # nearest-neighbour upsampling shows the pixels as the network gets them
    big = torch.nn.functional.interpolate(views, size=config.resolution, mode="nearest")
    n = len(sample)
    grid = torch.cat([torch.cat(list(big[i::n]), 1) for i in range(n)], 2)  # 2 rows (views) x n digits
    fig, (ax, bx, cx) = plt.subplots(1, 3, figsize=(viz.FIG_WIDTH, 3.0), layout="constrained",
                                     gridspec_kw={"width_ratios": [1.0, 1, 1.3]})
    img = grid.permute(1, 2, 0).numpy()
    ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray")
    ax.set_title(f"views at {resolution} px")
    ax.axis("off")
    rs = sorted(mflops)
    mf = [mflops[r] for r in rs]
    bx.plot(rs, mf, "o-", color=viz.PALETTE["baseline"])
    bx.plot(rs, [mf[-1] * (r / rs[-1]) ** 2 for r in rs], ":", color="k", lw=0.8, label=r"$\propto r^2$")
    bx.plot([resolution], [mflops[resolution]], "o", ms=10, color=viz.PALETTE["method"])
    bx.set(xscale="log", yscale="log", xlabel="resolution (px)", ylabel="MFLOPs / image",
           title=f"{mflops[resolution]:.2f} MFLOPs")
    bx.minorticks_off()
    bx.set_xticks(rs, [str(r) for r in rs])
    bx.set_yticks(mf, [f"{v:.1f}" for v in mf])
    bx.legend(loc="upper left")
    key = "knn" if measure == "kNN" else "finetune"
    for a, name in names.items():
        on = resolution in arms[a]["resolutions"]
        xy = (arms[a]["pretrain_gflops"], arms[a][key])
        cx.scatter(*xy, s=90 if on else 30, color=COLOURS[a], edgecolor="k" if on else "none", zorder=3)
        cx.annotate(name, xy, xytext=(4, 4), textcoords="offset points")
    cx.set(xlabel="pretraining GFLOPs", ylabel=f"{measure} accuracy (%)", title=f"{measure} at {config.resolution} px")
    cx.margins(0.25)
    return fig


def draw_glyphs(images: torch.Tensor, labels: torch.Tensor, classes, resolutions=(32, 16, 8)):
    """One glyph of each class (columns) at each of ``resolutions`` (rows), resized as the experiment
    resizes (antialiased bilinear) and drawn with nearest-neighbour pixels at the same size on the page,
    so the detail each resolution keeps is what the eye compares. Book section: *S3L* "The testbed"."""
    from .experiment import resize

    picks = [int((labels == c).nonzero()[0, 0]) for c in range(len(classes))]
    cols = len(picks)
    cell = min(0.75, (viz.FIG_WIDTH - 0.6) / cols)  # the row labels take the 0.6 in
    fig, axes = plt.subplots(len(resolutions), cols, figsize=(cell * cols + 0.6, cell * len(resolutions) + 0.3),
                             squeeze=False, layout="constrained")
    for row, r in enumerate(resolutions):
        small = resize(images[picks], r)  # (cols, 1, r, r)
        for col in range(cols):
            ax = axes[row, col]
            ax.imshow(small[col, 0].numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(classes[col])
        axes[row, 0].set_ylabel(f"{r} px")
    return fig
