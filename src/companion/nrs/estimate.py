"""How long a full (or colab) NRS run takes on a Colab T4 with its two CPU cores.

Three parts, each from the preset's own rows, epochs, rounds and trees:

- the tabular networks (NRS and the MLP) on the GPU: their forward pass counted in FLOPs, a training
  step taken as three forward passes at :data:`runtime.T4_FLOPS`, but no step faster than
  :data:`STEP_S` (networks this small wait on kernel launches and Python, not on arithmetic);
- the random forest and gradient boosting on the CPU cores, from their work (rows x log2(rows) x
  sqrt(features) per tree; rows x features per boosting tree) at the rates :data:`RF_RATE` and
  :data:`HGB_RATE` measured on one CPU core with scikit-learn;
- the CUB-200 fine-tuning of each head: the ResNet's FLOPs per image at :data:`runtime.T4_FLOPS`.

Book section: *NRS* "Full run".
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch

from .. import runtime

#: The paper's data sets on OpenML (their data set descriptions): rows, features, classes.
OPENML_SHAPES = {"letter": (20_000, 16, 26), "satimage": (6_430, 36, 6), "usps": (9_298, 256, 10),
                 "mnist": (70_000, 784, 10), "gisette": (7_000, 5_000, 2)}
#: CUB-200-2011's official split: training and test images.
CUB_TRAIN, CUB_TEST = 5_994, 5_794
#: Assumed shortest optimizer step of a tabular network on a GPU, in seconds (launch- and Python-bound).
STEP_S = 3e-3
#: Measured on one core (scikit-learn 1.x, synthetic tables of the paper's shapes): random-forest work
#: (rows x log2(rows) x sqrt(features) per tree) and gradient-boosting work (rows x features per tree)
#: per second.
RF_RATE, HGB_RATE = 2e7, 5e7
#: CPU cores of a Colab runtime (the forest uses all of them, ``n_jobs=-1``; boosting's OpenMP too).
COLAB_CORES = 2
#: scikit-learn's default boosting iterations (``max_iter``), an upper bound where early stopping cuts it.
HGB_ITERS = 100

__all__ = ["OPENML_SHAPES", "CUB_TRAIN", "CUB_TEST", "STEP_S", "RF_RATE", "HGB_RATE", "run_hours"]


def _shape(name: str) -> tuple[int, int, int]:
    if name in OPENML_SHAPES:
        return OPENML_SHAPES[name]
    from .tabular import load_table  # bundled and synthetic tables: read them, they are small

    table = load_table(name)
    return len(table.y), table.X.shape[1], len(set(table.y.tolist()))


@lru_cache(maxsize=None)
def _net_flops(kind: str, params: tuple, d: int, k: int) -> float:
    from ..flops import count_flops
    from .tabular import make_model

    net = make_model(kind, {**dict(params), "device": "cpu"})._make_module(d, k, 0).eval()
    with torch.no_grad():
        return count_flops(net, torch.zeros(2, d)) / 2


@lru_cache(maxsize=None)
def _cub_flops(arch: str, head: str, size: int, n_mul: int, n_per_group: int) -> float:
    from torch import nn
    from torchvision import models

    from ..flops import count_flops
    from .cnn import NRSHead

    with torch.device("meta"):  # the trunk on the meta device (no weights); the head, which refuses it, on the CPU
        trunk = getattr(models, arch)(weights=None)
        d, trunk.fc = trunk.fc.in_features, nn.Identity()
        x = torch.empty(1, 3, size, size)
    top = NRSHead(d, 200, 3, n_mul, n_per_group) if head == "nrs" else nn.Linear(d, 200)
    with torch.no_grad():
        body = count_flops(trunk.eval(), x)
        tail = count_flops(top.eval(), torch.zeros(2, d))  # two rows: BatchNorm; half of it is one image's
    return float(body + tail / 2)


def _tabular(cfg) -> list[tuple[str, runtime.TimeEstimate]]:
    parts = []
    for name in cfg.datasets:
        n, d, k = _shape(name)
        n_train = n - 10_000 if name == "mnist" else math.floor(n * (1 - cfg.test_size))
        params = cfg.model_params(name)
        for kind in ("nrs", "mlp"):
            p = {key: v for key, v in params[kind].items() if key not in ("device", "n_threads")}
            batch, epochs = p.get("batch_size", 128), p.get("max_epochs", 50)
            flop_rate = runtime.items_per_second(3 * _net_flops(kind, tuple(sorted(p.items())), d, k))
            parts.append((f"{name} {kind}", runtime.estimate_hours(n_train, epochs, min(flop_rate, batch / STEP_S),
                                                                   runs=cfg.rounds)))
        trees = params["rf"].get("n_estimators", 100)
        rf_work = trees * n_train * math.log2(n_train) * math.sqrt(d)
        hgb_work = params["hgb"].get("max_iter", HGB_ITERS) * (k if k > 2 else 1) * n_train * d
        # the same formula, counted in "work per row": a row's share at the measured rate on Colab's cores
        parts.append((f"{name} forest", runtime.estimate_hours(n_train, 1, COLAB_CORES * RF_RATE * n_train / rf_work,
                                                               runs=cfg.rounds)))
        parts.append((f"{name} boosting", runtime.estimate_hours(
            n_train, 1, COLAB_CORES * HGB_RATE * n_train / hgb_work, runs=cfg.rounds)))
    return parts


def run_hours(config=None) -> runtime.TimeEstimate:
    """The estimated Colab T4 time of a full-mode run of ``config`` (default: the full preset): the
    tabular part (networks, forest, boosting on every data set and round) and CUB-200 (every head).

    Book section: *NRS* "Full run".
    """
    from . import config as presets

    cfg = config or presets.full()
    parts = _tabular(cfg)
    c = cfg.cub
    if c is not None:
        for head in c.heads:
            f = _cub_flops(c.arch, head, c.image_size, c.n_mul, c.n_per_group)
            per_epoch = CUB_TRAIN // c.batch_size  # steps (full batches) an epoch
            epochs = c.epochs if c.max_steps is None else min(c.epochs, c.max_steps / per_epoch)
            parts.append((f"CUB {head} head", runtime.estimate_hours(per_epoch * c.batch_size, epochs,
                                                                     runtime.items_per_second(3 * f))))
            parts.append((f"CUB {head} test", runtime.estimate_hours(CUB_TEST, 2, runtime.items_per_second(f))))
    hours = sum(p.hours for _, p in parts)
    tab = sum(p.hours for name, p in parts if not name.startswith("CUB"))
    basis = (f"tabular {tab:.2f} h, CUB {hours - tab:.2f} h; networks: FLOPs counted, a step = 3 forward passes at "
             f"runtime.T4_FLOPS (assumed), at least {STEP_S * 1e3:g} ms a step (assumed); forest and boosting: "
             f"their work at rates measured on one CPU core, {COLAB_CORES} cores; "
             + "; ".join(f"{name}: {p.basis}" for name, p in parts))
    return runtime.TimeEstimate(hours, basis)
