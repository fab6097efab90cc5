"""The measured effect of this book's departures from the released recipe on the CPU testbed: the full
method trained with one released setting put back at a time (its optimizer, its head, its crops), paired
by seed with the study setting. ``python -m companion.effssl.departures [--seeds 0 1 2 3 4]`` prints one
line per departure: the mean kNN difference (released minus this book's) and its paired t interval.

Book section: *Efficient SSL* "Differences from the official code".
"""

from __future__ import annotations

import argparse

from .. import results
from .config import FULL_METHOD, study

#: Each departure as the config changes that put the released setting back (CIFAR's ``run.sh``: SGD
#: lr 1.0 with weight decay 1e-4; a 3-layer head of 2048 to d = 2048; crops of 20-100% of the image).
DEPARTURES = {
    "optimizer (lr 1.0, weight decay 1e-4)": {"lr": 1.0, "weight_decay": 1e-4},
    "head (3 layers of 2048, d = 2048)": {"head_layers": 3, "hidden": 2048, "dim": 2048},
    "crops (20-100% of the image)": {"crop_scale": (0.2, 1.0)},
}


def measure(seeds=(0, 1, 2, 3, 4), departures: dict | None = None) -> dict:
    """``{departure: claim}``: each a paired comparison (released setting minus the study's) of the full
    method's kNN accuracy over ``seeds``, at the study's 150 steps; no record is written."""
    from .experiment import run

    base_cfg = study(seeds=tuple(seeds), methods=(FULL_METHOD,), eval_points=1)
    base = run(base_cfg, record=False)["digits"][FULL_METHOD]["knn_per_seed"]
    out = {}
    for name, changes in (departures or DEPARTURES).items():
        other = run(base_cfg.replace(**changes), record=False)["digits"][FULL_METHOD]["knn_per_seed"]
        out[name] = results.claim("sanity_departure", f"released {name} against this book's",
                                  "kNN accuracy on digits, released setting minus this book's, paired by seed",
                                  "study", other, base)
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m companion.effssl.departures", description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="training seeds (n >= 2)")
    args = parser.parse_args(argv)
    if len(args.seeds) < 2:
        parser.error(f"--seeds needs at least two seeds for an interval, got {args.seeds}")
    out = measure(tuple(args.seeds))
    for name, c in out.items():
        low, high = c["ci95"]
        print(f"{name}: {c['estimate']:+.1f} kNN points (95% interval {low:+.1f} to {high:+.1f}, n = {c['n']})")
    return out


if __name__ == "__main__":
    main()
