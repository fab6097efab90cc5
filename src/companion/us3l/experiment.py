"""The US3L experiment: US3L vs naive slimmable SSL vs networks trained alone, evaluated at every width.

Book section: *US3L* "Quick run".
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

from .. import results
from ..runtime import seed_everything, torch_threads
from ..slimmable import SlimmableResNet, cost_at, recalibrate_bn, set_width
from ..ssl.evaluate import embedding_std, extract_features, knn_accuracy, linear_probe
from ..ssl.pretrain import PretrainConfig, pretrain
from .config import US3LConfig
from .model import SlimmableSSL
from .schedule import width_steps

#: how each trained network is labelled in the results
LABELS = {"us3l": "us3l", "us3l_online": "us3l_online", "naive": "naive", "naive_simclr": "naive_simclr",
          "fixed": "separate", "fixed_us3l": "separate_us3l"}
#: the premise claim the US3L-vs-naive claims at small widths rest on
PREMISE_ID = "premise_naive_degrades_w25"

CHAPTER = "us3l"


def load_data(config: US3LConfig):
    """``(train, train_labels, test, test_labels, channels)``; tensors for digits (the shared
    benchmark's split, :func:`companion.ssl.bench.bench_data`), Datasets for CIFAR-100."""
    if config.dataset == "digits":
        from ..ssl import bench

        d = bench.bench_data(config.resolution)  # the shared benchmark's seeded 1,200 / 597 split
        return d.train_x, d.train_y, d.test_x, d.test_y, 1
    if config.dataset == "scenes":
        from ..data import make_scenes

        scenes = make_scenes(config.extra.get("n_scenes", 1200), size=config.resolution, classes=4, seed=0)
        n_test = len(scenes) // 4
        return scenes.images[n_test:], scenes.labels[n_test:], scenes.images[:n_test], scenes.labels[:n_test], 3
    if config.dataset == "cifar100":
        from torchvision.transforms import v2

        from ..data import torchvision_dataset

        to_tensor = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True)])
        train = torchvision_dataset("cifar100", "train", transform=to_tensor)
        test = torchvision_dataset("cifar100", "test", transform=to_tensor)
        return train, torch.tensor(train.targets), test, torch.tensor(test.targets), 3
    raise ValueError(f"dataset must be 'digits', 'scenes' or 'cifar100', got {config.dataset!r}")


def _batches(data, batch_size: int, count: int | None, device):
    """The first ``count`` training batches (``None``: all of them, one pass)."""
    if torch.is_tensor(data):
        n = len(data) // batch_size if count is None else min(count, max(1, len(data) // batch_size))
        return [data[i * batch_size:(i + 1) * batch_size].to(device) for i in range(max(1, n))]
    n = len(data) if count is None else min(len(data), batch_size * count)
    loader = DataLoader(Subset(data, range(n)), batch_size=batch_size)
    return [x.to(device) for x, *_ in loader]


