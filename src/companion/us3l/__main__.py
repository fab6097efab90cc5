"""python -m companion.us3l --preset quick|full"""

import argparse
import json

from . import config, run

parser = argparse.ArgumentParser(description="US3L vs naive slimmable SSL vs separately trained widths")
parser.add_argument("--preset", choices=["quick", "full"], default="quick")
parser.add_argument("--epochs", type=int, help="override the full preset's 400 epochs (e.g. 100 for a Colab session)")
args = parser.parse_args()
cfg = config.quick() if args.preset == "quick" else config.full(**({"epochs": args.epochs} if args.epochs else {}))
print(json.dumps(run(cfg)["mean"], indent=2))
