"""Figures for the Tobias chapter: heat maps and boxes, the explorable map, the swap grid, size breakdown.

Each function returns a matplotlib figure; the chapter shows them and ``viz.explore`` animates
:func:`explore_frame`. Book section: *Tobias* (all figures).
"""

from __future__ import annotations

from functools import lru_cache

import matplotlib.pyplot as plt
import numpy as np
import torch

from .. import viz
from ..backbones import STAGES, conv_trunk
from ..data import load_photo
from .localize import activation_map, boxes_from_maps, localize, normalize_map, upsample_masks
from .metrics import SIZE_BINS
from .scenes import off_centre_scenes
from .swap import foreground_cells

#: What the explorable figure shows: one photo and one synthetic scene.
EXPLORE_PHOTO = "chelsea"
EXPLORE_SIZE = 160


def heatmap_boxes(images, result, titles=None, truth=None, size: float = 1.7):
    """One column per image: top, the image with the random CNN's box (and ground truth when given);
    bottom, the [0, 1] heat map over the image with the kept component's outline."""
    n = len(images)
    fig, axes = plt.subplots(2, n, figsize=(size * n, 2 * size + 0.3), squeeze=False)
    heat = result.heatmaps()
    masks = result.pixel_masks()
    for i in range(n):
        top, bottom = axes[0, i], axes[1, i]
        top.imshow(viz.to_numpy_image(images[i]))
        top.axis("off")
        if truth is not None:
            viz.draw_boxes(top, truth[i], color=viz.PALETTE["truth"], label="ground truth" if i == 0 else None)
        viz.draw_boxes(top, result.boxes[i], color=viz.PALETTE["method"], label="random CNN" if i == 0 else None)
        if titles:
            top.set_title(titles[i], fontsize=8)
        viz.overlay_heatmap(bottom, images[i], heat[i], alpha=0.55)
        bottom.contour(masks[i].numpy().astype(float), levels=[0.5], colors="white", linewidths=1.0)
    handles = [h for h in axes[0, 0].patches if h.get_label() and not h.get_label().startswith("_")]
    if handles:
        fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False,
                   bbox_to_anchor=(0.5, -0.01))
    fig.tight_layout(rect=(0, 0.04 if handles else 0, 1, 1))
    return fig


def _earlier_stage(arch: str) -> str:
    stages = list(STAGES[arch])
    return stages[-2]


@lru_cache(maxsize=32)
def _explore_maps(arch: str, init: str, seed: int) -> dict:
    """Maps of the explore images at the last stage and one stage earlier, from one network.

    The trunk cut one stage earlier is the same network minus its last module (for VGG16, the last
    max-pool), so one build serves both depths.
    """
    images = _explore_images()
    trunk = conv_trunk(arch, None, init=init, seed=seed)
    earlier = torch.nn.Sequential(*list(trunk.children())[:-1]).eval()
    earlier.stride = STAGES[arch][_earlier_stage(arch)]
    return {"last": activation_map(trunk, images), "earlier": activation_map(earlier, images)}


@lru_cache(maxsize=1)
def _explore_images() -> torch.Tensor:
    photo = load_photo(EXPLORE_PHOTO, EXPLORE_SIZE)
    scene = off_centre_scenes(12, EXPLORE_SIZE, int(EXPLORE_SIZE * 1.4), seed=3, classes=8, scale=(0.25, 0.5))
    return torch.stack([photo, scene.images[3]])


def explore_frame(arch: str = "resnet50", init: str = "default", depth: str = "last", seed: int = 0,
                  threshold: float = 1.0):
    """The explorable figure: heat map, kept component (white outline) and box on a photo and on a
    synthetic scene for one setting of architecture, initialization, truncation depth, seed and
    threshold (a multiple of the map's mean)."""
    images = _explore_images()
    maps = _explore_maps(arch, init, seed)[depth]
    boxes, kept = boxes_from_maps(maps, images.shape[-2:], threshold)
    masks = upsample_masks(kept, images.shape[-2:])
    stage = list(STAGES[arch])[-1] if depth == "last" else _earlier_stage(arch)
    fig, axes = plt.subplots(1, 2, figsize=(4.6, 2.7))
    for k, ax in enumerate(axes):
        viz.overlay_heatmap(ax, images[k], normalize_map(maps[k]), alpha=0.45)
        ax.contour(masks[k].numpy().astype(float), levels=[0.5], colors="white", linewidths=1.0)
        viz.draw_boxes(ax, boxes[k], color=viz.PALETTE["method"])
        ax.set_title(f"{maps.shape[-2]}x{maps.shape[-1]} map", fontsize=8)
    fig.suptitle(f"random {arch}, {init} init, seed {seed}, cut after {stage}; cells > {threshold:g} x mean", fontsize=8)
    fig.tight_layout()
    return fig


