"""The toolkit's experiment: kNN and linear-probe accuracy of each SSL method's encoder against the
same encoder at random initialization, over seeds, on the shared benchmark (:mod:`companion.ssl.bench`);
recorded in ``results/ssl_toolkit.json`` (percent) with the ``sanity_*`` claims.

Book sections: *S3L* "Evaluating the features", and the SSL chapters that compare against random init.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import torch

from .. import results
from . import bench
from .config import ExperimentConfig, full
from .encoders import build_encoder
from .evaluate import extract_features, knn_accuracy, linear_probe
from .pretrain import cpu_threads, pretrain

CHAPTER = "ssl_toolkit"
METHOD_NAMES = {"simsiam": "SimSiam", "byol": "BYOL", "moco": "MoCo v2", "simclr": "SimCLR"}


def load_data(config: ExperimentConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(train_x, train_y, test_x, test_y)``: float images in [0, 1] and labels."""
    if config.dataset == "digits":
        n = config.n_train or bench.N_TRAIN
        if isinstance(n, bool) or not isinstance(n, int) or not 0 < n < 1797:
            raise ValueError(f"n_train must be between 1 and 1796 for digits, got {n!r}")
        d = bench.bench_data(config.pretrain.resolution, n_train=n)
        return d.train_x, d.train_y, d.test_x, d.test_y
    if config.dataset in ("cifar10", "cifar100"):
        from ..data import torchvision_dataset

        def tensors(split):
            ds = torchvision_dataset(config.dataset, split, download=config.download)
            x = torch.from_numpy(ds.data).permute(0, 3, 1, 2).float().div_(255)  # (N, 3, 32, 32)
            return x, torch.tensor(ds.targets)

        (xtr, ytr), (xte, yte) = tensors("train"), tensors("test")
        if config.n_train:
            xtr, ytr = xtr[: config.n_train], ytr[: config.n_train]
        return xtr, ytr, xte, yte
    raise ValueError(f"unknown dataset {config.dataset!r}; choose digits, cifar10 or cifar100")


def _evaluate(encoder, config, xtr, ytr, xte, yte, device, seed) -> dict:
    ftr = extract_features(encoder, xtr, device=device)
    fte = extract_features(encoder, xte, device=device)
    out = {
        "knn": 100 * knn_accuracy(ftr, ytr, fte, yte, k=config.knn_k, temperature=config.knn_temperature),
        "knn_small_k": 100 * knn_accuracy(ftr, ytr, fte, yte, k=config.knn_k_small, temperature=config.knn_temperature),
    }
    if config.linear:
        out["linear"] = 100 * linear_probe(ftr, ytr, fte, yte, epochs=config.linear_epochs, seed=seed,
                                           device=device, num_threads=None)
    return out


def dataset_sizes(config: ExperimentConfig) -> tuple[int, int]:
    """``(train, test)`` images the config's dataset has (digits: ``n_train`` and the rest of 1,797)."""
    from .estimate import SPLITS

    if config.dataset == "digits":
        n = config.n_train or bench.N_TRAIN
        return n, 1797 - n
    train, test = SPLITS[config.dataset]
    return min(train, config.n_train or train), test


def run_hours(config: ExperimentConfig | None = None):
    """The time of ``config`` (default: the full preset) on a Colab T4, a
    :class:`~companion.runtime.TimeEstimate`: every method's pretraining (its epochs over the training
    images, for every seed) at the throughput of its counted step FLOPs, plus the kNN/linear features of
    the untrained and every pretrained encoder (forward passes over training and test images).

    Book section: *Efficient SSL* "Full run" (the toolkit's full run).
    """
    from . import estimate
    from .methods import METHODS, MoCo

    config = config or full()
    pc = config.pretrain
    n_train, n_test = dataset_sizes(config)
    channels = 1 if config.dataset == "digits" else 3
    net = (pc.encoder, pc.encoder_kwargs, pc.resolution, channels)

    def encoder():
        with estimate.own_rng():
            return build_encoder(pc.encoder, in_channels=channels, **pc.encoder_kwargs)

    def step_flops(name: str, kwargs: dict) -> float:
        with estimate.own_rng():
            method = METHODS[name](encoder(), **kwargs)
        return estimate.two_view_step_flops(method, pc.resolution, channels)

    parts = {}
    for name in config.methods:
        kwargs = dict(config.method_kwargs.get(name, {}))
        if METHODS[name] is MoCo:
            kwargs.setdefault("dataset_size", n_train)
            kwargs.setdefault("queue_size", min(4096, n_train))
        changes = config.pretrain_overrides.get(name, {})
        steps, epochs = changes.get("steps", pc.steps), changes.get("epochs", pc.epochs)
        batch = changes.get("batch_size", pc.batch_size)
        if steps is not None:  # a step budget: its images, as epochs of the training set
            epochs = steps * batch / n_train
        flops = estimate.memo(("two-view", name, kwargs, *net), lambda: step_flops(name, kwargs))
        parts[METHOD_NAMES.get(name, name)] = estimate.hours(n_train, epochs, flops, runs=len(config.seeds))
    evaluated = (1 + len(config.methods)) * len(config.seeds)
    flops = estimate.memo(("forward", *net), lambda: estimate.flops_per_image(encoder(), pc.resolution, channels))
    parts["features for kNN and the linear probe"] = estimate.hours(n_train + n_test, 1, flops, runs=evaluated)
    return estimate.total(parts, f"{len(config.methods)} methods x {results.plural(len(config.seeds), 'seed')} on "
                                 f"{config.dataset}")


