"""python -m companion.effssl --preset quick|full"""

import argparse
import json

from . import config, run

parser = argparse.ArgumentParser(description="single-branch instance discrimination (ablation) vs SimSiam at equal budget")
parser.add_argument("--preset", choices=["quick", "full"], default="quick")
parser.add_argument("--epochs", type=int, help="override the full preset's 200 epochs (e.g. 50 for one Colab session)")
parser.add_argument("--datasets", nargs="+", choices=["scenes", "cifar10", "cifar100"], help="override the preset's datasets")
args = parser.parse_args()
overrides = {}
if args.epochs:
    if args.preset == "quick":
        parser.error("--epochs applies to the full preset (the quick one counts steps)")
    overrides["epochs"] = args.epochs
if args.datasets:
    overrides["datasets"] = tuple(args.datasets)
cfg = config.quick(**overrides) if args.preset == "quick" else config.full(**overrides)
out = run(cfg)
print(json.dumps({d: {m: round(r["knn"], 2) for m, r in rows.items()} for d, rows in out.items() if d != "settings"}, indent=2))