def swap_grid(images, scores, swapped, partners, names=None, partner_names=None, size: float = 1.5):
    """Rows: image A with its foreground cells outlined, its partner B, and the swapped query view.

    ``images``, ``swapped``, ``partners``: ``(n, 3, H, W)``; ``scores``: A's ``(n, g, g)`` cell scores.
    """
    n = len(images)
    grid = scores.shape[-1]
    fg = foreground_cells(scores).view(n, grid, grid)
    fig, axes = plt.subplots(n, 3, figsize=(3 * size, n * size + 0.3), squeeze=False)
    for i in range(n):
        h, w = images[i].shape[-2:]
        ax = axes[i, 0]
        ax.imshow(viz.to_numpy_image(images[i]))
        for r in range(grid):
            for c in range(grid):
                if fg[i, r, c]:
                    ax.add_patch(plt.Rectangle((c * w / grid - 0.5, r * h / grid - 0.5), w / grid, h / grid,
                                               fill=False, edgecolor=viz.PALETTE["method"], linewidth=1.2))
        axes[i, 1].imshow(viz.to_numpy_image(partners[i]))
        axes[i, 2].imshow(viz.to_numpy_image(swapped[i]))
        for ax in axes[i]:
            ax.axis("off")
        axes[i, 0].set_title(f"A{': ' + names[i] if names else ''}, foreground", fontsize=8)
        axes[i, 1].set_title(f"B{': ' + partner_names[i] if partner_names else ''}", fontsize=8)
        axes[i, 2].set_title("query view", fontsize=8)
    fig.tight_layout()
    return fig


def size_breakdown(loc_metrics: dict):
    """Mean IoU by object size: random CNN (mean over seeds) vs the best centred box and the whole image."""
    rows = loc_metrics["by_size"]
    names = [name for name, _, _ in SIZE_BINS if name in rows]
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(5.0, 2.6))
    series = [("random CNN", "random_cnn_miou", viz.PALETTE["method"]),
              ("centred box (best size)", "centred_miou", viz.PALETTE["baseline"]),
              ("whole image", "whole_miou", viz.PALETTE["other"])]
    for k, (label, key, color) in enumerate(series):
        ax.bar(x + (k - 1) * 0.27, [rows[n][key] for n in names], width=0.27, label=label, color=color)
    ax.set_xticks(x, [f"{n}\n(n={rows[n]['n']})" for n in names])
    ax.set_ylabel("mean IoU (%)")
    ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return fig


def scene_examples(n: int = 6, arch: str = "resnet18", stage: str | None = None, seed: int = 0, size: int = 112,
                   canvas: int = 160, scene_seed: int = 0, layer4_stride: int = 1, **scene_kwargs):
    """A few quick-run-style scenes with ground-truth and random-CNN boxes and heat maps."""
    scenes = off_centre_scenes(n, size, canvas, seed=scene_seed, **scene_kwargs)
    trunk = conv_trunk(arch, stage, seed=seed, layer4_stride=layer4_stride)
    result = localize(trunk, scenes.images)
    return heatmap_boxes(scenes.images, result, truth=scenes.boxes)


