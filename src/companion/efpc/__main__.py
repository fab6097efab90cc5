"""``python -m companion.efpc --preset quick|full``: run the EFPC experiment and print its numbers."""

from __future__ import annotations

import argparse
import json

from . import config as presets
from .experiment import run


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m companion.efpc", description=__doc__)
    parser.add_argument("--preset", choices=("quick", "full"), default="quick")
    parser.add_argument("--steps", type=int, help="training steps per compressor (overrides the preset)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", help="cpu, cuda, ... (default: the preset's choice)")
    parser.add_argument("--checkpoint-dir", help="full run: where checkpoints and predictions go")
    parser.add_argument("--eval-per-task", type=int, help="full run: LongBench questions per task")
    args = parser.parse_args(argv)
    overrides = {"seed": args.seed}
    for key in ("steps", "device", "checkpoint_dir", "eval_per_task"):
        if getattr(args, key) is not None:
            overrides[key] = getattr(args, key)
    config = getattr(presets, args.preset)(**overrides)
    out = run(config)
    if hasattr(out, "table"):
        print(out.table())
        print(json.dumps({k: v for k, v in out.metrics.items() if k not in out.rates}, indent=2))
    else:
        print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
