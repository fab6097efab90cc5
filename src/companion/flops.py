r"""FLOPs counted by PyTorch: what one image, or one training step, costs a network.

A convolution with a ``k x k`` kernel, ``C_in`` inputs and ``C_out`` outputs on an ``H x W`` map costs

.. math:: \mathrm{FLOPs} = 2\,k^2\,C_{in}\,C_{out}\,H\,W,

so a convolutional trunk's FLOPs grow with the square of the input resolution. The counts here come
from ``torch.utils.flop_counter.FlopCounterMode`` (matrix multiplies and convolutions, 2 FLOPs per
multiply-add), never from a formula, so they follow the real network. Every chapter's stated T4 time
divides such a count into an assumed throughput (:func:`companion.runtime.items_per_second`).

Book sections: *S3L* "What a pixel costs"; every chapter's "Full run".
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .runtime import torch_threads


def count_flops(fn, *args) -> int:
    """FLOPs of everything ``fn(*args)`` runs (forward, and backward if ``fn`` calls it), counted on one
    CPU thread (tiny probe batches gain nothing from more, and on a busy machine lose much)."""
    with torch_threads(1), FlopCounterMode(display=False) as counter:
        fn(*args)
    return int(counter.get_total_flops())


def flops_per_image(model: nn.Module, resolution: int, channels: int = 3) -> int:
    """Forward FLOPs of ``model`` on one ``channels x resolution x resolution`` image (eval mode, no grad;
    a model on the ``meta`` device works too: only shapes are needed)."""
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution <= 0:
        raise ValueError(f"resolution must be a positive integer, got {resolution!r}")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return count_flops(model, torch.zeros(1, channels, resolution, resolution, device=device))
    finally:
        model.train(was_training)


def train_step_flops(method: nn.Module, resolution: int, channels: int = 3, batch: int = 2) -> float:
    """FLOPs per image of one two-view self-supervised training step at ``resolution``: the forward of both
    views through everything the method runs (online and momentum encoders, heads, the loss) and the
    backward pass. Counted on a copy of ``method`` (its queue and statistics are untouched) with a batch of
    ``batch`` images, then divided by ``batch``; the augmentation is not counted. The two views are drawn
    from torch's global generator (wrap the call in :func:`own_rng` to leave it as it was)."""
    if batch < 2:
        raise ValueError(f"batch must be at least 2 (batch norm needs two samples), got {batch}")
    probe = copy.deepcopy(method)
    probe.train()
    device = next(probe.parameters()).device
    v1 = torch.rand(batch, channels, resolution, resolution, device=device)
    v2 = torch.rand(batch, channels, resolution, resolution, device=device)

    def step():
        probe(v1, v2)["loss"].backward()

    return count_flops(step) / batch


def own_rng():
    """A block whose random draws (building probe networks, dummy images) leave torch's global generator
    as it was: asking for an estimate must not change what a seeded run that follows computes."""
    return torch.random.fork_rng(devices=[])


_counted: dict = {}


def memo(key: tuple, compute) -> float:
    """``compute()``, once per ``key`` in a process: counting a ResNet-18 step takes seconds on a CPU."""
    key = repr(key)
    if key not in _counted:
        _counted[key] = compute()
    return _counted[key]
