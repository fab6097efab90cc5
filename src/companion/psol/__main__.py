"""``python -m companion.psol --preset quick|study|colab|full``: run the PSOL experiment and print its numbers.

quick: under a minute on a CPU, 3 seeds; study: the same run over 5 seeds (a few minutes), enough to decide
the claims; full: CUB-200-2011 on a GPU; colab: the full run with half the classifier epochs.
"""

from __future__ import annotations

import json

from .. import results, runtime
from . import config
from .experiment import run


def main(argv=None) -> None:
    parser = runtime.cli_parser("psol", __doc__, presets=tuple(config.PRESETS))
    parser.add_argument("--seed", type=int, default=None, help="full: the seed (quick/study: their seeds)")
    parser.add_argument("--data-root", default=None, help="folder holding CUB_200_2011 (full; default: COMPANION_DATA)")
    parser.add_argument("--checkpoint-dir", default=None, help="where colab/full runs keep checkpoints, resumed when present (default: "
                             "runtime.checkpoint_root('psol'): COMPANION_CHECKPOINTS, Drive on Colab, else the cache)")
    parser.add_argument("--epochs", type=int, default=None, help="regressor epochs (full; paper: 6)")
    parser.add_argument("--classifier-epochs", type=int, default=None, help="classifier fine-tuning epochs (full)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="regressor batch (lr follows 1e-3 * batch / 256 in full)")
    parser.add_argument("--num-workers", type=int, default=None)
    parser.add_argument("--no-download", action="store_true", help="fail instead of downloading CUB")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    changes = {"progress": not args.no_progress}
    if args.preset in runtime.GPU_PRESETS:
        device = runtime.require_accelerator(args.preset, args.device)
        changes["device"] = str(device)
    elif args.device not in (None, "cpu"):
        raise ValueError(f"the {args.preset} preset runs on the CPU (bit-repeatable numbers); got --device {args.device}")
    if args.seed is not None:
        changes["seed"] = args.seed
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
        if args.preset in runtime.GPU_PRESETS:
            changes["regressor_lr"] = 1e-3 * args.batch_size / 256
    if args.num_workers is not None:
        changes["num_workers"] = args.num_workers
    if args.no_download:
        changes["download"] = False
    cfg = config.PRESETS[args.preset](**changes)
    result = run(cfg)
    print(result.scale)
    print(json.dumps(result.metrics, indent=2))
    for c in result.claims:
        print(results.claim_line(c))


if __name__ == "__main__":
    raise SystemExit(runtime.run_cli(main))
