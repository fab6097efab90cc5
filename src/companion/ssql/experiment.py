"""The SSQL experiment: pretrain SimSiam and SSQL with the same budget, then post-training-quantize
each encoder over a grid of ``(w, a)`` bit-widths and probe it.

Quick mode: scikit-learn's digits on the CPU, three seeds, in seconds. Full mode: CIFAR-10 and a
ResNet-18 through :func:`companion.ssl.pretrain` (so :func:`companion.train.fit`: progress bars, AMP,
atomic checkpoints that resume after a disconnect).

Book section: *SSQL* "Quick run" and "Full run".
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .. import results
from ..runtime import process_map, seed_everything, torch_threads
from ..ssl import PretrainConfig, build_encoder, pretrain
from ..ssl.methods import SimSiam
from .config import SSQLConfig
from .evaluate import pair_name, ptq_grid
from .method import SSQL

CHAPTER = "ssql"


@dataclass
class Split:
    """Train and test images ``(N, C, H, W)`` in [0, 1] with labels."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    description: str


def load_data(config: SSQLConfig) -> Split:
    """Digits (quick; a seeded 1,200 / 597 split) or CIFAR-10 (full; the official 50k / 10k split).

    Book section: *SSQL* "Quick run".
    """
    if config.dataset == "digits":
        from ..ssl import bench

        n_train = config.n_train
        if isinstance(n_train, bool) or not isinstance(n_train, int) or not 0 < n_train < 1797:
            raise ValueError(f"n_train must be an integer in [1, 1796] for digits, got {n_train!r}")
        d = bench.bench_data(config.resolution, n_train)  # the shared benchmark's seeded split
        return Split(d.train_x, d.train_y, d.test_x, d.test_y,
                     f"scikit-learn digits at {config.resolution} px, {n_train} train / {len(d.test_y)} test")
    from ..data import torchvision_dataset

    def tensors(split):
        ds = torchvision_dataset("cifar10", split)
        x = torch.from_numpy(np.asarray(ds.data)).permute(0, 3, 1, 2).float().div_(255)  # (N, 3, 32, 32)
        return x, torch.as_tensor(ds.targets)

    tx, ty = tensors("train")
    vx, vy = tensors("test")
    if config.n_train is not None:
        tx, ty = tx[: config.n_train], ty[: config.n_train]
    return Split(tx, ty, vx, vy, f"CIFAR-10, {len(tx)} train / {len(vx)} test")


def build_method(name: str, config: SSQLConfig, in_channels: int, seed: int) -> nn.Module:
    """SimSiam or SSQL around a fresh encoder; the same ``seed`` gives both the same initial weights.

    Book section: *SSQL* "The SimSiam loss with a quantized branch".
    """
    seed_everything(seed)  # as companion.ssl.bench.bench_encoder: the untrained baseline is this encoder
    encoder = build_encoder(config.encoder, in_channels=in_channels, **config.encoder_kwargs)
    heads = dict(proj_dim=config.proj_dim, pred_dim=config.pred_dim, proj_layers=config.proj_layers)
    if name == "simsiam":
        return SimSiam(encoder, **heads)
    if name == "ssql":
        return SSQL(encoder, **heads, w_range=config.w_range, a_range=config.a_range, convention=config.convention, seed=seed)
    raise ValueError(f"unknown method {name!r}; choose 'simsiam' or 'ssql'")


def dataset_sizes(config: SSQLConfig) -> tuple[int, int]:
    """``(train, test)`` images of the config's dataset (digits: ``n_train`` and the rest of 1,797)."""
    from ..ssl.estimate import SPLITS

    if config.dataset == "digits":
        return config.n_train, 1797 - config.n_train
    train, test = SPLITS[config.dataset]
    return min(train, config.n_train or train), test


