"""``python -m companion.nrs --preset quick|study|colab|full``: run the NRS experiment and record its numbers.

quick: seconds on one CPU thread, 2 splits; study: the same over 5 splits (minutes); full: the
paper's five data sets and ResNet-50 + NRS on CUB-200 (a GPU job); colab: the full preset shortened
to one Colab session.
"""

import json

from .. import results, runtime
from . import config
from .experiment import run


def main(argv=None) -> dict:
    parser = runtime.cli_parser("nrs", __doc__, presets=tuple(config.PRESETS))
    parser.add_argument("--rounds", type=int, default=None, help="repeated splits (default: the preset's)")
    parser.add_argument("--datasets", nargs="+", default=None, help="a subset of the preset's data sets")
    parser.add_argument("--no-cub", action="store_true", help="colab and full presets: skip ResNet-50 + NRS on CUB-200")
    args = parser.parse_args(argv)
    cfg = config.PRESETS[args.preset]()
    if args.preset in runtime.GPU_PRESETS:
        cfg.device = str(runtime.require_accelerator(args.preset, args.device))
    elif args.device not in (None, "cpu"):
        raise ValueError(f"the {args.preset} preset runs on the CPU (bit-repeatable numbers); got --device {args.device}")
    if args.rounds is not None:
        cfg.rounds = args.rounds
    if args.datasets:
        cfg.datasets = tuple(args.datasets)
    if args.no_cub:
        cfg.cub = None
    cfg.__post_init__()
    metrics = run(cfg)
    print(json.dumps(metrics["summary"], indent=2))
    for c in metrics["claims"]:
        print(results.claim_line(c))
    return metrics


if __name__ == "__main__":
    raise SystemExit(runtime.run_cli(main))
