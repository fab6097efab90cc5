"""``python -m companion.vit2040 --preset quick|colab|full``: run the chapter's experiment and print it."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace

from .config import PRESETS
from .experiment import run


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m companion.vit2040", description=__doc__)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="quick",
                        help="quick: digits on a CPU; colab: Flowers-102 in a Colab session; full: the paper's schedule")
    parser.add_argument("--seeds", type=int, nargs="+", help="training seeds (default: the preset's)")
    parser.add_argument("--device", help="cuda, cpu, ... (default: the best available)")
    parser.add_argument("--ablation", action=argparse.BooleanOptionalAction, default=None,
                        help="rebuild the paper's ablation rows too (default: the preset's)")
    parser.add_argument("--pretrain-epochs", type=int)
    parser.add_argument("--finetune-epochs", type=int)
    parser.add_argument("--checkpoint-dir", help="where full runs checkpoint and resume")
    args = parser.parse_args(argv)

    config = PRESETS[args.preset]()
    changes = {}
    if args.seeds:
        changes["seeds"] = tuple(args.seeds)
    if args.device:
        changes["device"] = args.device
    if args.ablation is not None:
        changes["run_ablation"] = args.ablation
    if args.pretrain_epochs:
        changes["pretrain"] = replace(config.pretrain, epochs=args.pretrain_epochs)
    if args.finetune_epochs:
        changes["finetune"] = replace(config.finetune, epochs=args.finetune_epochs)
    if args.checkpoint_dir:
        changes["checkpoint_dir"] = args.checkpoint_dir
    result = run(replace(config, **changes))
    print(json.dumps(result.metrics, indent=2))
    return result.metrics


if __name__ == "__main__":
    main()
