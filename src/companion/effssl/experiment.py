"""The experiment: the single-branch ablation ladder (NPID; + feature calibration; + the corrected bank
update; + SqrtKL, the full method) and two-view baselines (SimSiam, MoCo v2) trained to their own
recipes, with the untrained encoder as the floor. kNN accuracy along each run (the convergence curve),
a linear probe at the end, the training cost of every run (images, encoder passes, wall time), and the
claims: the full method beats the untrained encoder (``sanity_knn``, ``sanity_linear``), each addition
beats the rung before it, each baseline learns (``premise_<baseline>_learns``) and the full method is
as accurate as each baseline at its lower cost (``sqrtkl_vs_<baseline>``), paired over seeds.

Book section: *Efficient SSL* "Quick run".
"""

from __future__ import annotations

import contextlib
import time

import torch
from threadpoolctl import threadpool_limits
from torch import nn

from .. import results
from ..runtime import seed_everything, torch_threads
from ..ssl.augment import GPUAugment
from ..ssl.encoders import build_encoder
from ..ssl.evaluate import extract_features, knn_accuracy, linear_probe
from ..ssl.bench import RECIPES
from ..ssl.methods import BYOL, METHODS as SSL_METHODS, MoCo, SimCLR, SimSiam, SSLMethod
from ..train import FitConfig, fit, load_checkpoint
from .config import BASELINES, FULL_METHOD, VARIANTS, EffSSLConfig
from .model import SingleBranchID

CHAPTER = "effssl"


def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def load_data(config: EffSSLConfig, dataset: str):
    """``(train, train_labels, test, test_labels)`` as tensors: images ``(N, 3, H, W)`` float in [0, 1]."""
    if dataset == "scenes":
        from ..data import make_scenes

        scenes = make_scenes(config.n_train + config.n_test, size=config.resolution, classes=config.classes,
                             seed=config.data_seed, scale=tuple(config.scale), clutter=config.clutter,
                             background_styles=config.background_styles,
                             class_background=0.0)
        n = config.n_train
        return scenes.images[:n], scenes.labels[:n], scenes.images[n:], scenes.labels[n:]
    if dataset == "digits":  # the shared benchmark's split (the same digits in every SSL chapter)
        from ..ssl.bench import bench_data

        d = bench_data(config.resolution, config.n_train)
        return d.train_x, d.train_y, d.test_x[:config.n_test], d.test_y[:config.n_test]
    if dataset in ("cifar10", "cifar100"):
        from ..data import torchvision_dataset

        out = []
        for split in ("train", "test"):
            ds = torchvision_dataset(dataset, split)
            out += [torch.from_numpy(ds.data).permute(0, 3, 1, 2).float().div_(255), torch.tensor(ds.targets)]
        return tuple(out)
    raise ValueError(f"dataset must be 'scenes', 'digits', 'cifar10' or 'cifar100', got {dataset!r}")


class Curve:
    """Training wall time (evaluation excluded) and kNN accuracy at chosen steps.

    ``state_dict``/``load_state_dict`` let a resumed run continue the clock and the curve.
    """

    def __init__(self, evaluate, eval_steps, device):
        self.evaluate, self.eval_steps, self.device = evaluate, set(eval_steps), device
        self.elapsed, self.points, self._mark = 0.0, [], None

    def start(self) -> None:
        _sync(self.device)
        self._mark = time.perf_counter()

    def tick(self) -> None:
        _sync(self.device)
        now = time.perf_counter()
        if self._mark is not None:
            self.elapsed += now - self._mark
        self._mark = now

    def on_step(self, step: int, encoder: nn.Module) -> None:
        self.tick()
        if step in self.eval_steps:
            self.points.append((step, self.elapsed, self.evaluate(encoder)))
            self.start()  # evaluation time is not training time

    def state_dict(self) -> dict:
        return {"elapsed": self.elapsed, "points": list(self.points)}

    def load_state_dict(self, state: dict) -> None:
        self.elapsed, self.points = float(state["elapsed"]), [tuple(p) for p in state["points"]]

    def as_dict(self) -> dict:
        return {"steps": [p[0] for p in self.points], "seconds": [p[1] for p in self.points],
                "knn": [p[2] for p in self.points]}