def _summary(values: list[float]) -> dict:
    return {"mean": statistics.fmean(values), "std": statistics.pstdev(values) if len(values) > 1 else 0.0, "per_seed": values}


def run(config: ExperimentConfig, record: bool = True) -> dict:
    """Run the comparison and return (and, when ``record``, write) the metrics, accuracies in percent.

    For each seed the random encoder and every method's encoder start from the same weights
    (built with ``seed_everything(seed)``), so the gain is what pretraining added. Threads are pinned
    to ``config.threads`` for the whole run, so the quick record is bit-repeatable.
    Book section: *S3L* "Evaluating the features".
    """
    t0 = time.perf_counter()
    pc = config.pretrain
    if config.mode == "full":  # a GPU run of hours: say how long, what to expect and where it resumes from
        from ..runtime import announce

        announce(f"SSL toolkit, {', '.join(config.methods)} on {config.dataset}", run_hours(config),
                 "each pretrained encoder's kNN accuracy above the same network untrained (the direction only: "
                 "the toolkit's own check, no paper number)"
                 + ("; one seed gives no interval" if len(config.seeds) < 2 else ""),
                 pc.checkpoint_dir)
    xtr, ytr, xte, yte = load_data(config)
    device = torch.device(pc.device) if pc.device else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    with cpu_threads(config.threads if device.type == "cpu" else None):
        metrics, timings = _compare(config, pc, device, xtr, ytr, xte, yte)
    claims = sanity_claims(config, metrics) if len(config.seeds) >= 2 else []
    if record:
        scale = (
            f"{config.mode}: {config.dataset} ({len(xtr)} train / {len(xte)} test images at {pc.resolution} px), "
            f"{pc.encoder} encoder, {f'{pc.steps} steps' if pc.steps else f'{pc.epochs} epochs'} of batch {pc.batch_size} per method, "
            f"{results.plural(len(config.seeds), 'seed')}, {device.type.upper()}"
        )
        results.write(CHAPTER, config.mode, metrics, scale, claims=claims, seeds=list(config.seeds),
                      wall_s=time.perf_counter() - t0, timings=timings, config=config)
    metrics["claims"] = claims
    return metrics


def sanity_claims(config: ExperimentConfig, metrics: dict) -> list[dict]:
    """``sanity_knn`` / ``sanity_linear``: per seed, the smallest gain over the methods (every method
    beats the untrained encoder); ``sanity_knn_<method>`` / ``sanity_linear_<method>`` for each one."""
    rand = metrics["random"]
    probes = [("knn", "kNN")] + ([("linear", "linear-probe")] if config.linear else [])
    out = []
    for key, probe in probes:
        per = {m: metrics[m][key]["per_seed"] for m in config.methods}
        worst = [min(per[m][i] for m in config.methods) for i in range(len(config.seeds))]
        out.append(results.claim(
            f"sanity_{key}", "Every self-supervised method's encoder beats the same network at random initialization",
            f"{probe} accuracy on {config.dataset}, the lowest of the {len(config.methods)} pretrained encoders minus the "
            "untrained one, paired by seed", config.mode, worst, rand[key]["per_seed"],
        ))
        for m in config.methods:
            out.append(results.claim(
                f"sanity_{key}_{m}", f"{METHOD_NAMES.get(m, m)} pretraining beats the same network at random initialization",
                f"{probe} accuracy on {config.dataset}, pretrained minus untrained, paired by seed", config.mode,
                per[m], rand[key]["per_seed"],
            ))
    return out