def digit_scenes_figure(n: int = 8, size: int = 16, seed: int = 0):
    """Digit scenes of the SSL run as the encoder sees them (grey, ``size`` px, drawn pixel for pixel)
    above the digit's ink alone (its mask), titled with the digit and the background style, so a reader
    can find a digit that is hard to read at this size."""
    from .scenes import digit_scenes

    if not isinstance(n, int) or not 1 <= n <= 12:
        raise ValueError(f"n must be an integer from 1 to 12 (one column per scene), got {n!r}")
    scenes = digit_scenes(n, size, seed=seed)
    fig, axes = plt.subplots(2, n, figsize=(viz.FIG_WIDTH, 2.3), squeeze=False)
    for i in range(n):
        top, bottom = axes[0, i], axes[1, i]
        top.imshow(scenes.images[i].mean(0).numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        top.set_title(f"{int(scenes.labels[i])}, style {int(scenes.backgrounds[i])}", fontsize=viz.MIN_FONT_PT)
        bottom.imshow(scenes.masks[i].numpy(), cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
        for ax in (top, bottom):
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_ylabel("scene", fontsize=viz.MIN_FONT_PT)
    axes[1, 0].set_ylabel("its ink", fontsize=viz.MIN_FONT_PT)
    return fig


# ------------------------------------------------------------------------------------------ tables


def _pm(summary: dict, key: str) -> str:
    """Mean ± std over seeds; the mean alone when there is one seed (its "std" of 0 says nothing)."""
    if len(summary.get("per_seed", ())) == 1:
        return f"{summary[f'{key}_mean']:.1f}"
    return f"{summary[f'{key}_mean']:.1f} ± {summary[f'{key}_std']:.1f}"


def localization_table(loc: dict, what: str = "random CNN") -> str:
    """Markdown: CorLoc and mean IoU (mean ± std over the seeds, each its own network and scene set)
    of the random CNN, torchvision's stride-32 network when measured, and the three baselines; then
    the same on scenes framed by ``make_scenes`` (objects centred)."""
    cnn, n_seeds = loc["random_cnn"], len(loc["random_cnn"]["per_seed"])
    fr = sorted(set(loc["centred"]["fraction_per_seed"]))
    sizes = "/".join(f"{f:.2f}" for f in fr)
    grid = f", {cnn['grid']}x{cnn['grid']} map" if "grid" in cnn else ""
    lines = [
        f"| boxes (mean ± std over {n_seeds} seeds) | CorLoc (%) | mean IoU (%) |",
        "|---|---|---|",
        f"| {what}{grid} | {_pm(cnn, 'corloc')} | {_pm(cnn, 'miou')} |",
    ]
    if "torchvision" in loc:
        tv = loc["torchvision"]
        k = len(tv["per_seed"])
        lines.append(f"| the same, torchvision's layer4 at stride 2 ({tv['grid']}x{tv['grid']} map), first {k} "
                     f"set{'s' if k > 1 else ''} | {_pm(tv, 'corloc')} | {_pm(tv, 'miou')} |")
    lines += [
        f"| centred box, best size ({sizes} of each side, tuned on each set) | {_pm(loc['centred'], 'corloc')} "
        f"| {_pm(loc['centred'], 'miou')} |",
        f"| whole image | {_pm(loc['whole'], 'corloc')} | {_pm(loc['whole'], 'miou')} |",
        f"| random box | {_pm(loc['random'], 'corloc')} | {_pm(loc['random'], 'miou')} |",
    ]
    if "framed" in loc:
        f = loc["framed"]
        k = len(f["random_cnn"]["per_seed"])
        lines += [
            "",
            "Scenes framed by `make_scenes` (large objects centred), same object sizes in pixels:",
            "",
            "| boxes | CorLoc (%) | mean IoU (%) |",
            "|---|---|---|",
            f"| {what}, {k} seed{'s' if k > 1 else ''} | {f['random_cnn']['corloc_mean']:.1f} "
            f"| {f['random_cnn']['miou_mean']:.1f} |",
            f"| centred box, best size ({f['centred']['fraction']:.2f}) | {f['centred']['corloc']:.1f} "
            f"| {f['centred']['miou']:.1f} |",
            f"| whole image | {f['whole']['corloc']:.1f} | {f['whole']['miou']:.1f} |",
        ]
    return "\n".join(lines)


def photo_table(photos: dict) -> str:
    """Markdown: IoU with the hand-drawn box per photo (random CNN: mean over seeds), then CorLoc and
    mean IoU, for the random CNN, the whole image and the best centred box."""
    names = photos["photos"]
    k = len(photos["random_cnn"]["per_seed"])
    head = "| boxes | " + " | ".join(names) + " | CorLoc (%) | mean IoU (%) |"
    lines = [head, "|---|" + "---|" * (len(names) + 2)]
    rows = [(f"random CNN (mean of {k} seed{'s' if k > 1 else ''})", photos["random_cnn"], "corloc_mean", "miou_mean"),
            ("whole image", photos["whole"], "corloc", "miou"),
            (f"centred box, best size ({photos['centred']['fraction']:.2f})", photos["centred"], "corloc", "miou")]
    for label, r, c, m in rows:
        cells = " | ".join(f"{v:.0f}" for v in r["iou_per_photo"])
        lines.append(f"| {label} | {cells} | {r[c]:.1f} | {r[m]:.1f} |")
    area = " | ".join(f"{100 * a:.0f} %" for a in photos["object_area"])
    lines.append(f"| *hand-drawn box's share of the image* | {area} | | |")
    return "\n".join(lines)


def photo_grids(images, truth, names, seed: int = 0, arch: str = "resnet50"):
    """Two rows: the random network's heat map, kept component and box with torchvision's layer4
    (stride 2: a 7x7 map at 224 px) and with the paper's (stride 1: 14x14), same weights, with the
    hand-drawn box in green."""
    n = len(images)
    fig, axes = plt.subplots(2, n, figsize=(viz.FIG_WIDTH, 2 * viz.FIG_WIDTH / n + 0.5), squeeze=False)
    for row, stride in enumerate((2, 1)):
        result = localize(conv_trunk(arch, None, seed=seed, layer4_stride=stride), images)
        heat, masks = result.heatmaps(), result.pixel_masks()
        h, w = result.maps.shape[-2:]
        for i in range(n):
            ax = axes[row, i]
            viz.overlay_heatmap(ax, images[i], heat[i], alpha=0.5)
            ax.contour(masks[i].numpy().astype(float), levels=[0.5], colors="white", linewidths=1.0)
            viz.draw_boxes(ax, truth[i], color=viz.PALETTE["truth"])
            viz.draw_boxes(ax, result.boxes[i], color=viz.PALETTE["method"])
            ax.axis("off")
            if row == 0:
                ax.set_title(names[i])
        axes[row, 0].text(-0.08, 0.5, f"{h}x{w}", transform=axes[row, 0].transAxes, rotation=90,
                          va="center", ha="right")
    fig.tight_layout()
    return fig


def ssl_table(ssl: dict) -> str:
    """Markdown: kNN, linear and background-kNN accuracy (mean ± std over seeds) of the untrained
    encoder, MoCo v2 and MoCo v2 + Tobias."""
    has_linear = "linear_mean" in ssl["baseline"]
    has_bg = "background_knn_mean" in ssl["baseline"]
    head = "| encoder | kNN (%) |" + (" linear (%) |" if has_linear else "") + (" background kNN (%) |" if has_bg else "")
    lines = [head, "|---|" + "---|" * (head.count("|") - 2)]
    for arm, label in (("untrained", "untrained (its random initial weights)"), ("baseline", "MoCo v2"),
                       ("tobias", f"MoCo v2 + Tobias (p = {ssl['p']:g})")):
        s = ssl[arm]
        k = len(s["per_seed"])
        row = f"| {label}, {k} seed{'s' if k > 1 else ''} | {_pm(s, 'knn')} |"
        row += f" {_pm(s, 'linear')} |" if has_linear else ""
        row += f" {_pm(s, 'background_knn')} |" if has_bg else ""
        lines.append(row)
    return "\n".join(lines)


def cub_table(cub: dict) -> str:
    """Markdown: CorLoc and mean IoU on the CUB-200-2011 test split (full run)."""
    lines = ["| boxes | CorLoc (%) | mean IoU (%) |", "|---|---|---|"]
    for name, row in cub.items():
        if isinstance(row, dict) and "corloc" in row:
            label = name.replace("_", " ")
            if name == "centred":
                label = f"centred box, best size ({row['fraction']:.2f})"
            lines.append(f"| {label} | {row['corloc']:.1f} | {row['miou']:.1f} |")
        elif isinstance(row, dict) and "corloc_mean" in row:
            lines.append(f"| {name.replace('_', ' ')} (mean ± std over seeds) | {_pm(row, 'corloc')} | {_pm(row, 'miou')} |")
    lines.append(f"\n{cub['n_images']} test images, {cub['seconds']:.0f} s.")
    return "\n".join(lines)
