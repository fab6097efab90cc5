"""Figures of the chapter: crop groups and CutMix, and class-token attention maps to explore.

Book section: *ViT with 2040 images* "Multi-crop and CutMix" and "Where does the class token look?".
"""

from __future__ import annotations

import torch

from .. import viz
from .instance import as_float
from .model import class_token_attention


def cutmix_example(crops: torch.Tensor, n_images: int, tries: int = 100):
    """A CutMix draw on ``crops`` (crop ``k`` of image ``i`` is row ``k * n_images + i``, its target ``i``)
    in which crop 0 got its box from another image, so that the figure shows two images in one crop:
    (mixed crops, soft targets, lambda).

    Book section: *ViT with 2040 images* "Multi-crop and CutMix".
    """
    from .augment import cutmix

    index = torch.arange(n_images).repeat(len(crops) // n_images)
    for _ in range(tries):
        mixed, targets, lam = cutmix(crops, index, n_images)
        if targets[0].max() < 1:
            return mixed, targets, lam
    raise RuntimeError(f"no CutMix draw in {tries} paired crop 0 with another image")


def draw_crops(image: torch.Tensor, groups: list[torch.Tensor], mixed: torch.Tensor, targets: torch.Tensor,
               n_images: int, ncols: int = 4):
    """One image, its global and local crops (crop ``k`` of image 0 is row ``k * n_images``), and a
    CutMixed global crop titled with its two largest target weights, ``ncols`` to a row.

    Book section: *ViT with 2040 images* "Multi-crop and CutMix".
    """
    crops, titles = [image], ["image #0"]
    for name, g in zip(("global", "local"), groups):
        for k in range(len(g) // n_images):
            crops.append(g[k * n_images])
            titles.append(f"{name} {k + 1}")
    top = targets[0].topk(2)
    crops.insert(1 + len(groups[0]) // n_images, mixed[0])  # after the global crops it mixes
    titles.insert(1 + len(groups[0]) // n_images,
                  f"{top.values[0]:.2f}·#{int(top.indices[0])} + {top.values[1]:.2f}·#{int(top.indices[1])}")
    return viz.image_grid(crops, titles, ncols=ncols, size=1.8)


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
    # constrained layout keeps the title and the colour bar's label inside the figure
    fig, axes = plt.subplots(1, n, figsize=(1.1 * n + 0.9, 1.8), layout="constrained")
    layer_img = None
    for i, ax in enumerate(axes):
        layer_img = viz.overlay_heatmap(ax, images[i], att[i], alpha=0.55)
    fig.suptitle(f"{model}: layer {layer + 1}, head {head}")
    # each map is min-max scaled to [0, 1] per image: the bar reads "relative attention in this image"
    viz.colorbar(list(axes), layer_img, label="attention\n(per image, 0-1)")
    return fig


# ------------------------------------------------------------------------------------------ tables


def _standard_error(accuracy: float, n_test: int) -> float:
    """Standard error (points) of a test accuracy in % over ``n_test`` images: test sampling alone."""
    p = accuracy / 100
    return 100 * (p * (1 - p) / n_test) ** 0.5


def quick_tables(metrics: dict) -> str:
    """Markdown: test accuracy and optimizer steps of each ViT, then the class token's kNN accuracy.

    Book section: *ViT with 2040 images* "Quick run".
    """
    m, steps = metrics, metrics["budget_steps"]
    return "\n".join([
        "| ViT | test accuracy (%) | optimizer steps |",
        "|---|---|---|",
        f"| pretrained (instance discrimination) + fine-tuned | {m['pretrained_finetuned']:.1f} "
        f"| {steps['pretrain']} + {steps['finetune']} |",
        f"| from scratch, same total steps | {m['scratch']:.1f} | {steps['scratch']} |",
        f"| from scratch, fine-tuning steps only | {m['scratch_short']:.1f} | {steps['finetune']} |",
        "",
        "| class-token features | kNN accuracy (%) |",
        "|---|---|",
        f"| random initialisation | {m['knn']['random_init']:.1f} |",
        f"| after instance discrimination (no labels) | {m['knn']['pretrained']:.1f} |",
        f"| trained from scratch with labels | {m['knn']['scratch']:.1f} |",
    ])


def ablation_table(metrics: dict) -> str:
    """Markdown: the ablation ladder's fine-tuned accuracy, one row per recipe; a sentence when the run
    trained only one recipe (a one-row "ablation" compares nothing)."""
    from .config import ABLATION_STEPS

    labels = {key: label for key, label, _ in ABLATION_STEPS}
    ablation = metrics["ablation"]
    if len(ablation) < 2:
        (key, value), = ablation.items()
        return (f"This run trained one recipe only, *{labels.get(key, key)}* (the full recipe), at "
                f"{value:.1f} % after fine-tuning: there is no ladder to compare here. The study run's ladder is "
                "in the \"Paper vs this book\" table, and `vit2040.config.quick(run_ablation=True)` trains it "
                "here.")
    rows = [f"| {labels.get(k, k)} | {v:.1f} |" for k, v in ablation.items()]
    return "\n".join(["| pretraining recipe | test accuracy (%) after fine-tuning |", "|---|---|"] + rows)


def comparison_text(metrics: dict, n_test: int) -> str:
    """Markdown bullets: the quick run's differences in points and in standard errors of the test accuracy."""
    m = metrics
    se = _standard_error(m["scratch"], n_test)

    def compare(a, b):
        d = a - b
        return f"{'higher' if d > 0 else 'lower'} by {abs(d):.1f} points ({abs(d) / se:.1f} standard errors)"

    lines = [
        "- Without any label, instance discrimination made the class token's kNN accuracy "
        f"{compare(m['knn']['pretrained'], m['knn']['random_init'])} than a random ViT's.",
        f"- Fine-tuned from it, the ViT is {compare(m['pretrained_finetuned'], m['scratch_short'])} than the same "
        "ViT trained from scratch for the same fine-tuning steps,",
        f"- and {compare(m['pretrained_finetuned'], m['scratch'])} than the ViT trained from scratch with the "
        f"whole budget ({m['budget_steps']['scratch']} steps), the sceptic's baseline.",
    ]
    ablation = list(m["ablation"])
    if len(ablation) > 1:
        lines.append(f"- Across the ablation, the full recipe is "
                     f"{compare(m['ablation'][ablation[-1]], m['ablation'][ablation[0]])} than the first row "
                     "(no ingredient).")
    return "\n".join(lines)
