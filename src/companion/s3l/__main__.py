"""``python -m companion.s3l --preset quick|study|colab|full``: S3L, pretraining at a small, the full and a
multi-stage resolution under the same number of steps, then fine-tuning at the full resolution, beside
the untrained network; recorded in ``results/s3l.json`` with the claims. ``colab`` is the full recipe
shortened to a Colab session (recorded under the full tier, as a customised run)."""

from __future__ import annotations

import json

from .. import results, runtime
from . import config
from .experiment import run


def main(argv=None) -> dict:
    parser = runtime.cli_parser("s3l", __doc__, presets=runtime.PRESETS + ("colab",))
    parser.add_argument("--epochs", type=int, help="pretraining epochs per schedule (full: 200, colab: 25)")
    parser.add_argument("--finetune-epochs", type=int, help="fine-tuning epochs (full: 120, colab: 8)")
    parser.add_argument("--queue", choices=["keep", "reset", "refill"], help="MoCo's queue between stages (default keep)")
    parser.add_argument("--seeds", type=int, nargs="+", help="seeds to repeat the comparison with")
    args = parser.parse_args(argv)
    device = runtime.require_accelerator(args.preset, args.device)
    overrides = {k: v for k, v in (("queue", args.queue),) if v is not None}
    if args.seeds:
        overrides["seeds"] = tuple(args.seeds)
    if args.device or args.preset in runtime.GPU_PRESETS:
        overrides["device"] = str(device)
    if args.preset in runtime.GPU_PRESETS:
        lengths = (("epochs", args.epochs), ("finetune_epochs", args.finetune_epochs))
        overrides.update({k: v for k, v in lengths if v is not None})
    elif args.epochs is not None or args.finetune_epochs is not None:
        parser.error("--epochs and --finetune-epochs apply to the colab and full presets")
    cfg = config.PRESETS[args.preset](**overrides)
    out = run(cfg)
    rows = {arm: {k: v for k, v in m.items() if k in ("resolutions", "steps", "pretrain_gflops", "knn", "linear", "finetune")}
            for arm, m in out["arms"].items()}
    print(json.dumps(rows, indent=2))
    for c in out["claims"]:
        print(results.claim_line(c))
    return out


if __name__ == "__main__":
    raise SystemExit(runtime.run_cli(main))
