"""The full and colab presets' time on a Colab T4, from their own epochs, networks and counted FLOPs.

Book section: *US3L* "Full run".
"""

from __future__ import annotations

from functools import lru_cache

from ..results import plural
from ..runtime import T4_FLOPS, TimeEstimate, items_per_second
from ..slimmable import SlimmableResNet
from ..slimmable.resnet import cost_at
from .config import US3LConfig, full
from .schedule import sample_widths, width_steps

#: CIFAR-100's training images, what every epoch of the full preset goes over, and its test images.
CIFAR_TRAIN_IMAGES = 50_000
CIFAR_TEST_IMAGES = 10_000


@lru_cache(maxsize=512)
def _forward_flops(base_width: int, blocks: tuple, small_stem: bool, divisor: int, resolution: int, width: float) -> int:
    probe = SlimmableResNet(base_width, blocks, in_channels=3, small_stem=small_stem, divisor=divisor)
    return cost_at(probe, width, resolution)["flops"]


def run_hours(config: US3LConfig | None = None, flops: float | None = None, samples: int = 200) -> TimeEstimate:
    """Hours of a full or colab preset (default: :func:`~companion.us3l.config.full`) on a Colab T4, at
    ``flops`` FLOP/s (default :data:`companion.runtime.T4_FLOPS`, an assumption).

    Training: every network the preset trains (US3L and the naive baselines at the sandwich widths, one
    network alone per ``separate_widths``, for every seed). Per image and step: two views, each a forward
    and backward (3x the forward FLOPs of :func:`~companion.slimmable.resnet.cost_at`) at every sampled
    width, plus US3L's teacher forward at full width; the widths are those :func:`sample_widths` draws at
    ``samples`` evenly spaced steps (without dynamic sampling for the released naive baseline). A network
    trained alone for US3L's steps at its width (``fixed_us3l``) trains that fraction of the epochs. Evaluation: for every network evaluated at a width (the untrained one
    and every trained one at each ``eval_widths``, a network alone at its own), a forward pass over the
    batch-norm calibration images and over the training and test images (for US3L also the released
    code's three calibration passes). Heads, augmentation and the linear probes are not counted.
    ``full_run_hours`` is the same function under its older name. Book section: *US3L* "Full run".
    """
    config = config or full()
    flops = flops or T4_FLOPS
    if config.epochs is None:
        raise ValueError("run_hours estimates presets counted in epochs over CIFAR-100 (epochs set, steps None), "
                         f"got steps={config.steps!r}, epochs={config.epochs!r}")

    def forward(width: float) -> int:  # widths rounded to 1/16: a few FLOP counts, errors that average out
        return _forward_flops(config.base_width, tuple(config.blocks), config.small_stem, config.divisor,
                              config.resolution, round(width * 16) / 16)

    total = config.epochs * (CIFAR_TRAIN_IMAGES // config.batch_size)
    steps = [round(i * (total - 1) / max(1, samples - 1)) for i in range(samples)]
    def sandwich(dynamic: bool) -> float:
        return sum(3 * sum(forward(w) for w in sample_widths(s, total, config.n_widths, 0, dynamic=dynamic))
                   for s in steps) / len(steps)

    per_image, share, short = {}, {}, []  # short: widths trained alone for US3L's steps there
    if "us3l" in config.modes:
        per_image["us3l"] = 2 * (sandwich(config.dynamic) + forward(1.0))
    if "us3l_online" in config.modes:
        per_image["us3l_online"] = 2 * (sandwich(config.dynamic) + forward(1.0))
    if "naive" in config.modes:
        per_image["naive"] = 2 * sandwich(False)
    if "naive_simclr" in config.modes:
        per_image["naive_simclr"] = 2 * sandwich(config.dynamic)
    if "fixed" in config.modes:
        for w in config.separate_widths:
            per_image[f"alone at {w:g}"] = 2 * 3 * forward(w)
    if "fixed_us3l" in config.modes:
        for w in config.separate_widths:
            n = width_steps(w, total, config.n_widths, 0, dynamic=config.dynamic)
            if 0 < n < total:
                per_image[f"alone at {w:g}, US3L's steps"] = 2 * 3 * forward(w)
                share[f"alone at {w:g}, US3L's steps"] = n / total
                short.append(w)
    images = config.epochs * CIFAR_TRAIN_IMAGES
    hours = {name: share.get(name, 1.0) * images / items_per_second(f, flops) / 3600
             for name, f in per_image.items()}

    calibration = CIFAR_TRAIN_IMAGES if config.calibration_batches is None else min(
        CIFAR_TRAIN_IMAGES, config.calibration_batches * config.batch_size)
    once = calibration + CIFAR_TRAIN_IMAGES + CIFAR_TEST_IMAGES  # calibrate, then features of train and test
    official = 3 * calibration + CIFAR_TRAIN_IMAGES + CIFAR_TEST_IMAGES
    all_widths = sum(forward(w) for w in config.eval_widths)
    evaluated = 1 + sum(m in config.modes for m in ("us3l", "us3l_online", "naive", "naive_simclr"))  # + untrained
    eval_flops = evaluated * all_widths * once
    if config.official_bn and "us3l" in config.modes:
        eval_flops += all_widths * official
    if "fixed" in config.modes:
        eval_flops += sum(forward(w) for w in config.separate_widths) * once
    if "fixed_us3l" in config.modes:
        eval_flops += sum(forward(w) for w in short) * once
    eval_hours = eval_flops / flops / 3600

    seeds = len(config.seeds)
    parts = ", ".join(f"{name} {h:.2g} h" for name, h in hours.items())
    return TimeEstimate(seeds * (sum(hours.values()) + eval_hours),
                        f"{len(hours)} networks x {config.epochs} epochs x {CIFAR_TRAIN_IMAGES:,} images, "
                        f"{plural(seeds, 'seed')}: {parts}; evaluation {eval_hours:.2g} h per seed; FLOPs counted by "
                        f"PyTorch at an assumed {flops / 1e12:g} TFLOP/s")


full_run_hours = run_hours  # the older name