class Tracked(nn.Module):
    """A method plus its :class:`Curve`: ``forward`` passes through, ``on_step`` updates the method (bank,
    EMA) and then the curve; the curve rides in the ``state_dict`` (extra state), so checkpoints keep it."""

    def __init__(self, method: nn.Module, curve: Curve):
        super().__init__()
        self.method, self.curve = method, curve

    @property
    def encoder(self) -> nn.Module:
        return self.method.encoder

    def forward(self, *args):
        return self.method(*args)

    def on_step(self, step: int, total_steps: int) -> None:
        self.method.on_step(step, total_steps)
        self.curve.on_step(step + 1, self.method.encoder)

    def get_extra_state(self):
        return self.curve.state_dict()

    def set_extra_state(self, state) -> None:
        self.curve.load_state_dict(state)


def knn_percent(encoder: nn.Module, data, config: EffSSLConfig, device) -> float:
    """kNN accuracy (%) of the encoder's (backbone) features: train images as the labelled set, test as queries."""
    train, train_y, test, test_y = data
    f_train = extract_features(encoder, train, batch_size=512, device=device)
    f_test = extract_features(encoder, test, batch_size=512, device=device)
    return 100.0 * knn_accuracy(f_train, train_y, f_test, test_y, k=config.knn_k, temperature=config.knn_temperature)


def bank_knn_percent(model: SingleBranchID, data, config: EffSSLConfig, device) -> float:
    """kNN accuracy (%) with the memory bank as the labelled set: no pass over the training images at all,
    only the test images go through the network (encoder + head).

    Book section: *Efficient SSL* "Feature calibration".
    """
    _, train_y, test, test_y = data
    f_test = extract_features(nn.Sequential(model.encoder, model.head), test, batch_size=512, device=device)
    return 100.0 * knn_accuracy(model.bank.weight.float().cpu(), train_y, f_test, test_y, k=config.knn_k,
                                temperature=config.knn_temperature)


def linear_percent(encoder: nn.Module, data, config: EffSSLConfig, device) -> float:
    """Linear-probe accuracy (%) on the encoder's frozen features (train images to fit, test to score).

    Book section: *Efficient SSL* "Quick run".
    """
    train, train_y, test, test_y = data
    f_train = extract_features(encoder, train, batch_size=512, device=device)
    f_test = extract_features(encoder, test, batch_size=512, device=device)
    return 100.0 * linear_probe(f_train, train_y, f_test, test_y, epochs=config.linear_epochs,
                                seed=config.seed, device=device)


def augmentation(config: EffSSLConfig) -> GPUAugment:
    """The one-view augmentation shared by every method: random resized crop, colour jitter and
    grayscale (3-channel images only), horizontal flip with probability ``config.flip``."""
    return GPUAugment(config.resolution, scale=tuple(config.crop_scale), blur=config.blur, p_flip=config.flip)


