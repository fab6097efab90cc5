"""``python -m companion.vit2040 --preset quick|study|colab|full``: instance-discrimination pretraining and
fine-tuning of a ViT against the same ViT trained from scratch (and, with ``--ablation``, the paper's
ablation ladder); recorded in ``results/vit2040.json`` with the claims. ``--preset colab`` (or
``--preset full --colab``) is the full recipe shortened to a Colab session."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace

from .. import results, runtime
from .config import PRESETS
from .experiment import run


def main(argv=None) -> dict:
    parser = runtime.cli_parser("vit2040", __doc__, presets=tuple(PRESETS))
    parser.add_argument("--colab", action="store_true",
                        help="with --preset full: the same as --preset colab, 200 + 100 epochs (a Colab session)")
    parser.add_argument("--seeds", type=int, nargs="+", help="training seeds (default: the preset's)")
    parser.add_argument("--ablation", action=argparse.BooleanOptionalAction, default=None,
                        help="rebuild the paper's ablation rows too (default: the preset's)")
    parser.add_argument("--pretrain-epochs", type=int)
    parser.add_argument("--finetune-epochs", type=int)
    parser.add_argument("--checkpoint-dir", help="where full runs checkpoint and resume")
    args = parser.parse_args(argv)
    if args.colab and args.preset not in ("full", "colab"):
        parser.error("--colab shortens the full preset; use --preset colab (or --preset full --colab)")
    preset = "colab" if args.colab else args.preset
    device = runtime.require_accelerator(preset, args.device)

    config = PRESETS[preset]()
    changes = {}
    if args.seeds:
        changes["seeds"] = tuple(args.seeds)
    if args.device or preset in runtime.GPU_PRESETS:
        changes["device"] = str(device)
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
    for c in result.claims:
        print(results.claim_line(c))
    return result.metrics


if __name__ == "__main__":
    raise SystemExit(runtime.run_cli(main))
