"""The Tobias augmentation plugged into the SSL toolkit: a two-view dataset whose query view may carry
another image's background, and a pretraining entry point that trains through ``train.fit``.

Two paths, the same augmentation:

- per image, on the CPU (DataLoader workers): :class:`TobiasTwoViewDataset` yields
  ``(query, key, index)`` like :class:`companion.ssl.data.TwoViewDataset`;
- batched, on the device (GPUs, and the quick run): :func:`pretrain_with_swap` swaps backgrounds inside
  the batch with :func:`~companion.tobias.swap.tobias_swap`, then applies
  :class:`companion.ssl.augment.GPUAugment` to the query and the key.

Book section: *Tobias* "Background swap inside MoCo v2".
"""

from __future__ import annotations

import torch

from ..ssl.augment import GPUAugment, ssl_augment
from ..ssl.data import TwoViewDataset
from ..ssl.encoders import build_encoder
from ..ssl.methods import METHODS, MoCo
from ..ssl.pretrain import PretrainConfig, cpu_threads
from ..train import FitResult, fit
from .swap import background_swap, foreground_cells

__all__ = ["TobiasTwoViewDataset", "pretrain_with_swap"]


class TobiasTwoViewDataset(TwoViewDataset):
    """Items ``(query, key, index)``: the key is ``transform(A)``; the query is ``transform(A)`` or, with
    probability ``p``, ``transform(swap(A, B))`` for a random other image ``B`` of the data set.

    ``images``: ``(N, C, H, W)`` float tensor (or a Dataset of images / ``(image, label)``) whose sides
    are divisible by ``grid``; ``scores``: ``(N, g, g)`` cell scores of the random CNN's maps
    (:func:`~companion.tobias.swap.cell_scores`), computed once beforehand as the paper does.
    Random draws use the global torch RNG (per worker, seeded by the DataLoader).
    Book section: *Tobias* "Background swap inside MoCo v2".
    """

    def __init__(self, images, scores: torch.Tensor, transform, p: float = 0.3, grid: int = 4):
        super().__init__(images, transform)
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be a probability in [0, 1], got {p}")
        scores = torch.as_tensor(scores, dtype=torch.float32)
        if scores.shape != (len(self.images), grid, grid):
            raise ValueError(f"scores must be ({len(self.images)}, {grid}, {grid}), one grid per image; got {tuple(scores.shape)}")
        if p > 0 and len(self.images) < 2:
            raise ValueError("the swap needs at least two images")
        self.p, self.grid = p, grid
        self.foreground = foreground_cells(scores)  # (N, g*g) bool, computed once

    def query_source(self, index: int) -> tuple[torch.Tensor, bool]:
        """The image the query view is drawn from, and whether its background was swapped."""
        a = self.image(index)
        if self.p == 0.0 or float(torch.rand(())) >= self.p:
            return a, False
        other = (index + int(torch.randint(1, len(self.images), ()))) % len(self.images)
        swapped = background_swap(a, self.image(other), self.foreground[index], self.foreground[other], self.grid)
        return swapped, True

    def __getitem__(self, index: int):
        query, _ = self.query_source(index)
        key = self.image(index)
        return self.transform(query), self.transform(key), index


def _build_method(config: PretrainConfig, channels: int, n: int):
    encoder = build_encoder(config.encoder, in_channels=channels, **config.encoder_kwargs)
    kwargs = dict(config.method_kwargs)
    if METHODS[config.method] is MoCo:
        kwargs.setdefault("dataset_size", n)
    model = METHODS[config.method](encoder, **kwargs)
    if hasattr(model, "check_dataset_size"):
        model.check_dataset_size(n)
    return model


def pretrain_with_swap(images: torch.Tensor, scores: torch.Tensor, config: PretrainConfig, p: float = 0.3,
                       grid: int = 4) -> tuple[torch.nn.Module, FitResult]:
    """Self-supervised pretraining (``config.method``, e.g. ``"moco"``) with the Tobias augmentation on
    the query view; ``p = 0`` is the plain baseline through exactly the same code.

    ``images``: ``(N, C, H, W)`` floats in [0, 1]; ``scores``: ``(N, g, g)``. Batched path (CUDA, or
    ``config.gpu_augment=True``): each batch is swapped on its device, then both views go through
    ``GPUAugment``. Otherwise :class:`TobiasTwoViewDataset` with the ``transforms.v2`` recipe.
    Training goes through :func:`companion.train.fit` (checkpoints in ``config.checkpoint_dir``).
    Returns ``(method module, fit result)``; ``module.encoder`` is the trained backbone.
    Book section: *Tobias* "Background swap inside MoCo v2".
    """
    from .swap import tobias_swap

    if not torch.is_tensor(images) or images.ndim != 4 or not images.is_floating_point():
        raise ValueError(f"images must be a float (N, C, H, W) batch, got {getattr(images, 'shape', type(images))}")
    if len(images) == 0:
        raise ValueError("images is empty")
    scores = torch.as_tensor(scores, dtype=torch.float32)
    if scores.shape != (len(images), grid, grid):
        raise ValueError(f"scores must be ({len(images)}, {grid}, {grid}), got {tuple(scores.shape)}")
    from ..runtime import seed_everything

    seed_everything(config.seed)  # same initial weights for the baseline and the Tobias run
    model = _build_method(config, images.shape[1], len(images))
    steps = config.steps if config.steps is not None else max(1, config.epochs * (len(images) // config.batch_size))
    fit_cfg = config.fit_config(int(steps))
    device = torch.device(config.device) if config.device else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    batched = config.gpu_augment if config.gpu_augment is not None else device.type == "cuda"

    if batched:
        aug = GPUAugment(config.resolution, blur=config.blur, **config.augment)
        data = (images.to(device), scores.to(device))

        def step_fn(m, batch):
            x, s = batch
            query, _ = tobias_swap(x, s, p, grid)  # only the query view is altered
            return m(aug(query), aug(x))
    else:
        transform = ssl_augment(config.resolution, blur=config.blur, channels=images.shape[1], **config.augment)
        data = TobiasTwoViewDataset(images, scores, transform, p, grid)

        def step_fn(m, batch):
            return m(batch[0], batch[1])

    total = int(steps)
    with cpu_threads(config.num_threads if device.type == "cpu" else None):
        result = fit(model, data, step_fn, fit_cfg, after_step=lambda core, step: core.on_step(step, total))
    return model, result