def total_steps(config: EffSSLConfig, n_train: int) -> int:
    return config.steps if config.steps is not None else config.epochs * (n_train // config.batch_size)


def eval_steps(total: int, points: int) -> list[int]:
    """``points`` steps spread evenly over ``1..total``, the last one at ``total``."""
    return sorted({max(1, round(total * k / points)) for k in range(1, points + 1)})


def build_variant(config: EffSSLConfig, variant: str, n_train: int, channels: int = 3) -> SingleBranchID:
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose from {tuple(VARIANTS)}")
    v = VARIANTS[variant]
    seed_everything(config.seed)  # every variant starts from the same encoder weights
    encoder = build_encoder(config.encoder, in_channels=channels, **config.encoder_kwargs)
    return SingleBranchID(
        encoder, n_train, dim=config.dim, hidden=config.hidden, head_layers=config.head_layers,
        temperature=config.temperature, negatives=config.negatives, update=v["update"], momentum=config.bank_momentum,
        bank_step=config.bank_step, sqrt_weight=config.sqrt_weight if v["sqrt"] else 0.0,
        sqrt_temperature=config.sqrt_temperature, cutmix_alpha=config.cutmix_alpha, seed=config.seed,
    )


def _checkpoint(config: EffSSLConfig, dataset: str, name: str) -> str | None:
    return f"{config.checkpoint_dir}/{dataset}/{name}_seed{config.seed}" if config.checkpoint_dir else None


def train_variant(config: EffSSLConfig, variant: str, data, dataset: str, device) -> tuple[SingleBranchID, Curve, int]:
    """Train one single-branch variant through :func:`companion.train.fit`; returns ``(model, curve, steps)``.

    The clock starts before feature calibration, which counts as training time.
    """
    train = data[0]
    n = len(train)
    model = build_variant(config, variant, n, channels=train.shape[1]).to(device)
    steps = total_steps(config, n)
    curve = Curve(lambda enc: knn_percent(enc, data, config, device), eval_steps(steps, config.eval_points), device)
    tracked = Tracked(model, curve)
    aug = augmentation(config)
    x = train.to(device)
    ckpt = _checkpoint(config, dataset, variant)
    curve.start()
    if VARIANTS[variant]["calibrate"] and (ckpt is None or load_checkpoint(ckpt) is None):
        seed_everything(config.seed)
        model.calibrate_(x, batch_size=config.batch_size, transform=aug)
    fit_cfg = FitConfig(
        steps=steps, batch_size=config.batch_size, lr=config.lr, optimizer=config.optimizer,
        weight_decay=config.weight_decay, seed=config.seed, checkpoint_dir=ckpt, checkpoint_every=config.checkpoint_every,
        progress=config.progress, device=str(device),
    )
    result = fit(tracked, (x, torch.arange(n, device=device)), lambda m, b: m(aug(b[0]), b[1]), fit_cfg,
                 after_step=lambda core, step: core.on_step(step, steps))
    return model, curve, result.steps


def baseline_recipe(config: EffSSLConfig, method: str) -> tuple[float, float, dict]:
    """``(lr, weight_decay, method_kwargs)`` of a two-view baseline: SimSiam's from the config's
    ``simsiam_*`` fields (the full preset sets the CIFAR recipe), the others from the shared benchmark's
    :data:`companion.ssl.bench.RECIPES` with the config's weight decay."""
    if method not in BASELINES:
        raise ValueError(f"method must be a two-view baseline {BASELINES}, got {method!r}")
    if method == "simsiam":
        wd = config.weight_decay if config.simsiam_weight_decay is None else config.simsiam_weight_decay
        return config.simsiam_lr or config.lr, wd, dict(config.simsiam_kwargs)
    recipe = RECIPES[method]
    return recipe["lr"], config.weight_decay, dict(recipe["method_kwargs"])


def build_baseline(config: EffSSLConfig, method: str, n_train: int, channels: int = 3) -> SSLMethod:
    """A two-view baseline around the same initial encoder as every single-branch variant of the seed."""
    _, _, kwargs = baseline_recipe(config, method)
    seed_everything(config.seed)  # the same encoder weights as every single-branch variant
    model = SSL_METHODS[method](build_encoder(config.encoder, in_channels=channels, **config.encoder_kwargs), **kwargs)
    model.check_dataset_size(n_train)
    return model


def encoder_views(model: nn.Module) -> tuple[int, int]:
    """``(with_backward, forward_only)``: encoder passes per training image per step. One view with a
    backward pass for the single branch; two for SimSiam and SimCLR; MoCo v2 one query (two when
    symmetric) plus as many momentum-encoder keys; BYOL two online views plus two target passes."""
    if isinstance(model, SingleBranchID):
        return 1, 0
    if isinstance(model, MoCo):
        views = 2 if model.symmetric else 1
        return views, views
    if isinstance(model, BYOL):
        return 2, 2
    if isinstance(model, (SimSiam, SimCLR)):
        return 2, 0
    raise TypeError(f"no encoder-pass count for {type(model).__name__}")


def _baseline_fit(config: EffSSLConfig, method: str, tracked: nn.Module, train: torch.Tensor, device, steps: int,
                  checkpoint: str | None, time_budget: float | None = None):
    """A baseline's two views of every image through :func:`companion.train.fit`, with the same
    augmentation and batch size as the single-branch runs and the baseline's own recipe."""
    aug = augmentation(config)
    lr, wd, _ = baseline_recipe(config, method)
    cfg = FitConfig(
        steps=steps, batch_size=config.batch_size, lr=lr, optimizer=config.optimizer, weight_decay=wd,
        seed=config.seed, checkpoint_dir=checkpoint,
        checkpoint_every=config.checkpoint_every, progress=config.progress, time_budget_s=time_budget, device=str(device),
    )
    return fit(tracked, (train.to(device),), lambda m, b: m(aug(b[0]), aug(b[0])), cfg,
               after_step=lambda core, step: core.on_step(step, steps))


def train_baseline(config: EffSSLConfig, method: str, data, dataset: str, device, steps: int,
                   time_budget: float | None = None):
    """A two-view baseline from :mod:`companion.ssl` (same encoder, augmentation, batch size) for ``steps``
    steps; returns ``(model, curve, steps_done)``."""
    model = build_baseline(config, method, len(data[0]), data[0].shape[1])
    curve = Curve(lambda enc: knn_percent(enc, data, config, device), eval_steps(steps, config.eval_points), device)
    curve.start()
    result = _baseline_fit(config, method, Tracked(model, curve), data[0], device, steps,
                           _checkpoint(config, dataset, method), time_budget)
    if result.stopped_early and (not curve.points or curve.points[-1][0] != result.steps):
        curve.points.append((result.steps, curve.elapsed, knn_percent(model.encoder, data, config, device)))
    return model, curve, result.steps


def baseline_seconds_per_step(config: EffSSLConfig, method: str, data, device, probe_steps: int = 30) -> float:
    """Wall seconds of one step of a baseline, timed over the second half of a short run (warm-up excluded)."""
    half = probe_steps // 2
    curve = Curve(lambda enc: 0.0, [half, probe_steps], device)
    curve.start()
    model = build_baseline(config, method, len(data[0]), data[0].shape[1])
    _baseline_fit(config, method, Tracked(model, curve), data[0], device, probe_steps, None)
    (_, t1, _), (_, t2, _) = curve.points
    return (t2 - t1) / (probe_steps - half)


def dataset_sizes(config: EffSSLConfig, dataset: str) -> tuple[int, int]:
    """``(train, test)`` images of ``dataset`` as ``config`` loads it."""
    from ..ssl.estimate import SPLITS

    return SPLITS.get(dataset, (config.n_train, config.n_test))


def run_hours(config: EffSSLConfig | None = None):
    """The time of ``config`` (default: the full preset) on a Colab T4, a
    :class:`~companion.runtime.TimeEstimate`, for every dataset and seed: each single-branch rung's
    epochs (or steps) over the training images at the throughput of its counted step FLOPs (one view
    through encoder and head, the scores against the sampled bank rows, backward); each two-view
    baseline the same time as the full method's run (``baseline_budget="time"``), or half the steps
    (``"passes"``) or ``baseline_steps`` (``"steps"``) at its own two-view step FLOPs; and the
    evaluations (the kNN points along each run, calibration, the linear probes' features) as forward
    passes of the encoder. Book section: *Efficient SSL* "Full run".
    """
    from ..ssl import estimate
    from .config import full

    config = config or full()
    channels = 1 if config.datasets == ("digits",) else 3
    net = (config.encoder, config.encoder_kwargs, config.resolution, channels)

    def encoder():
        with estimate.own_rng():
            return build_encoder(config.encoder, in_channels=channels, **config.encoder_kwargs)

    def single_flops(variant: str, rows: int) -> float:
        with estimate.own_rng():  # a bank as large as one step's scores need, not the whole data set
            model = SingleBranchID(
                encoder(), rows, dim=config.dim, hidden=config.hidden, head_layers=config.head_layers,
                temperature=config.temperature, negatives=None, update=VARIANTS[variant]["update"],
                sqrt_weight=config.sqrt_weight if VARIANTS[variant]["sqrt"] else 0.0,
                sqrt_temperature=config.sqrt_temperature, cutmix_alpha=config.cutmix_alpha)
            x = torch.rand(2, channels, config.resolution, config.resolution)
        model.train()
        return estimate.count_flops(lambda: model(x, torch.arange(2))["loss"].backward()) / 2

    def baseline_flops(method: str) -> float:
        with estimate.own_rng():
            model = SSL_METHODS[method](encoder(), **baseline_recipe(config, method)[2])
        return estimate.two_view_step_flops(model, config.resolution, channels)

    parts, forwards = {}, {}
    seeds = len(config.seeds)
    for dataset in config.datasets:
        n, n_test = dataset_sizes(config, dataset)
        epochs = config.epochs if config.epochs is not None else config.steps * config.batch_size / n
        rows = min(n, (config.negatives or n) + 2)
        evaluated = 2 * (n + n_test)  # the untrained floor: kNN and linear-probe features
        full_hours = None
        for variant in (m for m in config.methods if m in VARIANTS):
            flops = estimate.memo(("single-branch", variant, rows, config.dim, config.hidden, config.head_layers, *net),
                                  lambda: single_flops(variant, rows))
            parts[f"{variant} on {dataset}"] = part = estimate.hours(n, epochs, flops, runs=seeds)
            full_hours = part
            evaluated += config.eval_points * (n + n_test) + n_test + (n if VARIANTS[variant]["calibrate"] else 0)
            evaluated += (n + n_test) if variant == FULL_METHOD else 0
        for method in (m for m in config.methods if m in BASELINES):
            if config.baseline_budget == "time":
                if full_hours is None:
                    raise ValueError("baseline_budget='time' needs a single-branch method to time (config.methods)")
                # the same wall time as the last single-branch run (the full method's, in the full preset)
                parts[f"{method} on {dataset} (the same time)"] = full_hours
            else:
                flops = estimate.memo(("two-view", method, baseline_recipe(config, method)[2], *net),
                                      lambda: baseline_flops(method))
                two_view_epochs = (epochs / 2 if config.baseline_budget == "passes"
                                   else config.baseline_steps * config.batch_size / n)
                parts[f"{method} on {dataset}"] = estimate.hours(n, two_view_epochs, flops, runs=seeds)
            evaluated += (config.eval_points + 1) * (n + n_test)
        forwards[dataset] = evaluated
    fwd = estimate.memo(("forward", *net), lambda: estimate.flops_per_image(encoder(), config.resolution, channels))
    parts["evaluations (kNN along each run, calibration, linear probes)"] = estimate.hours(
        sum(forwards.values()), 1, fwd, runs=seeds)
    return estimate.total(parts, f"{', '.join(config.datasets)}, {results.plural(seeds, 'seed')}")


def _mean(values: list) -> float:
    return float(sum(values) / len(values))


def _std(values: list) -> float:
    m = _mean(values)
    return float((sum((v - m) ** 2 for v in values) / len(values)) ** 0.5)


#: Per-seed numbers that vary between identical runs: they go to ``timings``, not ``metrics``.
#: ``time_ratio``: a baseline's training seconds over the full method's, in the same run and seed.
TIMED = ("seconds", "images_per_s", "time_ratio", "time_ratio_per_seed")


def costs(model: nn.Module, steps: int, batch_size: int, calibration: int = 0) -> dict:
    """The training cost of a run that does not depend on the machine: ``images`` drawn (steps x batch),
    encoder ``passes`` (every forward pass of an encoder, the calibration pass included) and
    ``backward_passes`` (those with a backward pass), from :func:`encoder_views`."""
    grad, no_grad = encoder_views(model)
    images = steps * batch_size
    return {"images": images, "passes": images * (grad + no_grad) + calibration, "backward_passes": images * grad,
            "calibration_passes": calibration}


def _aggregate(per_seed: list[dict]) -> dict:
    """Means over seeds, the per-seed values of the accuracies, and the kNN curve averaged point by point."""
    keys = [k for k in per_seed[0] if k != "curve"]
    out = {k: _mean([r[k] for r in per_seed]) for k in keys}
    for k in ("knn", "bank_knn", "linear", "time_ratio"):
        if k in per_seed[0]:
            out[f"{k}_per_seed"] = [r[k] for r in per_seed]
    out["knn_std"] = _std([r["knn"] for r in per_seed])
    if "curve" in per_seed[0]:
        curves = [r["curve"] for r in per_seed]
        if all(c["steps"] == curves[0]["steps"] for c in curves):
            out["curve"] = {"steps": curves[0]["steps"],
                            **{k: [_mean(v) for v in zip(*[c[k] for c in curves])] for k in ("seconds", "knn")}}
        else:  # time-budgeted runs stop at different steps: keep the first seed's curve
            out["curve"] = curves[0]
    return out


def run_dataset(config: EffSSLConfig, dataset: str, device) -> dict:
    """Every method of ``config`` on one dataset, for every seed; returns ``{method: aggregated numbers}``."""
    data = load_data(config, dataset)
    n, channels = len(data[0]), data[0].shape[1]
    per: dict[str, list] = {}
    for seed in config.seeds:
        cfg = config.replace(seed=seed)
        seed_everything(seed)  # the floor is the very network every method starts from
        floor = build_encoder(cfg.encoder, in_channels=channels, **cfg.encoder_kwargs).to(device)
        per.setdefault("untrained", []).append({
            "knn": knn_percent(floor, data, cfg, device), "linear": linear_percent(floor, data, cfg, device)})
        single_seconds = full_seconds = None
        for variant in [m for m in cfg.methods if m in VARIANTS]:
            model, curve, steps = train_variant(cfg, variant, data, dataset, device)
            per.setdefault(variant, []).append({
                "knn": curve.points[-1][2], "bank_knn": bank_knn_percent(model, data, cfg, device), "steps": steps,
                "seconds": curve.elapsed, "images_per_s": steps * cfg.batch_size / max(curve.elapsed, 1e-9),
                "curve": curve.as_dict(),
                **costs(model, steps, cfg.batch_size, calibration=n if VARIANTS[variant]["calibrate"] else 0),
            })
            if variant == FULL_METHOD:  # the linear probe is for the sanity claim: full method vs floor
                per[variant][-1]["linear"] = linear_percent(model.encoder, data, cfg, device)
                full_seconds = curve.elapsed
            single_seconds = curve.elapsed
        for name in [m for m in cfg.methods if m in BASELINES]:
            budget = None
            if cfg.baseline_budget == "steps":
                steps = cfg.baseline_steps
            elif cfg.baseline_budget == "passes":
                steps = max(1, total_steps(cfg, n) // 2)  # two views per step: the same number of encoder passes
            else:
                if single_seconds is None:
                    raise ValueError("baseline_budget='time' needs a single-branch method to time first")
                # the step count fills the single-branch run's time with a complete learning-rate schedule;
                # the time cap (20% slack, evaluation time counts towards it) only guards against a bad estimate
                ckpt_dir = _checkpoint(cfg, dataset, name)
                ckpt = load_checkpoint(ckpt_dir) if ckpt_dir else None
                if ckpt is not None:  # resuming: keep the step count (and schedule) the run started with
                    steps = int(ckpt["config"]["steps"])
                else:
                    steps = max(1, int(single_seconds / baseline_seconds_per_step(cfg, name, data, device)))
                budget = 1.2 * single_seconds
            model, curve, done = train_baseline(cfg, name, data, dataset, device, steps, time_budget=budget)
            per.setdefault(name, []).append({
                "knn": curve.points[-1][2], "linear": linear_percent(model.encoder, data, cfg, device),
                "steps": done, "seconds": curve.elapsed,
                "images_per_s": done * cfg.batch_size / max(curve.elapsed, 1e-9), "curve": curve.as_dict(),
                **costs(model, done, cfg.batch_size),
                **({"time_ratio": curve.elapsed / max(full_seconds, 1e-9)} if full_seconds else {}),
            })
    return {method: _aggregate(rows) for method, rows in per.items()}


#: The claims: ``(id, statement, method, baseline, metric)``; each is method minus baseline, paired by seed.
#: The two sanity claims are worded by :func:`companion.ssl.bench.sanity_claims`, as in every SSL chapter.
CLAIMS = (
    ("sanity_knn", None, FULL_METHOD, "untrained", "knn"),
    ("sanity_linear", None, FULL_METHOD, "untrained", "linear"),
    ("calibration_knn", "Feature calibration improves on plain NPID", "calibrated", "npid", "knn"),
    ("corrected_knn", "The corrected bank update improves on the momentum update (both calibrated)", "corrected",
     "calibrated", "knn"),
    ("sqrtkl_knn", "SqrtKL improves on calibration + the corrected update", "sqrtkl", "corrected", "knn"),
)


def split_timings(rows: dict) -> tuple[dict, dict]:
    """``(metrics, timings)``: wall times and throughput moved out of the numbers that must repeat."""
    metrics, timings = {}, {}
    for method, r in rows.items():
        metrics[method] = {k: v for k, v in r.items() if k not in TIMED and k != "curve"}
        t = {k: r[k] for k in TIMED if k in r}
        if "curve" in r:
            metrics[method]["curve"] = {"steps": r["curve"]["steps"], "knn": r["curve"]["knn"]}
            t["curve_seconds"] = r["curve"]["seconds"]
        if t:
            timings[method] = t
    return metrics, timings


def make_claims(rows: dict, config: EffSSLConfig, dataset: str) -> list[dict]:
    """The claims of :data:`CLAIMS` that ``rows`` (one dataset's aggregated numbers) can support:
    each needs its two methods and at least two seeds."""
    from ..ssl.bench import sanity_claims

    out = []
    for cid, statement, method, base, metric in CLAIMS:
        if method not in rows or base not in rows or len(rows[method][f"{metric}_per_seed"]) < 2:
            continue
        a, b = rows[method][f"{metric}_per_seed"], rows[base][f"{metric}_per_seed"]
        if statement is None:  # a sanity claim, worded as in every SSL chapter
            (c,) = [c for c in sanity_claims(config.tier, {"knn": a, "linear": a}, {"knn": b, "linear": b},
                                             what="the encoder (full single-branch method)", where=dataset) if c["id"] == cid]
            out.append(c)
            continue
        what = {"knn": f"kNN accuracy (k = {config.knn_k}) on {dataset}", "linear": f"linear-probe accuracy on {dataset}"}[metric]
        out.append(results.claim(cid, statement, f"{what}, {method} minus {base}, paired by seed", config.tier, a, b))
    return out + baseline_claims(rows, config, dataset)


#: Readable names of the two-view baselines in claim statements.
BASELINE_NAMES = {"simsiam": "SimSiam", "moco": "MoCo v2", "byol": "BYOL", "simclr": "SimCLR"}


def baseline_claims(rows: dict, config: EffSSLConfig, dataset: str) -> list[dict]:
    """Per two-view baseline of ``rows``: the premise that it learns (its kNN accuracy above the untrained
    network's by ``config.premise_margin``), and the paper's efficiency claim that rests on it: the full
    method is as accurate as the baseline (non-inferior within ``config.efficiency_margin`` kNN points)
    at its own, lower cost, with the cost ratio in the statement."""
    full = rows.get(FULL_METHOD)
    out = []
    for name in (m for m in BASELINES if m in rows):
        base = rows[name]
        if len(base["knn_per_seed"]) < 2 or "untrained" not in rows:
            continue
        label = BASELINE_NAMES[name]
        budget = {"steps": f"{round(base['steps'])} two-view steps", "passes": "the same encoder passes",
                  "time": "the full method's wall time"}[config.baseline_budget]
        lr, _, kwargs = baseline_recipe(config, name)
        bench = (lr, kwargs) == (RECIPES[name]["lr"], RECIPES[name]["method_kwargs"])
        recipe = "the benchmark's recipe" if bench else f"lr {lr:g}"
        premise = f"premise_{name}_learns"
        out.append(results.claim(
            premise, f"{label} ({budget}, {recipe}) beats the untrained network by at least "
                     f"{config.premise_margin:g} kNN points", f"kNN accuracy (k = {config.knn_k}) on {dataset}, "
                     f"{name} minus untrained, paired by seed", config.tier, base["knn_per_seed"],
            rows["untrained"]["knn_per_seed"], test="superiority", margin=config.premise_margin))
        if full is None:
            continue
        ratio = base["passes"] / full["passes"]
        out.append(results.claim(
            f"{FULL_METHOD}_vs_{name}",
            f"The full single-branch method ({round(full['steps'])} steps) is as accurate as {label} ({budget}: "
            f"{ratio:.1f}x the full method's encoder passes), within {config.efficiency_margin:g} kNN points",
            f"kNN accuracy (k = {config.knn_k}) on {dataset}, {FULL_METHOD} minus {name}, paired by seed",
            config.tier, full["knn_per_seed"], base["knn_per_seed"], test="non-inferiority",
            margin=config.efficiency_margin, premises=(premise,)))
    return out


def run(config: EffSSLConfig | None = None, record: bool = True) -> dict:
    """Train every method on every dataset of ``config`` for every seed; record and return the numbers.

    Returns ``{dataset: {method: {"knn", "knn_per_seed", "knn_std", "bank_knn", "linear", "steps",
    "seconds", "images_per_s", "curve"}}, "settings": {...}, "claims": [...]}``, accuracies in percent,
    means over ``config.seeds``. Runs with ``config.threads`` CPU threads (BLAS pinned to one), so a quick
    run repeats bit for bit whatever ``OMP_NUM_THREADS`` says. The wall time excludes the kNN
    evaluations along the way and includes feature calibration. Book section: *Efficient SSL* "Quick run".
    """
    from .config import quick

    config = config or quick()
    device = torch.device(config.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    began = time.perf_counter()
    if config.tier == "full":  # a GPU run of hours: say how long, what to expect and where it resumes from
        from ..runtime import announce

        announce(f"Efficient SSL, {', '.join(config.methods)} on {', '.join(config.datasets)}", run_hours(config),
                 "the full method's kNN accuracy above NPID's and far above the untrained encoder's, and close to "
                 "SimSiam's at the same GPU time (the paper's direction; its numbers are not verified)"
                 + ("; one seed gives no interval" if len(config.seeds) < 2 else ""), config.checkpoint_dir)
    pin = device.type == "cpu"
    with torch_threads(config.threads if pin else None), (threadpool_limits(1) if pin else contextlib.nullcontext()):
        out: dict = {dataset: run_dataset(config, dataset, device) for dataset in config.datasets}
    wall = time.perf_counter() - began
    out["settings"] = {"batch_size": config.batch_size, "encoder": config.encoder, "baseline_budget": config.baseline_budget,
                       "baseline_steps": config.baseline_steps, "seeds": list(config.seeds), "steps": config.steps,
                       "epochs": config.epochs}
    claims = make_claims(out[config.datasets[0]], config, config.datasets[0])
    out["claims"] = claims
    if record:
        steps_txt = f"{config.steps} steps" if config.steps is not None else f"{config.epochs} epochs"
        budget = {"steps": f"{config.baseline_steps} two-view steps each", "passes": "the same number of encoder passes",
                  "time": "the same wall time"}[config.baseline_budget]
        named = [BASELINE_NAMES[m] for m in config.methods if m in BASELINES]
        simsiam = f"; {' and '.join(named)} at {budget}" if named else ""
        scale = (f"{config.tier}: {', '.join(config.datasets)} at {config.resolution} px, {config.encoder} encoder, "
                 f"{steps_txt} of {config.batch_size} images per rung of the ladder{simsiam}, "
                 f"kNN (k={config.knn_k}) and a linear probe, {results.plural(len(config.seeds), 'seed')}, {device.type}")
        metrics, timings = {"settings": out["settings"]}, {"device": str(device)}
        for dataset in config.datasets:
            metrics[dataset], timings[dataset] = split_timings(out[dataset])
        results.write(CHAPTER, config.tier, metrics, scale=scale, claims=claims, seeds=list(config.seeds),
                      wall_s=wall, timings=timings, preset=config.tier, config=config)
    return out
