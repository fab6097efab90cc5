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

from ..flops import count_flops, flops_per_image, train_step_flops  # noqa: F401 (the chapter's names for them)
from ..results import plural


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


def run_hours(config=None, flops: float | None = None):
    """A full or colab preset's time on a Colab T4 (default: :func:`~companion.s3l.config.full`), from its
    own epochs and the FLOPs counted here (:func:`train_step_flops` for each pretraining stage, three times
    :func:`flops_per_image` for each warm-up and fine-tuning epoch of every arm and the untrained network)
    at ``flops`` FLOP/s (default :data:`companion.runtime.T4_FLOPS`, an assumption). Returns a
    :class:`companion.runtime.TimeEstimate`; the chapter's stated times are these (a test checks).
    ``full_run_hours`` is the same function under its older name.

    Book section: *S3L* "Full run".
    """
    from ..runtime import T4_FLOPS, TimeEstimate, estimate_hours, items_per_second
    from .architecture import to_full_resnet
    from .config import full
    from .experiment import build_method

    config = config or full()
    if config.budget != "epochs" or not config.warmup_epochs or not config.finetune_epochs:
        raise ValueError("run_hours estimates presets counted in epochs over CIFAR-100 (budget='epochs', "
                         f"warmup_epochs and finetune_epochs set), got budget={config.budget!r}, "
                         f"warmup_epochs={config.warmup_epochs!r}, finetune_epochs={config.finetune_epochs!r}")
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
    from .experiment import premise_resolutions

    premise = 0.0  # the premise's supervised networks, one per resolution, for premise_steps batches each
    for r in premise_resolutions(config):
        rate = items_per_second(counted("finetune", r), flops)
        premise += estimate_hours(config.premise_steps * config.finetune_batch_size, 1, rate).hours
    seeds = len(config.seeds)
    premise_seeds = len(config.seeds if config.premise_seeds is None else config.premise_seeds)
    return TimeEstimate(seeds * sum(p.hours for p in parts) + premise_seeds * premise,
                        f"{plural(seeds, 'seed')}; per seed, pretraining {sum(p.hours for p in parts[:-1]):.2g} h "
                        f"over {len(config.arms)} arms ({config.epochs} epochs each), warm-up and fine-tuning "
                        f"{parts[-1].hours:.2g} h for {networks} networks "
                        f"({config.warmup_epochs} + {config.finetune_epochs} epochs), premise networks "
                        f"{premise:.2g} h; FLOPs counted by PyTorch at an "
                        f"assumed {flops / 1e12:g} TFLOP/s")


full_run_hours = run_hours  # the older name
