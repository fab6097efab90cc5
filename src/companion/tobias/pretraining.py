"""The Tobias augmentation plugged into the SSL toolkit: a two-view dataset whose query view may carry
another image's background, and a pretraining entry point that trains through ``train.fit``.

Two paths, the same augmentation:

- per image, on the CPU (DataLoader workers): :class:`TobiasTwoViewDataset` yields
  ``(query, key, index)`` like :class:`companion.ssl.data.TwoViewDataset`;
- batched, on the device (GPUs, and the quick run): :class:`SwapViews` swaps backgrounds inside the
  batch with :func:`~companion.tobias.swap.tobias_swap`, then applies
  :class:`companion.ssl.augment.GPUAugment` to the query and the key.

Both plug into :func:`companion.ssl.pretrain` through its ``views=`` and ``two_view_dataset=`` hooks,
so the training loop is the toolkit's own.

Book section: *Tobias* "Background swap inside MoCo v2".
"""

from __future__ import annotations

import torch

from dataclasses import replace

from ..ssl.augment import GPUAugment, ssl_augment
from ..ssl.data import TwoViewDataset
from ..ssl.pretrain import PretrainConfig
from ..train import FitResult
from .swap import background_swap, foreground_cells, tobias_swap

__all__ = ["TobiasTwoViewDataset", "SwapViews", "pretrain_with_swap"]


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


class SwapViews:
    """``(batch, aug) -> (query, key)`` for :func:`companion.ssl.pretrain`'s ``views=`` hook: the query
    source is :func:`~companion.tobias.swap.tobias_swap` of the batch (probability ``p``), the key
    source the batch itself; both go through one call of the batched augmentation.

    ``batch`` is ``(images (B, C, H, W), scores (B, g, g))``. The swap draws from its own generator
    (seeded with ``seed``), so the augmentation's draws from the global RNG are the same with and
    without the swap: the two arms of a seed differ only in the swapped queries.
    Book section: *Tobias* "Background swap inside MoCo v2".
    """

    def __init__(self, p: float = 0.3, grid: int = 4, augment: GPUAugment | None = None, seed: int = 0):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be a probability in [0, 1], got {p}")
        if augment is not None and not isinstance(augment, GPUAugment):
            raise TypeError(f"augment must be a GPUAugment or None, got {type(augment).__name__}")
        self.p, self.grid, self.augment = p, grid, augment
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, batch, aug=None) -> tuple[torch.Tensor, torch.Tensor]:
        x, scores = batch[0], batch[1]
        query, _ = tobias_swap(x, scores, self.p, self.grid, generator=self.generator)  # only the query
        aug = self.augment or aug
        v = aug(torch.cat([query, x]))  # one batched call: (2B, C, r, r)
        return v[: len(x)], v[len(x):]


def pretrain_with_swap(images: torch.Tensor, scores: torch.Tensor, config: PretrainConfig, p: float = 0.3,
                       grid: int = 4, encoder: torch.nn.Module | None = None) -> tuple[torch.nn.Module, FitResult]:
    """Self-supervised pretraining (``config.method``, e.g. ``"moco"``) with the Tobias augmentation on
    the query view; ``p = 0`` is the plain baseline through exactly the same code.

    ``images``: ``(N, C, H, W)`` floats in [0, 1]; ``scores``: ``(N, g, g)``. Batched path (CUDA, or
    ``config.gpu_augment=True``): :class:`SwapViews` swaps each batch on its device, then augments.
    Otherwise :class:`TobiasTwoViewDataset` with the ``transforms.v2`` recipe. Both go through
    :func:`companion.ssl.pretrain` (its ``views=`` / ``two_view_dataset=`` hooks) and so through
    :func:`companion.train.fit` (checkpoints in ``config.checkpoint_dir``). ``encoder``: the network
    to train (default: ``config.encoder`` built by ``pretrain`` after seeding with ``config.seed``).
    Returns ``(method module, fit result)``; ``module.encoder`` is the trained backbone.
    Book section: *Tobias* "Background swap inside MoCo v2".
    """
    from ..ssl.pretrain import pretrain

    if not torch.is_tensor(images) or images.ndim != 4 or not images.is_floating_point():
        raise ValueError(f"images must be a float (N, C, H, W) batch, got {getattr(images, 'shape', type(images))}")
    if len(images) == 0:
        raise ValueError("images is empty")
    scores = torch.as_tensor(scores, dtype=torch.float32)
    if scores.shape != (len(images), grid, grid):
        raise ValueError(f"scores must be ({len(images)}, {grid}, {grid}), got {tuple(scores.shape)}")
    device = torch.device(config.device) if config.device else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    batched = config.gpu_augment if config.gpu_augment is not None else device.type == "cuda"
    if batched:
        views = SwapViews(p, grid, seed=config.seed)
        return pretrain(config.method, encoder, (images, scores), replace(config, gpu_augment=True), views=views)
    transform = ssl_augment(config.resolution, blur=config.blur, channels=images.shape[1], **config.augment)
    dataset = TobiasTwoViewDataset(images, scores, transform, p, grid)
    return pretrain(config.method, encoder, images, config, two_view_dataset=dataset)
