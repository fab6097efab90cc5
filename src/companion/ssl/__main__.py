"""``python -m companion.ssl --preset quick|full``: the toolkit's random-init vs pretrained kNN comparison."""

import argparse

from . import config
from .experiment import run, table


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m companion.ssl", description=__doc__)
    parser.add_argument("--preset", choices=("quick", "full"), default="quick")
    parser.add_argument("--methods", nargs="+", default=None, help="subset of simsiam moco byol simclr")
    parser.add_argument("--seeds", nargs="+", type=int, default=None)
    args = parser.parse_args(argv)
    cfg = config.quick() if args.preset == "quick" else config.full()
    if args.methods:
        cfg.methods = tuple(args.methods)
    if args.seeds:
        cfg.seeds = tuple(args.seeds)
    metrics = run(cfg)
    print(table(metrics))
    return metrics


if __name__ == "__main__":
    main()
