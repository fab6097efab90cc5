"""One entry point for self-supervised pretraining: ``pretrain(method, encoder, data, config)``.

It builds the two-view pipeline (per-image ``transforms.v2`` on the CPU, or :class:`GPUAugment` on
the batch), the method, and trains through :func:`companion.train.fit` (progress bar, AMP on CUDA,
atomic checkpoints, exact resume).

Book sections: *S3L* "MoCo v2 on the target data", *SSQL* "The SimSiam loss with a quantized branch",
*US3L* "A momentum teacher for every width", *Efficient SSL* "Instance discrimination", *Tobias* "Background swap inside MoCo v2".
"""

from __future__ import annotations

import os
import sys
import types
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset

from .. import validation as v
from ..runtime import torch_threads
from ..train import FitConfig, FitResult, fit
from ..validation import check, invalid
from .augment import GPUAugment, ssl_augment
from .data import ImagesOnly, TwoViewDataset
from .encoders import ENCODERS, build_encoder
from .methods import METHODS, MoCo, SSLMethod


def default_checkpoint_dir(name: str = "ssl") -> Path:
    """``runtime.checkpoint_root(name)``, where full runs keep their checkpoints (on Colab with Google
    Drive mounted, on Drive, so a rerun after a disconnect resumes)."""
    from ..runtime import checkpoint_root

    return checkpoint_root(name)


#: Heads small enough for CPU seconds, used by :meth:`PretrainConfig.quick` unless ``method_kwargs`` is given.
QUICK_HEADS = {
    "simsiam": {"proj_dim": 256, "pred_dim": 64, "proj_layers": 2},
    "byol": {"proj_dim": 64, "hidden": 256},
    "moco": {"dim": 64},
    "simclr": {"dim": 64},
}


@dataclass
class PretrainConfig:
    """Everything :func:`pretrain` needs. ``steps=None`` means ``epochs`` passes over the data.

    ``gpu_augment``: None = batched augmentation when the device is CUDA, per-image CPU transforms
    otherwise; True/False force one path (the batched one also runs on the CPU).
    ``method_kwargs`` go to the method's constructor (e.g. ``proj_dim``, ``queue_size``);
    ``encoder``/``encoder_kwargs`` build the encoder when none is passed.
    """

    method: str = "simsiam"
    encoder: str = "resnet18_small"
    encoder_kwargs: dict = field(default_factory=dict)
    method_kwargs: dict = field(default_factory=dict)
    resolution: int = 32
    blur: bool | None = None
    augment: dict = field(default_factory=dict)  # more keyword arguments of ssl_augment / GPUAugment (scale, p_flip, ...)
    steps: int | None = None
    epochs: int | None = None
    batch_size: int = 512
    lr: float = 0.1
    weight_decay: float = 5e-4
    optimizer: str = "sgd"
    momentum: float = 0.9
    warmup_steps: int = 0
    seed: int = 0
    amp: bool | None = None
    gpu_augment: bool | None = None
    num_workers: int = 0
    checkpoint_dir: str | None = None
    checkpoint_every: int = 0
    resume: bool = True
    progress: bool = True
    log_every: int = 1
    time_budget_s: float | None = None
    device: str | None = None
    num_threads: int | None = None  # CPU threads while training (None: unchanged); tiny models run fastest on 1

    def __post_init__(self):
        check(
            self, method=v.one_of(*METHODS), encoder=v.one_of(*ENCODERS), encoder_kwargs=v.mapping(v.text()),
            method_kwargs=v.mapping(v.text()), resolution=v.positive_int, blur=v.optional(v.flag()),
            augment=v.mapping(v.text()), steps=v.optional(v.positive_int), epochs=v.optional(v.positive_int),
            batch_size=v.positive_int, lr=v.positive, weight_decay=v.non_negative, optimizer=v.one_of("adamw", "sgd"),
            momentum=v.number(0, 1, high_open=True), warmup_steps=v.non_negative_int, seed=v.train_seed,
            amp=v.optional(v.flag()), gpu_augment=v.optional(v.flag()), num_workers=v.non_negative_int,
            checkpoint_dir=v.optional(v.path()), checkpoint_every=v.non_negative_int, resume=v.flag(),
            progress=v.flag(), log_every=v.positive_int, time_budget_s=v.optional(v.positive),
            device=v.optional(v.device()), num_threads=v.threads,
        )
        if (self.steps is None) == (self.epochs is None):  # both given: one would be silently ignored
            invalid(self, "epochs", f"be None when steps is given (give exactly one of steps or epochs; steps={self.steps!r})"
                    if self.steps is not None else "be given when steps is None (give steps or epochs)")

    @classmethod
    def quick(cls, **overrides) -> "PretrainConfig":
        """CPU seconds: a TinyCNN (width 16, stride-2 stem) at 32 px, batched augmentation on the CPU,
        one thread, small heads (:data:`QUICK_HEADS`), 60 steps of batch 64 unless overridden."""
        base = dict(
            encoder="tiny", encoder_kwargs={"width": 16, "stem_stride": 2}, resolution=32, steps=60, batch_size=64,
            lr=0.05, weight_decay=5e-4, optimizer="sgd", gpu_augment=True, progress=False, device="cpu", num_threads=1,
        )
        base.update(overrides)
        base.setdefault("method_kwargs", dict(QUICK_HEADS.get(base.get("method", "simsiam"), {})))
        return cls(**base)

    @classmethod
    def full(cls, **overrides) -> "PretrainConfig":
        """A GPU run: ResNet-18 with the small stem at 32 px, batch 512, 200 epochs, SGD lr 0.1 (SimSiam's
        0.05 x 512 / 256), weight decay 5e-4, batched augmentation on the GPU, checkpoints every 500 steps."""
        base = dict(
            encoder="resnet18_small", resolution=32, epochs=200, batch_size=512, lr=0.1, weight_decay=5e-4,
            optimizer="sgd", checkpoint_dir=str(default_checkpoint_dir("ssl")), checkpoint_every=500, progress=True,
        )
        base.update(overrides)
        return cls(**base)

    def fit_config(self, steps: int) -> FitConfig:
        return FitConfig(
            steps=steps, batch_size=self.batch_size, lr=self.lr, optimizer=self.optimizer, momentum=self.momentum,
            weight_decay=self.weight_decay, warmup_steps=self.warmup_steps, seed=self.seed, amp=self.amp,
            checkpoint_dir=self.checkpoint_dir, checkpoint_every=self.checkpoint_every, resume=self.resume,
            progress=self.progress, log_every=self.log_every, num_workers=self.num_workers,
            time_budget_s=self.time_budget_s, device=self.device,
        )

    def to_dict(self) -> dict:
        return asdict(self)

    def replace(self, **changes) -> "PretrainConfig":
        return replace(self, **changes)