def run_hours(config: SSQLConfig | None = None):
    """The time of ``config`` (default: the full preset) on a Colab T4, a
    :class:`~companion.runtime.TimeEstimate`: each method's pretraining (its epochs or steps over the
    training images, for every seed) at the throughput of its counted step FLOPs (an SSQL step also runs
    the quantized branch), plus the PTQ evaluation (for every evaluated encoder and ``(w, a)`` pair, the
    forward passes of calibration, probe training and test images). Book section: *SSQL* "Full run".
    """
    from ..ssl import estimate
    from .config import full

    config = config or full()
    n_train, n_test = dataset_sizes(config)
    channels = 1 if config.dataset == "digits" else 3
    net = (config.encoder, config.encoder_kwargs, config.resolution, channels, config.proj_dim, config.pred_dim,
           config.proj_layers)
    epochs = config.epochs if config.epochs is not None else config.steps * config.batch_size / n_train
    parts = {}
    for name in (m for m in config.methods if m != "random"):
        def flops(name=name):
            heads = dict(proj_dim=config.proj_dim, pred_dim=config.pred_dim, proj_layers=config.proj_layers)
            with estimate.own_rng():  # not build_method: it reseeds every generator
                encoder = build_encoder(config.encoder, in_channels=channels, **config.encoder_kwargs)
                method = SimSiam(encoder, **heads) if name == "simsiam" else SSQL(
                    encoder, **heads, w_range=config.w_range, a_range=config.a_range, convention=config.convention)
            return estimate.two_view_step_flops(method, config.resolution, channels)

        parts[{"simsiam": "SimSiam", "ssql": "SSQL"}[name]] = estimate.hours(
            n_train, epochs, estimate.memo(("ssql-step", name, config.w_range, config.a_range, *net), flops),
            runs=len(config.seeds))

    def forward():
        with estimate.own_rng():
            encoder = build_encoder(config.encoder, in_channels=channels, **config.encoder_kwargs)
        return estimate.flops_per_image(encoder, config.resolution, channels)

    bank = min(config.eval_train or n_train, n_train)
    per_pair = bank + n_test + min(config.calibration_images, n_train)
    parts[f"PTQ evaluation ({len(config.pairs())} bit-width pairs)"] = estimate.hours(
        per_pair * len(config.pairs()) + n_test, 1, estimate.memo(("forward", *net), forward),
        runs=len(config.methods) * len(config.seeds))
    return estimate.total(parts, f"{', '.join(config.methods)} x {results.plural(len(config.seeds), 'seed')} "
                                 f"on {config.dataset}")


def pretrain_config(name: str, config: SSQLConfig, seed: int) -> PretrainConfig:
    """The toolkit's :class:`~companion.ssl.PretrainConfig` for one method and seed (same budget for both)."""
    ckpt = None
    if config.checkpoint_dir:
        ckpt = str(Path(config.checkpoint_dir) / f"{name}-seed{seed}")
    # ``method`` only names the recipe here: pretrain() receives the ready SimSiam or SSQL module
    return PretrainConfig(
        method="simsiam", encoder=config.encoder, encoder_kwargs=config.encoder_kwargs, resolution=config.resolution,
        blur=config.blur, augment=dict(config.augment), steps=config.steps, epochs=config.epochs, batch_size=config.batch_size, lr=config.lr,
        weight_decay=config.weight_decay, optimizer="sgd", seed=seed, amp=config.amp,
        gpu_augment=True if config.mode != "full" else None, num_workers=config.num_workers, checkpoint_dir=ckpt,
        checkpoint_every=config.checkpoint_every, progress=config.progress, device=config.device,
        log_every=1 if config.mode != "full" else 10,
    )


def _views(config: SSQLConfig):
    """Quick and study: the benchmark's view pair (one batched augmentation call for both views)."""
    if config.mode == "full":
        return None
    from ..ssl import bench

    return bench.bench_views(config.resolution, **config.augment)


