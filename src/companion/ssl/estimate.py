"""How long a full (or colab) preset of a self-supervised chapter takes on a Colab T4: the preset's own
epochs, images and runs (:func:`companion.runtime.estimate_hours`) at a throughput from the FLOPs of one
training step counted by PyTorch (``FlopCounterMode``: convolutions and matrix multiplies, forward and
backward) at an assumed :data:`companion.runtime.T4_FLOPS` (:func:`companion.runtime.items_per_second`).

Augmentation, data loading and element-wise work (fake quantization, normalization) are not counted, so
the estimates lean low; the basis string of every estimate says so.

Book sections: *SSQL* "Full run", *Efficient SSL* "Full run" (and the toolkit's own full run there).
"""

from __future__ import annotations

from torch import nn

from ..flops import count_flops, flops_per_image, memo, own_rng, train_step_flops  # noqa: F401 (the estimates' toolbox)
from ..runtime import T4_FLOPS, TimeEstimate, estimate_hours, items_per_second

#: Images of the training and test splits of the data sets the full presets train on.
SPLITS = {"cifar10": (50_000, 10_000), "cifar100": (50_000, 10_000)}
#: What every estimate of this module assumes, appended to its basis.
BASIS = (f"FLOPs counted by PyTorch at an assumed {T4_FLOPS / 1e12:g} TFLOP/s (runtime.T4_FLOPS); "
         "augmentation and element-wise work not counted")


def two_view_step_flops(method: nn.Module, resolution: int, channels: int = 3, batch: int = 2) -> float:
    """:func:`companion.flops.train_step_flops`, leaving torch's global generator as it was."""
    with own_rng():
        return train_step_flops(method, resolution, channels, batch)


def hours(items_per_epoch: int, epochs: float, flops_per_item: float, runs: int = 1) -> TimeEstimate:
    """:func:`~companion.runtime.estimate_hours` at the T4 throughput of ``flops_per_item``."""
    return estimate_hours(items_per_epoch, epochs, items_per_second(flops_per_item), runs=runs)


def total(parts: dict[str, TimeEstimate], what: str) -> TimeEstimate:
    """The sum of ``parts`` (``{name: estimate}``), its basis naming each part and :data:`BASIS`."""
    if not parts:
        raise ValueError("nothing to estimate: parts is empty")
    listed = "; ".join(f"{name}: {p.hours:.2f} h ({p.basis})" for name, p in parts.items())
    return TimeEstimate(sum(p.hours for p in parts.values()), f"{what}: {listed}; {BASIS}")