cpu_threads = torch_threads  # the shared helper, under the name this module has always exported


def _channels_of(data) -> int:
    if torch.is_tensor(data):
        return int(data.shape[1])
    item = data[0]
    image = item[0] if isinstance(item, (tuple, list)) else item
    if torch.is_tensor(image):
        return int(image.shape[0])
    return len(getattr(image, "getbands", lambda: "RGB")())


def pretrain(
    method: str | nn.Module, encoder: nn.Module | None, data, config: PretrainConfig,
    *, views=None, two_view_dataset: Dataset | None = None,
) -> tuple[SSLMethod, FitResult]:
    """Pretrain ``encoder`` with ``method`` on ``data`` and return ``(method_module, fit_result)``.

    ``method``: a name in :data:`~companion.ssl.methods.METHODS` (built around ``encoder`` with
    ``config.method_kwargs``) or a ready module with ``forward(v1, v2)`` and ``on_step``. A MoCo built here
    without a ``queue_size`` gets ``min(4096, len(data))``; a given one longer than the data is an error.
    ``encoder``: None builds ``config.encoder`` for the data's channel count.
    ``data``: ``(N, C, H, W)`` float images in [0, 1], a Dataset of images / ``(image, label)``, or (with
    ``views``) a tuple of tensors of one length whose first is the images (e.g. images and saliency maps).
    ``method_module.encoder`` is the trained backbone. Resumes from ``config.checkpoint_dir`` if a
    checkpoint is there.

    Custom view pairs (both optional; without them nothing changes):

    - ``views(batch, aug) -> (v1, v2)``: called on each loaded batch in the batched path instead of
      ``(aug(x), aug(x))``; ``batch`` is the tuple of tensors fit sliced (``batch[0]`` the images, on the
      device), ``aug`` the :class:`GPUAugment` of ``config`` (e.g. :class:`~companion.ssl.bench.PairViews`,
      or a background swap that then augments). It implies the batched path.
    - ``two_view_dataset``: a ready Dataset of ``(v1, v2, ...)`` items for the per-image path (its length
      is the data size); ``data`` is then only used for its length and channel count and may be None.

    Book section: *S3L* "MoCo v2 on the target data".
    """
    if views is not None and not callable(views):
        raise TypeError(f"views must be a callable (batch, aug) -> (v1, v2), got {type(views).__name__}")
    if views is not None and two_view_dataset is not None:
        raise ValueError("give views= (batched path) or two_view_dataset= (per-image path), not both")
    if two_view_dataset is not None:
        if not hasattr(two_view_dataset, "__getitem__") or not hasattr(two_view_dataset, "__len__"):
            raise TypeError(f"two_view_dataset must be a Dataset, got {type(two_view_dataset).__name__}")
        if data is None:
            data = two_view_dataset
    extra: tuple = ()
    if isinstance(data, (tuple, list)) and data and all(torch.is_tensor(t) for t in data):
        if views is None:
            raise ValueError("a tuple of tensors as data needs views= (which says what to do with the extra tensors)")
        data, *rest = data
        extra = tuple(rest)
        if any(len(t) != len(data) for t in extra):
            raise ValueError(f"the tensors in data differ in length: {[len(data)] + [len(t) for t in extra]}")
    if torch.is_tensor(data):
        if data.ndim != 4:
            raise ValueError(f"data must be an image batch (N, C, H, W), got shape {tuple(data.shape)}")
        if not data.is_floating_point():
            raise TypeError(f"data must be float images in [0, 1], got dtype {data.dtype}")
    if data is None:
        raise ValueError("data is None; pass images, or two_view_dataset=")
    n = len(data)
    if n == 0:
        raise ValueError("data is empty")
    channels = _channels_of(data)
    from ..runtime import seed_everything

    seed_everything(config.seed)  # the encoder and heads built here start from the same weights every run
    if isinstance(method, str):
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; choose from {sorted(METHODS)}")
        if encoder is None:
            encoder = build_encoder(config.encoder, in_channels=channels, **config.encoder_kwargs)
        kwargs = dict(config.method_kwargs)
        if METHODS[method] is MoCo:
            kwargs.setdefault("dataset_size", n)
            kwargs.setdefault("queue_size", min(4096, n))  # MoCo's 4096, or the whole dataset when smaller
        model = METHODS[method](encoder, **kwargs)
    elif isinstance(method, nn.Module):
        model = method
    else:
        raise TypeError(f"method must be a name or an nn.Module, got {type(method).__name__}")
    if hasattr(model, "check_dataset_size"):
        model.check_dataset_size(n)

    steps = config.steps
    if steps is None:  # under torchrun each step takes batch_size images on every one of the processes
        world = int(os.environ.get("WORLD_SIZE", "1"))
        steps = max(1, config.epochs * (n // (config.batch_size * world)))
    fit_cfg = config.fit_config(int(steps))
    device = torch.device(config.device) if config.device else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    batched = config.gpu_augment if config.gpu_augment is not None else device.type == "cuda"
    if views is not None:
        if config.gpu_augment is False:
            raise ValueError("views= works on loaded batches; it cannot be combined with gpu_augment=False")
        batched = True
    if two_view_dataset is not None:
        if config.gpu_augment:
            raise ValueError("two_view_dataset= is the per-image path; it cannot be combined with gpu_augment=True")
        batched = False

    if batched:
        aug = GPUAugment(config.resolution, blur=config.blur, **config.augment)
        if torch.is_tensor(data):
            fit_data = (data.to(device), *(t.to(device) for t in extra))  # sliced on the device: no loader
        else:
            fit_data = ImagesOnly(data)

        def step_fn(m, batch):
            if views is not None:
                v1, v2 = views(batch, aug)
                return m(v1, v2)
            x = batch[0]
            return m(aug(x), aug(x))
    else:
        if two_view_dataset is not None:
            fit_data = two_view_dataset
        else:
            fit_data = TwoViewDataset(data, ssl_augment(config.resolution, blur=config.blur, channels=channels, **config.augment))

        def step_fn(m, batch):
            return m(batch[0], batch[1])

    total = int(steps)
    with cpu_threads(config.num_threads if device.type == "cpu" else None):
        result = fit(model, fit_data, step_fn, fit_cfg, after_step=lambda core, step: core.on_step(step, total))
    return model, result


class _CallableModule(types.ModuleType):
    """``companion.ssl.pretrain`` is both this module and the function: ``ssl.pretrain(...)`` trains,
    ``ssl.pretrain.PretrainConfig`` is the config, whichever way a chapter imports it."""

    def __call__(self, *args, **kwargs):
        return pretrain(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