@dataclass
class SSQLResult:
    """What :func:`run` returns: the recorded metrics, per-seed numbers, and the seed-0 encoders."""

    metrics: dict
    per_seed: dict
    encoders: dict = field(default_factory=dict)
    histories: dict = field(default_factory=dict)
    data: Split | None = None
    config: SSQLConfig | None = None
    timings: dict = field(default_factory=dict)

    def value(self, method: str, probe: str, pair: str) -> float | None:
        """Mean over seeds of ``probe`` (``knn``, ``linear``, ``feature_sqnr``) at ``pair`` (e.g. ``"2w4f"``)."""
        return self.metrics["mean"].get(method, {}).get(probe, {}).get(pair)

    def table(self, probe: str = "knn", method: str | None = None, digits: int = 1) -> str:
        """Markdown table, rows = weight bits, columns = activation bits, of one method's mean ``probe``,
        or (``method=None``) of SSQL minus SimSiam. Book section: *SSQL* "Quick run"."""
        cfg = self.config
        label = lambda b: "FP" if b == 0 else str(b)  # noqa: E731
        title = method or "SSQL − SimSiam"
        lines = [f"| {title} ({probe}), w \\ a | " + " | ".join(label(a) for a in cfg.grid_a) + " |",
                 "|---|" + "---|" * len(cfg.grid_a)]
        for w in cfg.grid_w:
            cells = []
            for a in cfg.grid_a:
                pair = pair_name(w, a)
                if method is None:
                    s, b = self.value("ssql", probe, pair), self.value("simsiam", probe, pair)
                    cells.append("" if s is None or b is None else f"{s - b:+.{digits}f}")
                else:
                    v = self.value(method, probe, pair)
                    cells.append("" if v is None else f"{v:.{digits}f}")
            lines.append(f"| **{label(w)}** | " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def summary(self, pairs=None, digits: int = 1) -> str:
        """Markdown: for each method, kNN and linear accuracy (mean ± std over seeds) and feature SQNR at
        ``pairs`` (default: the config's linear-probe pairs)."""
        pairs = pairs or [pair_name(w, a) for w, a in self.config.linear_pairs]
        lines = ["| method | probe | " + " | ".join(pairs) + " |", "|---|---|" + "---|" * len(pairs)]
        for m in self.metrics["mean"]:
            for probe in ("knn", "linear", "feature_sqnr"):
                cells = []
                for p in pairs:
                    v = self.value(m, probe, p)
                    sd = self.metrics["std"][m][probe].get(p)
                    cells.append("—" if v is None else f"{v:.{digits}f} ± {sd:.{digits}f}")
                name = {"knn": "kNN acc. (%)", "linear": "linear acc. (%)", "feature_sqnr": "feature SQNR (dB)"}[probe]
                lines.append(f"| {m} | {name} | " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def gaps(self, low=("2w4f", "4w4f"), probe: str = "knn") -> str:
        """SSQL minus SimSiam at low bit-widths and at FP (mean and std over paired seeds), and the accuracy
        each loses from FP. Numbers only: whether a claim holds is decided by the chapter's claims (one
        verdict system, :mod:`companion.results`). Book section: *SSQL* "Quick run"."""
        d, sd = self.metrics.get(f"diff_{probe}"), self.metrics.get(f"diff_{probe}_std")
        if not d:
            return "needs both SimSiam and SSQL runs"
        n = len(self.metrics["seeds"])
        lines = []
        for p in (*low, "FP"):
            if p not in d:
                continue
            m, s = d[p], sd[p]
            spread = f"± {s:.1f} points (mean ± std over {n} paired seeds)" if n > 1 else "points (one seed)"
            lines.append(f"{probe}, SSQL − SimSiam at {p}: {m:+.1f} {spread}")
        if probe == "knn":
            drops = self.metrics["drop_knn"]
            for p in low:
                if p in drops.get("simsiam", {}) and p in drops.get("ssql", {}):
                    lines.append(f"accuracy lost from FP to {p}: SimSiam {drops['simsiam'][p]:.1f}, "
                                 f"SSQL {drops['ssql'][p]:.1f} points")
        return "\n".join(lines)


def _mean_std(values: list[dict]) -> tuple[dict, dict]:
    keys = values[0].keys()
    mean = {k: float(np.mean([v[k] for v in values])) for k in keys}
    std = {k: float(np.std([v[k] for v in values])) for k in keys}
    return mean, std


def run(config: SSQLConfig | None = None) -> SSQLResult:
    """Pretrain each method for each seed, evaluate the PTQ grid, average over seeds, record.

    Seeds pair the runs: for one seed every method starts from the same encoder weights and sees
    the same batches, so per-seed differences (``diff_*``) are less noisy than differences of means.
    Records ``results/ssql.json`` (percent accuracies) under the config's mode unless
    ``config.record`` is False. Book section: *SSQL* "Quick run".
    """
    from .config import quick

    config = config or quick()
    began = time.perf_counter()
    if config.mode == "full":
        announce_run(config)
    with torch_threads(config.threads):
        res = _run(config)
    if config.record:
        _record(res, time.perf_counter() - began)
    return res


def announce_run(config: SSQLConfig) -> str:
    """What a full (or colab) run prints before it starts: its T4 time from :func:`run_hours`, the result
    to expect and where it checkpoints (rank 0 alone under ``torchrun``)."""
    from ..runtime import announce
    from ..train import is_main_process

    expect = ("both encoders' kNN accuracy far above chance (10%) in full precision, and SSQL's encoder "
              "losing less than SimSiam's at 2w4f and 4w4f (the paper's direction; its numbers are not "
              "verified)") + ("; one seed gives no interval" if len(config.seeds) < 2 else "")
    what = f"SSQL vs SimSiam, {config.epochs or config.steps} {'epochs' if config.epochs else 'steps'} on {config.dataset}"
    return announce(what, run_hours(config), expect, config.checkpoint_dir, verbose=is_main_process())


def _one_seed(config: SSQLConfig, seed: int, data: Split | None = None) -> dict:
    """Pretrain and evaluate every method for one seed: ``{method: (scores, cpu_s, wall_s, history,
    encoder)}``. Seeds are independent, so they may run in parallel processes (``config.workers``)."""
    data = data if data is not None else load_data(config)
    bank = slice(0, config.eval_train)
    out = {}
    with torch_threads(config.threads):
        for name in config.methods:
            method = build_method("simsiam" if name == "random" else name, config, data.train_x.shape[1], seed)
            cpu_s = wall_s = history = None
            if name != "random":
                began = time.process_time()
                method, fit = pretrain(method, None, data.train_x, pretrain_config(name, config, seed),
                                       views=_views(config))
                cpu_s, wall_s, history = time.process_time() - began, fit.seconds, fit.history
            method.eval()
            scores = ptq_grid(method.encoder, data.train_x[bank], data.train_y[bank], data.test_x, data.test_y,
                              config.pairs(), linear_pairs=config.linear_pairs,
                              calibration_images=config.calibration_images, convention=config.convention,
                              knn_k=config.knn_k, linear_epochs=config.linear_epochs)
            out[name] = (scores, cpu_s, wall_s, history, method.encoder.cpu())
    return out


def _run(config: SSQLConfig) -> SSQLResult:
    data = load_data(config)
    per_seed: dict = {m: [] for m in config.methods}
    cpu: dict = {m: [] for m in config.methods if m != "random"}
    wall: dict = {m: [] for m in cpu}
    encoders, histories = {}, {}
    if config.workers > 1 and len(config.seeds) > 1:
        # an interrupt stops the seeds' processes at once (nothing is recorded: _record runs after)
        done = process_map(_one_seed, [config] * len(config.seeds), config.seeds,
                           workers=min(config.workers, len(config.seeds)))
    else:
        done = [_one_seed(config, seed, data) for seed in config.seeds]
    for seed, runs in zip(config.seeds, done):
        for name, (scores, cpu_s, wall_s, history, encoder) in runs.items():
            per_seed[name].append(scores)
            if name != "random":
                cpu[name].append(cpu_s)
                wall[name].append(wall_s)
            if seed == config.seeds[0]:
                encoders[name] = encoder
                if history is not None:
                    histories[name] = history
    mean, std = {}, {}
    for name, runs in per_seed.items():
        mean[name], std[name] = {}, {}
        for key in runs[0]:
            mean[name][key], std[name][key] = _mean_std([r[key] for r in runs])
    metrics = {"mean": mean, "std": std, "seeds": list(config.seeds)}
    timings = {"pretrain_cpu_seconds": {m: float(np.mean(s)) for m, s in cpu.items()},
               # wall time of this call: a run resumed from a checkpoint counts only the steps it trained
               "pretrain_wall_seconds": {m: float(np.mean(s)) for m, s in wall.items()}}
    # the accuracy quantization costs, FP minus the pair (smaller is better)
    metrics["drop_knn"] = {m: {k: mean[m]["knn"]["FP"] - v for k, v in mean[m]["knn"].items() if k != "FP"}
                           for m in config.methods if "FP" in mean[m]["knn"]}
    if "ssql" in per_seed and "simsiam" in per_seed:
        for probe in ("knn", "linear"):
            diffs = [{k: s[probe][k] - b[probe][k] for k in s[probe]} for s, b in zip(per_seed["ssql"], per_seed["simsiam"])]
            metrics[f"diff_{probe}"], metrics[f"diff_{probe}_std"] = _mean_std(diffs) if diffs[0] else ({}, {})
    return SSQLResult(metrics, per_seed, encoders, histories, data, config, timings)


def claims(res: "SSQLResult") -> list[dict]:
    """The chapter's claims, each paired over seeds: the sanity checks (SSQL's encoder minus the same
    encoder untrained, full precision); for each probe and each of the config's ``claim_pairs``, the
    premise (SimSiam in full precision minus SimSiam at the pair, by at least ``collapse_margin``
    points: the collapse SSQL addresses exists there) and the paper's claim (SSQL minus SimSiam at the
    pair), which names that premise; and SSQL's non-inferiority in full precision (kNN).
    Book section: *SSQL* "Claims, intervals and verdicts"."""
    cfg, per_seed, out = res.config, res.per_seed, []
    tier = cfg.mode
    if len(cfg.seeds) < 2:
        return out  # an interval needs two seeds at least

    def col(method, probe, pair):
        return [r[probe][pair] for r in per_seed[method]]

    if "random" in per_seed and "ssql" in per_seed:
        for probe, cid in (("knn", "sanity_knn"), ("linear", "sanity_linear")):
            if "FP" in per_seed["ssql"][0][probe]:
                out.append(results.claim(cid, f"SSQL pretraining beats the untrained encoder ({probe}, FP)",
                                         f"{probe} accuracy in full precision, SSQL minus untrained (points)", tier,
                                         col("ssql", probe, "FP"), col("random", probe, "FP")))
    m = cfg.collapse_margin
    for probe in ("knn", "linear"):
        for pair in (pair_name(w, a) for w, a in cfg.claim_pairs):
            premise = f"premise_collapse_{probe}_{pair.lower()}"
            if "simsiam" in per_seed and {pair, "FP"} <= set(per_seed["simsiam"][0][probe]):
                out.append(results.claim(
                    premise, f"Full-precision SimSiam loses at least {m:g} points of {probe} accuracy when "
                             f"post-training quantized to {pair}",
                    f"{probe} accuracy, SimSiam in FP minus SimSiam at {pair} (points)", tier,
                    col("simsiam", probe, "FP"), col("simsiam", probe, pair), test="superiority", margin=m))
            if "simsiam" in per_seed and "ssql" in per_seed and pair in per_seed["ssql"][0][probe]:
                out.append(results.claim(
                    f"ssql_{probe}_{pair.lower()}", f"SSQL's encoder beats SimSiam's after PTQ to {pair}",
                    f"{probe} accuracy at {pair}, SSQL minus SimSiam (points)", tier,
                    col("ssql", probe, pair), col("simsiam", probe, pair), premises=(premise,)))
    if "simsiam" in per_seed and "ssql" in per_seed and "FP" in per_seed["ssql"][0]["knn"]:
        # in full precision the paper claims no gain, only no loss: a non-inferiority claim
        out.append(results.claim(
            "ssql_knn_fp", "SSQL's encoder is at most 1 point worse than SimSiam's in full precision",
            "knn accuracy at FP, SSQL minus SimSiam (points)", tier, col("ssql", "knn", "FP"),
            col("simsiam", "knn", "FP"), test="non-inferiority", margin=1.0))
    return out


def _record(res: "SSQLResult", wall: float) -> None:
    from ..train import is_main_process

    if not is_main_process():  # under torchrun every rank computes the numbers; rank 0 alone records them
        return
    config, data = res.config, res.data
    scale = (f"{config.mode}: {data.description}; {config.encoder} encoder; "
             f"{config.steps or config.epochs} {'steps' if config.steps else 'epochs'} of batch {config.batch_size} "
             f"per method; mean of {results.plural(len(config.seeds), 'seed')}; {'CPU' if config.device == 'cpu' else 'GPU'}")
    results.write(CHAPTER, config.mode, res.metrics, scale, claims=claims(res), seeds=config.seeds, wall_s=wall,
                  timings=res.timings, preset=config.mode, config=config)
