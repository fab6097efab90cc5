"""The US3L experiment: US3L vs naive slimmable SSL vs networks trained alone, evaluated at every width.

Book section: *US3L* "Quick run".
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

from .. import results
from ..runtime import seed_everything
from ..slimmable import SlimmableResNet, cost_at, recalibrate_bn, set_width
from ..ssl.evaluate import embedding_std, extract_features, knn_accuracy
from ..ssl.pretrain import PretrainConfig, pretrain
from .config import US3LConfig
from .model import SlimmableSSL

CHAPTER = "us3l"


def load_data(config: US3LConfig):
    """``(train, train_labels, test, test_labels, channels)``; tensors for digits, Datasets for CIFAR-100."""
    if config.dataset == "digits":
        from sklearn.model_selection import train_test_split

        from ..data import load_digits_images

        x, y = load_digits_images(size=config.resolution)
        tr, te = train_test_split(np.arange(len(y)), test_size=500, stratify=y.numpy(), random_state=0)
        return x[tr], y[tr], x[te], y[te], 1
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


def _batches(data, batch_size: int, count: int, device):
    if torch.is_tensor(data):
        return [data[i * batch_size:(i + 1) * batch_size].to(device) for i in range(min(count, max(1, len(data) // batch_size)))]
    loader = DataLoader(Subset(data, range(min(len(data), batch_size * count))), batch_size=batch_size)
    return [x.to(device) for x, *_ in loader]


def build(config: US3LConfig, channels: int, n_train: int, mode: str, fixed_width: float | None, seed: int):
    seed_everything(seed)
    encoder = SlimmableResNet(config.base_width, config.blocks, in_channels=channels, small_stem=config.small_stem,
                              divisor=config.divisor)
    steps = config.steps if config.steps is not None else config.epochs * (n_train // config.batch_size)
    model = SlimmableSSL(encoder, steps, mode=mode, dim=config.dim, hidden=config.hidden,
                         temperature=config.temperature, momentum=config.momentum, n_widths=config.n_widths,
                         dynamic=config.dynamic, reg_lambda=config.reg_lambda if mode == "us3l" else 0.0,
                         reg_alpha=config.reg_alpha, fixed_width=fixed_width, seed=seed)
    return model, steps


def evaluate_width(model: SlimmableSSL, width: float, data, config: US3LConfig, device) -> dict:
    """BN recalibration at ``width``, then kNN accuracy (%) and the collapse diagnostic of the features."""
    train, train_y, test, test_y = data
    encoder = model.encoder.to(device)
    recalibrate_bn(encoder, width, _batches(train, config.batch_size, config.calibration_batches, device))
    f_train = extract_features(encoder, train, batch_size=256, device=device)
    f_test = extract_features(encoder, test, batch_size=256, device=device)
    acc = knn_accuracy(f_train, train_y, f_test, test_y, k=config.knn_k, temperature=config.knn_temperature)
    set_width(encoder, 1.0)
    return {"knn": 100.0 * acc, "std": embedding_std(f_test), "dim": int(f_test.shape[1])}


def width_key(width: float) -> str:
    """Results keys name widths in percent (``25``, ``100``): dots would break dotted look-ups."""
    return str(int(round(width * 100)))


def train_one(config: US3LConfig, data, channels, mode, fixed_width, seed, device):
    train = data[0]
    model, steps = build(config, channels, len(train), mode, fixed_width, seed)
    name = mode if fixed_width is None else f"{mode}_{fixed_width}"
    pcfg = PretrainConfig.full() if config.dataset == "cifar100" else PretrainConfig.quick()
    pcfg = pcfg.replace(
        resolution=config.resolution, steps=steps, epochs=None, batch_size=config.batch_size, lr=config.lr,
        optimizer=config.optimizer, weight_decay=0.0 if mode == "us3l" else 5e-4, seed=seed, device=device,
        progress=config.progress, blur=False if config.resolution < 32 else None,
        checkpoint_dir=f"{config.checkpoint_dir}/{name}_seed{seed}" if config.checkpoint_dir else None,
        checkpoint_every=config.checkpoint_every,
    )
    began = time.perf_counter()
    model, fit_result = pretrain(model, None, train, pcfg)
    return model, time.perf_counter() - began, fit_result


def run(config: US3LConfig | None = None, record: bool = True) -> dict:
    """Train every mode for every seed, evaluate each width, record the means in ``results/us3l.json``."""
    from .config import quick

    config = config or quick()
    device = config.device or ("cuda" if torch.cuda.is_available() else "cpu")
    train, train_y, test, test_y, channels = load_data(config)
    data = (train, train_y, test, test_y)
    rows: dict[str, dict[str, list]] = {}
    seconds: dict[str, list] = {}
    for seed in config.seeds:
        # reference: the same network, untrained, evaluated the same way at every width
        model, _ = build(config, channels, len(train), "naive", None, seed)
        for w in config.eval_widths:
            for key, value in evaluate_width(model, w, data, config, device).items():
                rows.setdefault("random init", {}).setdefault(f"{key}@{width_key(w)}", []).append(value)
        for mode in config.modes:
            widths = config.separate_widths if mode == "fixed" else (None,)
            for fixed in widths:
                model, took, _ = train_one(config, data, channels, mode, fixed, seed, device)
                label = "separate" if mode == "fixed" else mode
                seconds.setdefault(label, []).append(took)
                for w in ([fixed] if fixed is not None else config.eval_widths):
                    ev = evaluate_width(model, w, data, config, device)
                    for key, value in ev.items():
                        rows.setdefault(label, {}).setdefault(f"{key}@{width_key(w)}", []).append(value)
    summary = {label: {k: float(np.mean(v)) for k, v in cols.items()} for label, cols in rows.items()}
    spread = {label: {k: float(np.std(v)) for k, v in cols.items() if k.startswith("knn")} for label, cols in rows.items()}
    probe = SlimmableResNet(config.base_width, config.blocks, in_channels=channels, small_stem=config.small_stem,
                            divisor=config.divisor)
    costs = {width_key(w): cost_at(probe, w, config.resolution, channels) for w in config.eval_widths}
    out = {"mean": summary, "std_over_seeds": spread, "costs": costs,
           "train_seconds": {k: float(np.mean(v)) for k, v in seconds.items()}, "seeds": list(config.seeds)}
    if record:
        mode = "full" if config.dataset == "cifar100" else "quick"
        scale = (f"{mode}: {config.dataset} at {config.resolution} px, slimmable ResNet base width {config.base_width}, "
                 f"{config.steps or config.epochs} {'steps' if config.steps else 'epochs'}, {len(config.seeds)} seed(s), "
                 f"kNN (k={config.knn_k}) after BN recalibration, {device}")
        results.write(CHAPTER, mode, out, scale=scale)
    return out
