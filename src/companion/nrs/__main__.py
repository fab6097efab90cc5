"""``python -m companion.nrs --preset quick|full``: run the NRS experiment and record its numbers."""

import argparse
import json

from . import config
from .experiment import run


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m companion.nrs", description=__doc__)
    parser.add_argument("--preset", choices=("quick", "full"), default="quick")
    parser.add_argument("--device", default=None, help="torch device for NRS and the MLP (default: CUDA if present)")
    parser.add_argument("--rounds", type=int, default=None, help="repeated splits (default: the preset's, 5)")
    parser.add_argument("--datasets", nargs="+", default=None, help="a subset of the preset's data sets")
    parser.add_argument("--no-cub", action="store_true", help="full preset: skip ResNet-50 + NRS on CUB-200")
    args = parser.parse_args(argv)
    cfg = config.quick() if args.preset == "quick" else config.full()
    if args.device:
        cfg.device = args.device
    if args.rounds is not None:
        cfg.rounds = args.rounds
    if args.datasets:
        cfg.datasets = tuple(args.datasets)
    if args.no_cub:
        cfg.cub = None
    cfg.__post_init__()
    metrics = run(cfg)
    print(json.dumps(metrics["summary"], indent=2))
    return metrics


if __name__ == "__main__":
    main()
