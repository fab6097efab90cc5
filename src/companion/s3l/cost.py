r"""Cost accounting: FLOPs per image counted by PyTorch, and measured seconds per training step.

A convolution with a ``k x k`` kernel, ``C_in`` inputs and ``C_out`` outputs on an ``H x W`` map costs

.. math:: \mathrm{FLOPs} = 2\,k^2\,C_{in}\,C_{out}\,H\,W,

and every map of a convolutional trunk is the input side divided by a fixed stride, so the trunk's
FLOPs grow with the square of the input resolution :math:`r`: halving :math:`r` divides them by four.
The counts here come from ``torch.utils.flop_counter.FlopCounterMode`` (matrix multiplies and
convolutions, 2 FLOPs per multiply-add), never from a formula, so they follow the real network.

Book section: *S3L* "What a pixel costs".
"""

from __future__ import annotations

import copy
import statistics
import time

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ..results import plural


def count_flops(fn, *args) -> int:
    """FLOPs of everything ``fn(*args)`` runs (forward, and backward if ``fn`` calls it).
    Book section: *S3L* "What a pixel costs"."""
    with FlopCounterMode(display=False) as counter:
        fn(*args)
    return int(counter.get_total_flops())


def flops_per_image(model: nn.Module, resolution: int, channels: int = 3) -> int:
    """Forward FLOPs of ``model`` on one ``channels x resolution x resolution`` image (eval mode, no grad).

    Book section: *S3L* "What a pixel costs".
    """
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
    """FLOPs per image of one self-supervised training step at ``resolution``: the forward of both views
    through everything the method runs (online and momentum encoders, heads, the loss against the queue)
    and the backward pass. Counted on a copy of ``method`` (its queue and statistics are untouched) with a
    batch of ``batch`` images, then divided by ``batch``; the augmentation is not counted.

    Book section: *S3L* "What a pixel costs".
    """
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


def step_seconds(step, repeats: int = 5, warmup: int = 1, device: str | torch.device = "cpu", clock: str = "wall") -> float:
    """Median seconds of ``step()`` over ``repeats`` calls after ``warmup`` untimed ones (CUDA work is
    finished before each clock stops). ``clock="wall"`` measures elapsed time; ``"cpu"`` the CPU time of
    this process (on one thread, what the step would take on an idle core of a busy machine).
    Book section: *S3L* "What a pixel costs"."""
    if repeats < 1:
        raise ValueError(f"repeats must be positive, got {repeats}")
    if clock not in ("wall", "cpu"):
        raise ValueError(f"clock must be 'wall' or 'cpu', got {clock!r}")
    timer = time.perf_counter if clock == "wall" else time.process_time
    cuda = torch.device(device).type == "cuda"
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        if cuda:
            torch.cuda.synchronize()
        t = timer()
        step()
        if cuda:
            torch.cuda.synchronize()
        times.append(timer() - t)
    return statistics.median(times)


#: CIFAR-100's training images, what every epoch of the full preset goes over.
CIFAR_TRAIN_IMAGES = 50_000
_COUNTED: dict = {}  # FLOP counts by network and resolution: the same preset is estimated once


def full_run_hours(config=None, flops: float | None = None):
    """The full preset's time on a Colab T4, from its own epochs and the FLOPs counted here
    (:func:`train_step_flops` for each pretraining stage, three times :func:`flops_per_image` for each
    warm-up and fine-tuning epoch of every arm and the untrained network) at ``flops`` FLOP/s
    (default :data:`companion.runtime.T4_FLOPS`, an assumption). Returns a
    :class:`companion.runtime.TimeEstimate`; the chapter's stated time is this one (a test checks).

    Book section: *S3L* "Full run".
    """
    from ..runtime import T4_FLOPS, TimeEstimate, estimate_hours, items_per_second
    from .architecture import to_full_resnet
    from .config import full
    from .experiment import build_method

    config = config or full()
    flops = flops or T4_FLOPS
    network = repr((config.arch, config.width, config.small_stem, config.method, sorted(config.method_kwargs.items())))

    def counted(kind: str, resolution: int) -> float:
        key = (network, kind, resolution)
        if key not in _COUNTED:
            method = build_method(config)
            if kind == "pretrain":
                _COUNTED[key] = train_step_flops(method, resolution)
            else:
                net, _ = to_full_resnet(copy.deepcopy(method.encoder).cpu(), 100)
                _COUNTED[key] = 3 * flops_per_image(net, resolution)
        return _COUNTED[key]

    parts = []
    for arm, resolutions in config.arms.items():
        shares = config.fractions.get(arm) or (1 / len(resolutions),) * len(resolutions)
        for r, share in zip(resolutions, shares):
            rate = items_per_second(counted("pretrain", r), flops)
            parts.append(estimate_hours(CIFAR_TRAIN_IMAGES, config.epochs * share, rate))
    rate = items_per_second(counted("finetune", config.resolution), flops)
    networks = len(config.arms) + 1  # every arm's network and the untrained one
    parts.append(estimate_hours(CIFAR_TRAIN_IMAGES, config.warmup_epochs + config.finetune_epochs, rate, runs=networks))
    seeds = len(config.seeds)
    return TimeEstimate(seeds * sum(p.hours for p in parts),
                        f"{plural(seeds, 'seed')}; pretraining {sum(p.hours for p in parts[:-1]):.1f} h over "
                        f"{len(config.arms)} arms, warm-up and fine-tuning {parts[-1].hours:.1f} h for {networks} "
                        f"networks; FLOPs counted by PyTorch at an assumed {flops / 1e12:g} TFLOP/s")
