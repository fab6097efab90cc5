"""How long a preset takes on a Colab T4: every stage's images times the FLOPs PyTorch counts for them.

Book section: *ViT with 2040 images* "Full run".
"""

from __future__ import annotations

from functools import lru_cache

import torch

from ..results import plural
from ..runtime import T4_FLOPS, TimeEstimate, estimate_hours, items_per_second
from .config import ABLATION_STEPS, Config, ViTShape

#: Flowers-102's training (train + val) and test images; digits: 10 classes, 1,797 images in all.
FLOWERS_TRAIN, FLOWERS_TEST, DIGITS = 2040, 6149, 1797


@lru_cache(maxsize=None)
def _flops_per_crop(shape: ViTShape, classes: int, resolution: int, train: bool) -> float:
    """FLOPs of one crop at ``resolution``: forward, and backward when ``train`` (linear in the crops)."""
    from ..flops import count_flops
    from .model import build_vit

    model = build_vit(shape, classes, image_size=resolution)
    x = torch.zeros(1, shape.in_channels, resolution, resolution)

    def step():
        if train:
            model(x).sum().backward()
        else:
            with torch.no_grad():
                model(x)

    return float(count_flops(step))


def data_sizes(config: Config) -> tuple[int, int]:
    """(training images, test images) of the preset's data set."""
    if config.dataset == "flowers102":
        return FLOWERS_TRAIN, FLOWERS_TEST
    return 10 * config.per_class, DIGITS - 10 * config.per_class


def run_hours(config: Config | None = None, flops: float | None = None) -> TimeEstimate:
    """The preset's time on a Colab T4 (default: :func:`~companion.vit2040.config.full`), from its own
    schedule: per seed, each distinct pretraining (``epochs`` x the full batches of the training images,
    every crop forward and backward at its resolution, through the instance head), each ablation row's
    fine-tuning, the from-scratch baseline's steps (pretraining + fine-tuning, at the fine-tuning
    resolution), the short baseline, and the forward passes of the evaluations; FLOPs counted by
    PyTorch (``torch.utils.flop_counter``) at ``flops`` FLOP/s (default :data:`companion.runtime.T4_FLOPS`,
    an assumption). Downloading and decoding the images are not counted. The chapter's stated times are
    this function's (a test checks).

    Book section: *ViT with 2040 images* "Full run".
    """
    from .config import full

    config = config or full()
    if not isinstance(config, Config):
        raise TypeError(f"config must be a vit2040 Config, got {type(config).__name__}")
    flops = flops or T4_FLOPS
    n_train, n_test = data_sizes(config)
    classes = 102 if config.dataset == "flowers102" else 10
    size, shape = config.shape.image_size, config.shape
    rows = [a for _, _, a in ABLATION_STEPS] if config.run_ablation else [config.ablation]
    pre, ft = config.pretrain, config.finetune
    pre_items, ft_items = (n_train // pre.batch_size) * pre.batch_size, (n_train // ft.batch_size) * ft.batch_size
    if not pre_items or not ft_items:
        raise ValueError(f"{n_train} training images are fewer than one batch ({pre.batch_size} or {ft.batch_size})")

    pretrainings = {(config.pretrain_resolution(a), a.multi_crop, a.cutmix) for a in rows}
    pretrain_h = sum(
        estimate_hours(pre_items, pre.epochs, items_per_second(
            (config.crops.n_global + (config.crops.n_local if mc else 0)) * _flops_per_crop(shape, n_train, res, True),
            flops)).hours
        for res, mc, _ in pretrainings)
    ft_rate = items_per_second(_flops_per_crop(shape, classes, size, True), flops)
    finetune_h = estimate_hours(ft_items, ft.epochs, ft_rate, runs=len(rows)).hours
    scratch_steps = pre.epochs * (n_train // pre.batch_size) + ft.epochs * (n_train // ft.batch_size)
    scratch_h = estimate_hours(scratch_steps * ft.batch_size, 1, ft_rate).hours
    if config.short_baseline:
        scratch_h += estimate_hours(ft_items, ft.epochs, ft_rate).hours
    # test accuracy of every fine-tuned and scratch model; kNN and linear features (train + test) of the
    # pretrained, untrained and scratch encoders, all counted at the fine-tuning resolution
    evaluated = n_test * (len(rows) + 1 + config.short_baseline) + 5 * (n_train + n_test)
    eval_h = estimate_hours(evaluated, 1, items_per_second(_flops_per_crop(shape, classes, size, False), flops)).hours
    seeds = len(config.seeds)
    per_seed = pretrain_h + finetune_h + scratch_h + eval_h
    return TimeEstimate(
        seeds * per_seed,
        f"{plural(seeds, 'seed')} x (pretraining {pretrain_h:.2f} h, fine-tuning {finetune_h:.2f} h, from scratch "
        f"{scratch_h:.2f} h, evaluation {eval_h:.2f} h); FLOPs counted by PyTorch at an assumed "
        f"{flops / 1e12:g} TFLOP/s; downloading and decoding the images not counted")
