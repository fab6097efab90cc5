"""``python -m companion.tobias --preset quick|full``: run the Tobias experiment and record its numbers."""

import argparse
import json

from . import config
from .experiment import run


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m companion.tobias", description=__doc__)
    parser.add_argument("--preset", choices=("quick", "full"), default="quick")
    parser.add_argument("--device", default=None, help="torch device (default: CUDA if present)")
    parser.add_argument("--skip", nargs="+", default=(), choices=("localization", "cub", "ssl"),
                        help="parts of the preset to leave out")
    parser.add_argument("--cub-limit", type=int, default=None, help="full preset: only the first N CUB test images")
    parser.add_argument("--epochs", type=int, default=None, help="override the SSL pretraining epochs (full preset)")
    parser.add_argument("--num-workers", type=int, default=None, help="DataLoader workers for CUB")
    args = parser.parse_args(argv)
    cfg = config.quick() if args.preset == "quick" else config.full()
    cfg.device = args.device
    for part in args.skip:
        setattr(cfg, part, None)
    if args.cub_limit is not None and cfg.cub is not None:
        cfg.cub.limit = args.cub_limit
    if args.num_workers is not None and cfg.cub is not None:
        cfg.cub.num_workers = args.num_workers
    if args.epochs is not None and cfg.ssl is not None:
        cfg.ssl.pretrain = cfg.ssl.pretrain.replace(epochs=args.epochs, steps=None)
    cfg.__post_init__()
    metrics = run(cfg)
    print(json.dumps(metrics, indent=1, default=float)[:4000])
    return metrics


if __name__ == "__main__":
    main()
