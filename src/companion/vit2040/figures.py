"""Figures of the chapter: crop groups and CutMix, and class-token attention maps to explore.

Book section: *ViT with 2040 images* "Multi-crop and CutMix" and "Where does the class token look?".
"""

from __future__ import annotations

import torch

from .. import viz
from .instance import as_float
from .model import class_token_attention


def draw_crops(image: torch.Tensor, groups: list[torch.Tensor], mixed: torch.Tensor, targets: torch.Tensor,
               n_images: int):
    """One image, its global and local crops (crop ``k`` of image 0 is row ``k * n_images``), and a
    CutMixed global crop titled with its two largest target weights.

    Book section: *ViT with 2040 images* "Multi-crop and CutMix".
    """
    crops = [image]
    titles = ["image"]
    for name, g in zip(("global", "local"), groups):
        for k in range(len(g) // n_images):
            crops.append(g[k * n_images])
            titles.append(f"{name} {k + 1}")
    top = targets[0].topk(2)
    crops.append(mixed[0])
    titles.append(f"{top.values[0]:.2f}·#{int(top.indices[0])}+{top.values[1]:.2f}·#{int(top.indices[1])}")
    return viz.image_grid(crops, titles, ncols=len(crops), size=1.3)


def attention_maps(models: dict, images: torch.Tensor) -> dict[str, torch.Tensor]:
    """``{name: (L, N, heads, g, g)}`` class-token attention of each model on ``images``.

    Book section: *ViT with 2040 images* "Where does the class token look?".
    """
    out = {}
    for name, model in models.items():
        device = next(model.parameters()).device
        out[name] = class_token_attention(model, as_float(images.to(device))).cpu()
    return out


def draw_attention(maps: dict[str, torch.Tensor], images: torch.Tensor, model: str, layer: int, head):
    """Each image with the class token's attention of ``model`` at ``layer`` and ``head`` (or "mean").

    Book section: *ViT with 2040 images* "Where does the class token look?".
    """
    import matplotlib.pyplot as plt

    images = as_float(images.cpu())
    att = maps[model][layer]  # (N, heads, g, g)
    att = att.mean(1) if head == "mean" else att[:, int(head)]
    n = len(images)
    fig, axes = plt.subplots(1, n, figsize=(1.1 * n + 0.9, 1.6))
    layer_img = None
    for i, ax in enumerate(axes):
        layer_img = viz.overlay_heatmap(ax, images[i], att[i], alpha=0.55)
    fig.suptitle(f"{model}: layer {layer + 1}, head {head}")
    fig.tight_layout()
    # each map is min-max scaled to [0, 1] per image: the bar reads "relative attention in this image"
    viz.colorbar(list(axes), layer_img, label="attention\n(per image, 0-1)")
    return fig