def total_steps(config: US3LConfig, n_train: int) -> int:
    """The optimizer steps of every slimmable run (``steps``, or ``epochs`` over ``n_train`` images)."""
    return config.steps if config.steps is not None else config.epochs * (n_train // config.batch_size)


def us3l_width_steps(config: US3LConfig, width: float, n_train: int) -> int:
    """How many steps US3L's schedule trains ``width``: what a network trained alone gets in mode
    ``fixed_us3l``, so that the two are compared with equal optimizer steps at that width."""
    return width_steps(width, total_steps(config, n_train), config.n_widths, 0, dynamic=config.dynamic)


def build(config: US3LConfig, channels: int, n_train: int, mode: str, fixed_width: float | None, seed: int):
    """A fresh slimmable encoder (the same weights for the same ``seed``) in a :class:`SlimmableSSL`.

    ``mode="us3l_online"`` is US3L with ``momentum=0``: the teacher is the online network itself.
    ``mode="naive"`` is the released naive baseline, without dynamic sampling as released;
    ``mode="fixed_us3l"`` a network trained alone for as many steps as US3L trains ``fixed_width``.
    Every mode gets the per-width penalty ``reg_lambda``; only US3L groups it (``reg_alpha``).
    """
    seed_everything(seed)
    encoder = SlimmableResNet(config.base_width, config.blocks, in_channels=channels, small_stem=config.small_stem,
                              divisor=config.divisor)
    steps = total_steps(config, n_train)
    if mode == "fixed_us3l":
        steps = us3l_width_steps(config, fixed_width, n_train)
    us3l = mode in ("us3l", "us3l_online")
    kind = "us3l" if us3l else "fixed" if mode == "fixed_us3l" else mode
    model = SlimmableSSL(encoder, steps, mode=kind, dim=config.dim, hidden=config.hidden,
                         temperature=config.temperature, momentum=0.0 if mode == "us3l_online" else config.momentum,
                         n_widths=config.n_widths, dynamic=config.dynamic and mode != "naive",
                         reg_lambda=config.reg_lambda, reg_alpha=config.reg_alpha if us3l else 0.0,
                         reg_bins=config.reg_bins, fixed_width=fixed_width, seed=seed,
                         projector_layers=config.projector_layers)
    return model, steps


def evaluate_width(model: SlimmableSSL, width: float, data, config: US3LConfig, device, *,
                   linear: bool = False, official_bn: bool = False) -> dict:
    """BN recalibration at ``width``, then kNN accuracy (%), the collapse diagnostic of the features
    and (``linear``) a linear probe's accuracy (%). ``official_bn`` adds ``knn_officialbn``: kNN after
    the released code's calibration (3 passes, momentum 0.1) instead of this book's (one pass, plain
    average). Book section: *US3L* "Quick run"."""
    train, train_y, test, test_y = data
    encoder = model.encoder.to(device)
    batches = _batches(train, config.batch_size, config.calibration_batches, device)
    out = {}
    if official_bn:
        recalibrate_bn(encoder, width, batches, reset=True, momentum=0.1, passes=3)
        f_tr = extract_features(encoder, train, batch_size=256, device=device)
        f_te = extract_features(encoder, test, batch_size=256, device=device)
        out["knn_officialbn"] = 100.0 * knn_accuracy(f_tr, train_y, f_te, test_y, k=config.knn_k,
                                                     temperature=config.knn_temperature)
    recalibrate_bn(encoder, width, batches)
    f_train = extract_features(encoder, train, batch_size=256, device=device)
    f_test = extract_features(encoder, test, batch_size=256, device=device)
    acc = knn_accuracy(f_train, train_y, f_test, test_y, k=config.knn_k, temperature=config.knn_temperature)
    out.update({"knn": 100.0 * acc, "std": embedding_std(f_test), "dim": int(f_test.shape[1])})
    if linear:
        out["linear"] = 100.0 * linear_probe(f_train, train_y, f_test, test_y, epochs=config.linear_epochs,
                                             device=device)
    set_width(encoder, 1.0)
    return out


def width_key(width: float) -> str:
    """Results keys name widths in percent (``25``, ``100``): dots would break dotted look-ups."""
    return str(int(round(width * 100)))


def train_one(config: US3LConfig, data, channels, mode, fixed_width, seed, device):
    """Pretrain one network; the optimizer has no weight decay (the model adds its own penalty)."""
    train = data[0]
    model, steps = build(config, channels, len(train), mode, fixed_width, seed)
    name = mode if fixed_width is None else f"{mode}_{fixed_width}"
    pcfg = PretrainConfig.full() if config.dataset == "cifar100" else PretrainConfig.quick()
    pcfg = pcfg.replace(
        resolution=config.resolution, steps=steps, epochs=None, batch_size=config.batch_size, lr=config.lr,
        optimizer=config.optimizer, weight_decay=0.0, seed=seed, device=device, augment=dict(config.augment),
        progress=config.progress, blur=False,  # the released CIFAR transform has no blur
        num_threads=config.threads if config.dataset != "cifar100" else None,
        checkpoint_dir=f"{config.checkpoint_dir}/{name}_seed{seed}" if config.checkpoint_dir else None,
        checkpoint_every=config.checkpoint_every,
    )
    views = None
    if config.dataset == "digits":
        from ..ssl import bench

        views = bench.bench_views(config.resolution, **config.augment)  # both views from one call
    began = time.perf_counter()
    model, fit_result = pretrain(model, None, train, pcfg, views=views)
    return model, time.perf_counter() - began, fit_result


def run(config: US3LConfig | None = None, record: bool = True) -> dict:
    """Train every mode for every seed, evaluate each width, record the means and the claims in
    ``results/us3l.json`` under the config's tier. Book section: *US3L* "Quick run"."""
    from .config import quick

    config = config or quick()
    if config.tier == "full" and config.epochs is not None:  # the presets run_hours can estimate
        announce(config)
    began = time.perf_counter()
    with torch_threads(config.threads):
        out, per_seed = _run(config)
    if record:
        _record(config, out, per_seed, time.perf_counter() - began)
    return out


def announce(config: US3LConfig) -> str:
    """Print what a full-tier run (the full or colab preset) will do: its estimated T4 time
    (:func:`~companion.us3l.estimate.run_hours`), what to expect and where it checkpoints.
    Book section: *US3L* "Full run"."""
    from .. import runtime
    from .estimate import run_hours

    trained = ", ".join(LABELS[m] for m in config.modes)
    what = (f"US3L on {config.dataset}: slimmable ResNet (base width {config.base_width}) trained as {trained}, "
            f"{config.epochs} epochs each, {results.plural(len(config.seeds), 'seed')}")
    widths = ", ".join(f"{w:g}" for w in config.eval_widths)
    expect = (f"kNN accuracy at widths {widths} for each network; US3L above naive slimmable SSL at each width "
              "(claims us3l_vs_naive_w*, with 2 seeds or more) and above the untrained network (sanity_knn). The "
              "paper's per-width numbers were not found: the direction is its claim, the size is not verified.")
    return runtime.announce(what, run_hours(config), expect, config.checkpoint_dir)


def _widths_alone(config: US3LConfig, mode: str, n_train: int) -> tuple:
    """The widths ``mode`` trains a network alone at (``(None,)`` for a slimmable mode). ``fixed_us3l``
    skips widths US3L trains at every step (the ``fixed`` network is already that one) or never."""
    if mode == "fixed":
        return tuple(config.separate_widths)
    if mode == "fixed_us3l":
        total = total_steps(config, n_train)
        return tuple(w for w in config.separate_widths if 0 < us3l_width_steps(config, w, n_train) < total)
    return (None,)


def _run(config: US3LConfig):
    device = config.device or ("cuda" if torch.cuda.is_available() else "cpu")
    train, train_y, test, test_y, channels = load_data(config)
    data = (train, train_y, test, test_y)
    rows: dict[str, dict[str, list]] = {}
    seconds: dict[str, list] = {}

    def keep(label, w, values):
        for key, value in values.items():
            rows.setdefault(label, {}).setdefault(f"{key}@{width_key(w)}", []).append(value)

    for seed in config.seeds:
        # reference: the same network, untrained, evaluated the same way at every width
        model, _ = build(config, channels, len(train), "naive", None, seed)
        for w in config.eval_widths:
            keep("random init", w, evaluate_width(model, w, data, config, device, linear=w == 1.0))
        for mode in config.modes:
            for fixed in _widths_alone(config, mode, len(train)):
                model, took, _ = train_one(config, data, channels, mode, fixed, seed, device)
                label = LABELS[mode]
                seconds.setdefault(label, []).append(took)
                for w in ([fixed] if fixed is not None else config.eval_widths):
                    keep(label, w, evaluate_width(model, w, data, config, device, linear=w == 1.0,
                                                  official_bn=config.official_bn and mode == "us3l"))
    summary = {label: {k: float(np.mean(v)) for k, v in cols.items()} for label, cols in rows.items()}
    spread = {label: {k: float(np.std(v)) for k, v in cols.items() if k.startswith(("knn", "linear"))}
              for label, cols in rows.items()}
    probe = SlimmableResNet(config.base_width, config.blocks, in_channels=channels, small_stem=config.small_stem,
                            divisor=config.divisor)
    costs = {width_key(w): cost_at(probe, w, config.resolution, channels) for w in config.eval_widths}
    out = {"mean": summary, "std_over_seeds": spread, "costs": costs, "seeds": list(config.seeds),
           "train_seconds": {k: float(np.mean(v)) for k, v in seconds.items()}}
    return out, rows


def claims(config: US3LConfig, per_seed: dict) -> list[dict]:
    """The chapter's claims, each paired over seeds: the premise (a network trained alone at width
    0.25 beats the naive baseline as released there by at least ``premise_margin``, with as many steps
    at that width), the sanity checks (trained US3L minus the same network untrained, full width),
    US3L against the released naive baseline (at widths below 0.75 resting on the premise) and against
    networks trained alone with as many steps at that width as US3L gives it, width by width, and US3L
    with against without its momentum teacher. Book section: *US3L* "Claims, intervals and verdicts"."""
    tier, out = config.tier, []
    if len(config.seeds) < 2 or "us3l" not in per_seed:
        return out  # an interval needs two seeds at least; every claim is about US3L

    def add(cid, statement, metric, a, b, **kw):
        out.append(results.claim(cid, statement, metric, tier, a, b, **kw))

    premises = ()
    alone = per_seed.get("separate", {})
    if "naive" in per_seed and "knn@25" in alone:
        m = config.premise_margin
        add(PREMISE_ID, f"a network trained alone at width 0.25 beats the naive slimmable baseline (as released) "
            f"at width 0.25 by at least {m:g} points, with as many optimizer steps at that width",
            "kNN accuracy at width 0.25, trained alone minus naive slimmable (points)", alone["knn@25"],
            per_seed["naive"]["knn@25"], margin=m)
        premises = (PREMISE_ID,)
    us, rand = per_seed["us3l"], per_seed["random init"]
    add("sanity_knn", "US3L pretraining beats the untrained network (full width, kNN)",
        "kNN accuracy at width 1.0, US3L minus untrained (points)", us["knn@100"], rand["knn@100"])
    add("sanity_linear", "US3L pretraining beats the untrained network (full width, linear probe)",
        "linear-probe accuracy at width 1.0, US3L minus untrained (points)", us["linear@100"], rand["linear@100"])
    for w in config.eval_widths:
        k = width_key(w)
        if "naive" in per_seed:
            add(f"us3l_vs_naive_w{k}", f"US3L beats the naive slimmable baseline (as released) at width {w}",
                f"kNN accuracy at width {w}, US3L minus naive (points)", us[f"knn@{k}"],
                per_seed["naive"][f"knn@{k}"], premises=premises if w < 0.75 else ())
        reference = _alone_with_us3l_steps(per_seed, k)
        if reference is not None:
            add(f"us3l_vs_separate_w{k}", f"US3L beats a network trained alone at width {w} with as many steps "
                "at that width", f"kNN accuracy at width {w}, US3L minus trained alone (points)", us[f"knn@{k}"],
                reference)
        if "us3l_online" in per_seed:
            add(f"teacher_w{k}", f"the momentum teacher helps US3L at width {w}",
                f"kNN accuracy at width {w}, US3L minus US3L without momentum teacher (points)",
                us[f"knn@{k}"], per_seed["us3l_online"][f"knn@{k}"])
    return out


def _alone_with_us3l_steps(per_seed: dict, k: str):
    """Per-seed kNN of the network trained alone at width ``k`` with as many steps as US3L trains that
    width: ``separate_us3l`` where US3L trains it on fewer than all steps, else ``separate`` (full width,
    trained every step); ``None`` when no such network ran (never one with unequal steps)."""
    if f"knn@{k}" in per_seed.get("separate_us3l", {}):
        return per_seed["separate_us3l"][f"knn@{k}"]
    if k == "100" and f"knn@{k}" in per_seed.get("separate", {}):
        return per_seed["separate"][f"knn@{k}"]
    return None


def _record(config: US3LConfig, out: dict, per_seed: dict, wall: float) -> None:
    device = config.device or ("cuda" if torch.cuda.is_available() else "cpu")
    steps = f"{config.steps} steps" if config.steps else f"{config.epochs} epochs"
    scale = (f"{config.tier}: {config.dataset} at {config.resolution} px, slimmable ResNet base width "
             f"{config.base_width}, {steps} of batch {config.batch_size}, {results.plural(len(config.seeds), 'seed')}, "
             f"kNN (k={config.knn_k}) after BN recalibration, {'CPU' if device == 'cpu' else 'GPU'}")
    metrics = {k: v for k, v in out.items() if k != "train_seconds"}
    results.write(CHAPTER, config.tier, metrics, scale, claims=claims(config, per_seed), seeds=config.seeds,
                  wall_s=wall, timings={"train_seconds": out["train_seconds"]}, preset=config.tier,
                  config=config)
