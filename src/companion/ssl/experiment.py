"""The toolkit's experiment: kNN accuracy of each SSL method's encoder against the same encoder at
random initialization, over seeds; recorded in ``results/ssl_toolkit.json`` (percent).

Book sections: *S3L* "Evaluating the features", and the SSL chapters that compare against random init.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import torch

from .. import results
from .config import ExperimentConfig
from .encoders import build_encoder
from .evaluate import extract_features, knn_accuracy
from .pretrain import cpu_threads, pretrain

CHAPTER = "ssl_toolkit"


def load_data(config: ExperimentConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(train_x, train_y, test_x, test_y)``: float images in [0, 1] and labels."""
    if config.dataset == "digits":
        from ..data import load_digits_images

        x, y = load_digits_images()
        perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
        n = config.n_train or 1200
        if not 0 < n < len(x):
            raise ValueError(f"n_train must be between 1 and {len(x) - 1} for digits, got {n}")
        return x[perm[:n]], y[perm[:n]], x[perm[n:]], y[perm[n:]]
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


def _knn(encoder, config, xtr, ytr, xte, yte, device) -> dict:
    ftr = extract_features(encoder, xtr, device=device)
    fte = extract_features(encoder, xte, device=device)
    return {
        "knn": 100 * knn_accuracy(ftr, ytr, fte, yte, k=config.knn_k, temperature=config.knn_temperature),
        "knn_small_k": 100 * knn_accuracy(ftr, ytr, fte, yte, k=config.knn_k_small, temperature=config.knn_temperature),
    }


def _summary(values: list[float]) -> dict:
    return {"mean": statistics.fmean(values), "std": statistics.pstdev(values) if len(values) > 1 else 0.0, "per_seed": values}


def run(config: ExperimentConfig, record: bool = True) -> dict:
    """Run the comparison and return (and, when ``record``, write) the metrics, accuracies in percent.

    For each seed the random encoder and every method's encoder start from the same weights
    (built with ``seed_everything(seed)``), so the gain is what pretraining added.
    Book section: *S3L* "Evaluating the features".
    """
    xtr, ytr, xte, yte = load_data(config)
    pc = config.pretrain
    device = torch.device(pc.device) if pc.device else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    with cpu_threads(pc.num_threads if device.type == "cpu" else None):
        metrics = _compare(config, pc, device, xtr, ytr, xte, yte)
    if record:
        scale = (
            f"{config.mode}: {config.dataset} ({len(xtr)} train / {len(xte)} test images at {pc.resolution} px), "
            f"{pc.encoder} encoder, {f'{pc.steps} steps' if pc.steps else f'{pc.epochs} epochs'} of batch {pc.batch_size} per method, "
            f"{len(config.seeds)} seed(s), {device.type.upper()}"
        )
        results.write(CHAPTER, config.mode, metrics, scale)
    return metrics


def _compare(config, pc, device, xtr, ytr, xte, yte) -> dict:
    from ..runtime import seed_everything

    per = {"random": {"knn": [], "knn_small_k": []}}
    per.update({m: {"knn": [], "knn_small_k": [], "final_loss": [], "final_std": []} for m in config.methods})

    def encoder_for(seed):
        seed_everything(seed)
        return build_encoder(pc.encoder, in_channels=xtr.shape[1], **pc.encoder_kwargs)

    for seed in config.seeds:
        acc = _knn(encoder_for(seed).to(device), config, xtr, ytr, xte, yte, device)
        for k, v in acc.items():
            per["random"][k].append(v)
        for method in config.methods:
            cfg = pc.replace(
                **config.pretrain_overrides.get(method, {}),
                method=method, seed=seed, method_kwargs=config.method_kwargs.get(method, {}),
                checkpoint_dir=str(Path(pc.checkpoint_dir) / f"{method}_seed{seed}") if pc.checkpoint_dir else None,
            )
            model, fit = pretrain(method, encoder_for(seed), xtr, cfg)
            per[method]["final_loss"].append(fit.last("loss"))
            per[method]["final_std"].append(fit.last("std"))
            for k, v in _knn(model.encoder, config, xtr, ytr, xte, yte, device).items():
                per[method][k].append(v)

    metrics: dict = {"random": {k: _summary(v) for k, v in per["random"].items()}}
    for method in config.methods:
        m = {k: _summary(v) for k, v in per[method].items()}
        m["gain"] = _summary([a - b for a, b in zip(per[method]["knn"], per["random"]["knn"])])
        m["gain_small_k"] = _summary([a - b for a, b in zip(per[method]["knn_small_k"], per["random"]["knn_small_k"])])
        metrics[method] = m
    metrics["setting"] = {
        "dataset": config.dataset, "n_train": len(xtr), "n_test": len(xte), "encoder": pc.encoder,
        "encoder_kwargs": pc.encoder_kwargs, "resolution": pc.resolution, "steps": pc.steps, "epochs": pc.epochs,
        "batch_size": pc.batch_size, "seeds": list(config.seeds), "knn_k": config.knn_k,
        "knn_k_small": config.knn_k_small, "knn_temperature": config.knn_temperature,
        "lr": {m: config.pretrain_overrides.get(m, {}).get("lr", pc.lr) for m in config.methods},
    }
    return metrics


def table(metrics: dict) -> str:
    """A Markdown table of the metrics returned by :func:`run`."""
    s = metrics["setting"]
    lines = [f"| encoder | kNN k={s['knn_k']} (%) | kNN k={s['knn_k_small']} (%) | gain k={s['knn_k']} (points) |", "|---|---|---|---|"]
    r = metrics["random"]
    lines.append(f"| random init | {r['knn']['mean']:.1f} ± {r['knn']['std']:.1f} | {r['knn_small_k']['mean']:.1f} ± {r['knn_small_k']['std']:.1f} | — |")
    for name, m in metrics.items():
        if name in ("random", "setting"):
            continue
        lines.append(
            f"| {name} | {m['knn']['mean']:.1f} ± {m['knn']['std']:.1f} | {m['knn_small_k']['mean']:.1f} ± {m['knn_small_k']['std']:.1f} "
            f"| {m['gain']['mean']:+.1f} ± {m['gain']['std']:.1f} |"
        )
    return "\n".join(lines)