def _one_seed(config, pc, device, seed: int, data=None) -> dict:
    """The untrained encoder and every method's pretrained one for one seed: ``{"random": {probe: value},
    method: {probe: value, "final_loss", "final_std"}, "timings": {method: seconds}}``. Seeds share
    nothing, so they may run in parallel processes (``config.workers``) with the same numbers."""
    from ..runtime import seed_everything

    xtr, ytr, xte, yte = data if data is not None else load_data(config)
    bench_setup = config.dataset == "digits"

    def encoder_for(seed):
        seed_everything(seed)
        return build_encoder(pc.encoder, in_channels=xtr.shape[1], **pc.encoder_kwargs)

    with cpu_threads(config.threads if torch.device(device).type == "cpu" else None):
        out: dict = {"random": _evaluate(encoder_for(seed).to(device), config, xtr, ytr, xte, yte, device, seed),
                     "timings": {}}
        for method in config.methods:
            cfg = pc.replace(
                **config.pretrain_overrides.get(method, {}),
                method=method, seed=seed, method_kwargs=config.method_kwargs.get(method, {}),
                checkpoint_dir=str(Path(pc.checkpoint_dir) / f"{method}_seed{seed}") if pc.checkpoint_dir else None,
            )
            views = bench.bench_views(cfg.resolution, **cfg.augment) if bench_setup else None
            t = time.perf_counter()
            model, fit = pretrain(method, encoder_for(seed), xtr, cfg, views=views)
            out["timings"][method] = round(time.perf_counter() - t, 2)
            out[method] = {**_evaluate(model.encoder, config, xtr, ytr, xte, yte, device, seed),
                           "final_loss": fit.last("loss"), "final_std": fit.last("std")}
    return out


def _compare(config, pc, device, xtr, ytr, xte, yte) -> tuple[dict, dict]:
    keys = ["knn", "knn_small_k"] + (["linear"] if config.linear else [])
    per = {"random": {k: [] for k in keys}}
    per.update({m: {**{k: [] for k in keys}, "final_loss": [], "final_std": []} for m in config.methods})
    timings: dict = {f"{m}_pretrain_s": [] for m in config.methods}
    seeds = list(config.seeds)
    workers = min(config.workers, len(seeds)) if torch.device(device).type == "cpu" else 1
    if workers > 1:
        from ..runtime import process_map

        # each process loads the data itself; an interrupt stops them all (nothing is recorded: run writes after)
        done = process_map(_one_seed, [config] * len(seeds), [pc] * len(seeds), [str(device)] * len(seeds), seeds,
                           workers=workers)
    else:
        done = [_one_seed(config, pc, device, seed, (xtr, ytr, xte, yte)) for seed in seeds]
    for one in done:
        for name, values in one.items():
            if name == "timings":
                for method, secs in values.items():
                    timings[f"{method}_pretrain_s"].append(secs)
                continue
            for k, v in values.items():
                per[name][k].append(v)

    metrics: dict = {"random": {k: _summary(v) for k, v in per["random"].items()}}
    for method in config.methods:
        m = {k: _summary(v) for k, v in per[method].items()}
        for k in keys:
            name = "gain" if k == "knn" else f"gain_{k.removeprefix('knn_')}" if k.startswith("knn_") else f"gain_{k}"
            m[name] = _summary([a - b for a, b in zip(per[method][k], per["random"][k])])
        metrics[method] = m
    metrics["setting"] = {
        "dataset": config.dataset, "n_train": len(xtr), "n_test": len(xte), "encoder": pc.encoder,
        "encoder_kwargs": pc.encoder_kwargs, "resolution": pc.resolution, "steps": pc.steps, "epochs": pc.epochs,
        "batch_size": pc.batch_size, "seeds": list(config.seeds), "knn_k": config.knn_k,
        "knn_k_small": config.knn_k_small, "knn_temperature": config.knn_temperature,
        "lr": {m: config.pretrain_overrides.get(m, {}).get("lr", pc.lr) for m in config.methods},
        "linear_epochs": config.linear_epochs if config.linear else None,
    }
    return metrics, timings


def table(metrics: dict) -> str:
    """A Markdown table of the metrics returned by :func:`run`."""
    s = metrics["setting"]
    lin = "linear" in metrics["random"]
    head = f"| encoder | kNN k={s['knn_k']} (%) | kNN k={s['knn_k_small']} (%) |" + (" linear (%) |" if lin else "")
    head += f" gain kNN k={s['knn_k']} |" + (" gain linear |" if lin else "")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]

    def cell(d):
        return f"{d['mean']:.1f} ± {d['std']:.1f}"

    r = metrics["random"]
    row = f"| random init | {cell(r['knn'])} | {cell(r['knn_small_k'])} |" + (f" {cell(r['linear'])} |" if lin else "")
    lines.append(row + " — |" + (" — |" if lin else ""))
    for name, m in metrics.items():
        if name in ("random", "setting", "claims"):
            continue
        row = f"| {name} | {cell(m['knn'])} | {cell(m['knn_small_k'])} |" + (f" {cell(m['linear'])} |" if lin else "")
        row += f" {m['gain']['mean']:+.1f} ± {m['gain']['std']:.1f} |"
        if lin:
            row += f" {m['gain_linear']['mean']:+.1f} ± {m['gain_linear']['std']:.1f} |"
        lines.append(row)
    return "\n".join(lines)
