"""``python -m companion.psol --preset quick|full``: run the PSOL experiment and print its numbers."""

from __future__ import annotations

import argparse
import json

from . import config
from .experiment import run


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m companion.psol", description=__doc__)
    parser.add_argument("--preset", choices=("quick", "full"), default="quick")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-root", default=None, help="folder holding CUB_200_2011 (full; default: COMPANION_DATA)")
    parser.add_argument("--checkpoint-dir", default=None, help="where full runs keep checkpoints (resumed when present)")
    parser.add_argument("--epochs", type=int, default=None, help="regressor epochs (full; paper: 6)")
    parser.add_argument("--classifier-epochs", type=int, default=None, help="classifier fine-tuning epochs (full)")
    parser.add_argument("--batch-size", type=int, default=None, help="regressor batch (lr follows 1e-3 * batch / 256 in full)")
    parser.add_argument("--num-workers", type=int, default=None)
    parser.add_argument("--no-download", action="store_true", help="fail instead of downloading CUB")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    changes = {"seed": args.seed, "progress": not args.no_progress}
    if args.data_root:
        changes["data_root"] = args.data_root
    if args.checkpoint_dir:
        changes["checkpoint_dir"] = args.checkpoint_dir
    if args.epochs is not None:
        changes["regressor_epochs"] = args.epochs
    if args.classifier_epochs is not None:
        changes["classifier_epochs"] = args.classifier_epochs
    if args.batch_size is not None:
        changes["regressor_batch_size"] = args.batch_size
        if args.preset == "full":
            changes["regressor_lr"] = 1e-3 * args.batch_size / 256
    if args.num_workers is not None:
        changes["num_workers"] = args.num_workers
    if args.no_download:
        changes["download"] = False
    cfg = (config.full if args.preset == "full" else config.quick)(**changes)
    result = run(cfg)
    print(result.scale)
    print(json.dumps(result.metrics, indent=2))


if __name__ == "__main__":
    main()
