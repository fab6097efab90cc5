"""What input mean/std normalization changes on the shared SSL benchmark (a departure every SSL chapter lists).

Every official repository normalizes its inputs by the data set's mean and standard deviation; this book's
quick and study runs feed the digits in [0, 1]. Here the encoder's first operation is ``(x - mean) / std`` with the
training images' statistics, so every view and every evaluated image is normalized as the official transforms do
(after augmentation). This script runs the toolkit's study comparison (same seeds, steps,
recipes, kNN and linear probe) on both inputs and prints, per method and probe, normalized minus raw with its
95% interval over seeds (paired: the same seed gives both runs the same initial weights and data order).

    OMP_NUM_THREADS=1 python benchmarks/ssl_input_normalization.py --methods simsiam moco --seeds 5

Writes ``benchmarks/results/ssl_input_normalization.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from companion import results
from companion.ssl.pretrain import cpu_threads
from companion.ssl import config as ssl_config
from companion.ssl import experiment


class Normalized(torch.nn.Module):
    """``encoder((x - mean) / std)``: input normalization as the encoder's first operation."""

    def __init__(self, encoder, mean: float, std: float):
        super().__init__()
        self.encoder, self.mean, self.std = encoder, mean, std
        self.feature_dim = encoder.feature_dim

    def forward(self, x):
        return self.encoder((x - self.mean) / self.std)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--methods", nargs="+", default=["simsiam", "moco"])
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args(argv)
    if args.seeds < 3:
        parser.error("--seeds must be at least 3 (an interval needs them)")
    cfg = ssl_config.study()
    # one process: the normalization below wraps the encoder builder in this process only
    cfg.methods, cfg.seeds, cfg.workers = tuple(args.methods), tuple(range(args.seeds)), 1
    cfg.__post_init__()
    xtr, ytr, xte, yte = experiment.load_data(cfg)
    mean, std = xtr.mean(), xtr.std()  # one channel: the training images' statistics
    device = torch.device("cpu")
    out = {}
    with cpu_threads(1):
        raw, _ = experiment._compare(cfg, cfg.pretrain, device, xtr, ytr, xte, yte)
        build = experiment.build_encoder
        # the same encoder (same seed, same weights) behind the normalization
        experiment.build_encoder = lambda *a, **k: Normalized(build(*a, **k), float(mean), float(std))
        try:
            norm, _ = experiment._compare(cfg, cfg.pretrain, device, xtr, ytr, xte, yte)
        finally:
            experiment.build_encoder = build
    for m in ("random", *cfg.methods):
        for probe in ("knn", "linear"):
            diff = [a - b for a, b in zip(norm[m][probe]["per_seed"], raw[m][probe]["per_seed"])]
            iv = results.interval(diff)
            out[f"{m}/{probe}"] = {"raw": raw[m][probe]["mean"], "normalized": norm[m][probe]["mean"],
                                   "diff": iv.estimate, "ci95": [iv.low, iv.high], "n": iv.n}
            print(f"{m:8s} {probe:6s} raw {raw[m][probe]['mean']:5.1f}  normalized {norm[m][probe]['mean']:5.1f}"
                  f"  diff {iv.estimate:+.2f} [{iv.low:+.2f}, {iv.high:+.2f}] (n={iv.n})", flush=True)
    path = Path(__file__).parent / "results" / "ssl_input_normalization.json"
    path.write_text(json.dumps({"mean": float(mean), "std": float(std), "seeds": list(cfg.seeds),
                                "results": out}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
