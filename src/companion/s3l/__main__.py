"""python -m companion.s3l --preset quick|full"""

from __future__ import annotations

import argparse
import json

from . import config, run


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description="S3L: pretrain at low, full and multi-stage resolution, then fine-tune")
    parser.add_argument("--preset", choices=["quick", "full"], default="quick")
    parser.add_argument("--epochs", type=int, help="pretraining epochs per schedule (full preset: 200)")
    parser.add_argument("--finetune-epochs", type=int, help="fine-tuning epochs (full preset: 60)")
    parser.add_argument("--queue", choices=["keep", "reset", "refill"], help="MoCo's queue between stages (default keep)")
    parser.add_argument("--seed", type=int)
    args = parser.parse_args(argv)
    overrides = {k: v for k, v in (("queue", args.queue), ("seed", args.seed)) if v is not None}
    if args.preset == "full":
        overrides.update({k: v for k, v in (("epochs", args.epochs), ("finetune_epochs", args.finetune_epochs)) if v})
        cfg = config.full(**overrides)
    else:
        if args.epochs or args.finetune_epochs:
            parser.error("--epochs and --finetune-epochs apply to the full preset")
        cfg = config.quick(**overrides)
    out = run(cfg)
    rows = {arm: {k: v for k, v in m.items() if k in ("resolutions", "steps", "pretrain_gflops", "knn", "finetune")}
            for arm, m in out["arms"].items()}
    print(json.dumps(rows, indent=2))
    return out


if __name__ == "__main__":
    main()
