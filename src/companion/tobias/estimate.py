"""How long a preset takes on a Colab T4: every part's images times the FLOPs PyTorch counts for them.

Book section: *Tobias* "Full run".
"""

from __future__ import annotations

from functools import lru_cache

from ..results import plural
from ..runtime import T4_FLOPS, TimeEstimate, estimate_hours, items_per_second
from . import config as config_mod

#: Images of the data sets the full and colab presets read: CUB-200-2011's test split, STL-10's
#: labelled train and test splits (the probes).
CUB_TEST, STL10_TRAIN, STL10_TEST = 5794, 5000, 8000


@lru_cache(maxsize=None)
def _trunk_flops(arch: str, stage: str | None, layer4_stride: int, size: int) -> float:
    """Forward FLOPs of a random ``conv_trunk`` on one ``size`` px RGB image."""
    from ..backbones import conv_trunk
    from ..flops import flops_per_image

    import torch

    stride = layer4_stride if arch.startswith("resnet") else 2  # only ResNets have a layer4 to change
    with torch.device("meta"):  # shapes only: no weights drawn, nothing computed
        trunk = conv_trunk(arch, stage, layer4_stride=stride)
    return float(flops_per_image(trunk, size))


@lru_cache(maxsize=None)
def _moco_flops(encoder: str, encoder_kwargs: str, method_kwargs: str, channels: int,
                resolution: int) -> tuple[float, float]:
    """(FLOPs per image of one MoCo v2 training step, forward FLOPs of the encoder alone)."""
    import json

    from ..flops import flops_per_image, train_step_flops
    from ..ssl.encoders import build_encoder
    from ..ssl.methods import MoCo

    kwargs = {**json.loads(method_kwargs), "queue_size": 8, "dataset_size": 8}  # the queue's length costs ~nothing
    method = MoCo(build_encoder(encoder, in_channels=channels, **json.loads(encoder_kwargs)), **kwargs)
    return (train_step_flops(method, resolution, channels=channels),
            float(flops_per_image(method.encoder, resolution, channels=channels)))


def _ssl_sizes(cfg: config_mod.SSLConfig) -> tuple[int, int, int, int]:
    """(pretraining images, probe training images, probe test images, channels)."""
    if cfg.dataset == "stl10":
        return cfg.n_train, STL10_TRAIN, STL10_TEST, 3
    return cfg.n_train, cfg.n_train, cfg.n_test, 1 if (cfg.dataset == "digits" and cfg.gray) else 3


def run_hours(config: config_mod.Config | None = None, flops: float | None = None) -> TimeEstimate:
    """The preset's time on a Colab T4 (default: :func:`~companion.tobias.config.full`), from its own
    sizes: CUB's test images through every model of ``cub.models`` (forward); the random network's
    cell scores of every pretraining image; MoCo v2's steps (``epochs`` x the full batches, or
    ``steps``) for both arms and every seed, forward and backward through both encoders; the probes'
    features of the untrained and both trained encoders; and the localization part's forwards. FLOPs
    are counted by PyTorch (``torch.utils.flop_counter``) at ``flops`` FLOP/s (default
    :data:`companion.runtime.T4_FLOPS`, an assumption); downloads, JPEG decoding and the linear probes'
    epochs on stored features are not counted. The chapter's stated times are this function's (a test
    checks).

    Book section: *Tobias* "Full run".
    """
    import json

    config = config or config_mod.full()
    if not isinstance(config, config_mod.Config):
        raise TypeError(f"config must be a tobias Config, got {type(config).__name__}")
    flops = flops or T4_FLOPS

    def forward_h(images: int, per_image: float) -> float:
        return estimate_hours(images, 1, items_per_second(per_image, flops)).hours if images else 0.0

    parts: dict[str, float] = {}
    loc = config.localization
    if loc is not None:
        scenes = len(loc.seeds) + len(loc.framed_seeds)
        h = forward_h(scenes * loc.n_scenes, _trunk_flops(loc.arch, loc.stage, loc.layer4_stride, loc.image_size))
        if loc.torchvision_seeds and loc.arch.startswith("resnet"):
            h += forward_h(len(loc.torchvision_seeds) * loc.n_scenes,
                           _trunk_flops(loc.arch, loc.stage, 2, loc.image_size))
        if loc.photos:
            h += forward_h(len(loc.photos) * len(loc.photo_seeds),
                           _trunk_flops(loc.photo_arch, None, loc.layer4_stride, loc.photo_size))
        parts["localization"] = h
    cub = config.cub
    if cub is not None:
        images = cub.limit or CUB_TEST
        parts["CUB"] = sum(forward_h(images, _trunk_flops(arch, None, cub.layer4_stride, cub.image_size))
                           for _, arch, _, _, _ in cub.models)
    ssl = config.ssl
    if ssl is not None:
        pre = ssl.pretrain
        n_pre, n_probe, n_test, channels = _ssl_sizes(ssl)
        step, forward = _moco_flops(pre.encoder, json.dumps(pre.encoder_kwargs, sort_keys=True),
                                    json.dumps(pre.method_kwargs, sort_keys=True), channels, pre.resolution)
        if pre.steps is not None:
            items, epochs = pre.steps * pre.batch_size, 1
        else:
            items, epochs = max(1, n_pre // pre.batch_size) * pre.batch_size, pre.epochs
        runs = 2 * len(ssl.seeds)  # baseline and Tobias arm of every seed
        parts["MoCo v2"] = estimate_hours(items, epochs, items_per_second(step, flops), runs=runs).hours
        mask_size = ssl.mask_size or ssl.image_size
        parts["masks and probes"] = (
            forward_h(n_pre, _trunk_flops(ssl.mask_arch, ssl.mask_stage, 2, mask_size))
            + forward_h(3 * len(ssl.seeds) * (n_probe + n_test), forward))
    seeds = len(ssl.seeds) if ssl is not None else 1
    detail = ", ".join(f"{name} {h:.2f} h" for name, h in parts.items())
    return TimeEstimate(sum(parts.values()),
                        f"{detail}; MoCo v2: 2 arms x {plural(seeds, 'seed')}; FLOPs counted by PyTorch at an "
                        f"assumed {flops / 1e12:g} TFLOP/s; downloads and JPEG decoding not counted")
