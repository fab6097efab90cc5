"""How long a full (or colab) PSOL run takes on a Colab T4: every network's forward pass counted in FLOPs
(:class:`torch.utils.flop_counter.FlopCounterMode`, on the meta device: no weights, no compute), a
training step taken as three forward passes, at the throughput assumed in :data:`runtime.T4_FLOPS`.

Book section: *PSOL* "Full run".
"""

from __future__ import annotations

from functools import lru_cache

import torch

from .. import backbones, runtime
from . import config as presets

#: CUB-200-2011's official split (``train_test_split.txt``): training and test images.
CUB_TRAIN, CUB_TEST = 5_994, 5_794

__all__ = ["CUB_TRAIN", "CUB_TEST", "forward_flops", "run_hours"]


@lru_cache(maxsize=None)
def forward_flops(kind: str, arch: str, size: int, stage: str | None = None, classes: int = 200) -> float:
    """FLOPs of one ``size``-px image through a network: ``kind`` ``"trunk"`` (``arch`` cut after
    ``stage``, DDT's descriptors), ``"regressor"`` (trunk + box head) or ``"classifier"`` (torchvision's
    ``arch`` with ``classes`` outputs)."""
    from torchvision import models

    from ..flops import count_flops
    from .regressor import BoxRegressor

    if kind not in ("trunk", "regressor", "classifier"):
        raise ValueError(f"kind must be 'trunk', 'regressor' or 'classifier', got {kind!r}")
    with torch.device("meta"):
        if kind == "classifier":
            net = getattr(models, arch)(weights=None, num_classes=classes)
        else:
            net = backbones.conv_trunk(arch, stage)
            if kind == "regressor":
                net = BoxRegressor(net, backbones.out_channels(net))
        x = torch.empty(1, 3, size, size)
    with torch.no_grad():
        return float(count_flops(net.eval(), x))


def run_hours(config: presets.PSOLConfig | None = None) -> runtime.TimeEstimate:
    """The estimated T4 time of a full-mode run of ``config`` (default: the full preset): DDT over the
    training and test images, the regressor's and the classifier's epochs over the training images, and
    the test pass. Book section: *PSOL* "Full run"."""
    cfg = config or presets.full()
    if cfg.mode != "full":
        raise ValueError(f"run_hours estimates a full-mode run (CUB on a GPU); got a {cfg.mode!r} config")
    n_train = min(CUB_TRAIN, cfg.limit_train or CUB_TRAIN)
    n_test = min(CUB_TEST, cfg.limit_test or CUB_TEST)
    ddt = forward_flops("trunk", cfg.ddt_arch, cfg.ddt_input_size, cfg.ddt_stage)
    reg = forward_flops("regressor", cfg.regressor_arch, cfg.regressor_size)
    clf = forward_flops("classifier", cfg.classifier_arch, cfg.eval_crop)
    test = forward_flops("regressor", cfg.regressor_arch, cfg.eval_crop) + clf
    what = "FLOPs counted per image, a training step = 3 forward passes, at runtime.T4_FLOPS (assumed)"
    parts = [
        ("DDT", runtime.estimate_hours(n_train + n_test, 1, runtime.items_per_second(ddt))),
        ("regressor", runtime.estimate_hours(n_train, cfg.regressor_epochs, runtime.items_per_second(3 * reg))),
        ("classifier", runtime.estimate_hours(n_train, cfg.classifier_epochs, runtime.items_per_second(3 * clf))),
        ("test", runtime.estimate_hours(n_test, 1, runtime.items_per_second(test))),
    ]
    return runtime.TimeEstimate(sum(p.hours for _, p in parts),
                                "; ".join(f"{name}: {p.basis}" for name, p in parts) + f"; {what}")
