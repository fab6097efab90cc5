"""SSQL against SimSiam after post-training quantization to many bit-widths.

``python -m companion.ssql --preset quick|study|colab|full`` runs the experiment and records it in
``results/ssql.json``; ``--preset paper`` is the full run with the paper's 400 epochs, ``colab`` the
full recipe shortened to one Colab session. ``colab``, ``full`` and ``paper`` train on CIFAR-10 on a GPU
and resume from their checkpoints when interrupted.
"""

from __future__ import annotations

import json

from .. import runtime
from . import config as presets
from .experiment import run


def main(argv=None) -> None:
    parser = runtime.cli_parser("ssql", __doc__.splitlines()[0], presets=tuple(presets.PRESETS))
    parser.add_argument("--seeds", type=int, nargs="+", help="override the preset's seeds")
    parser.add_argument("--epochs", type=int, help="override the pretraining epochs (full presets)")
    parser.add_argument("--steps", type=int, help="override the pretraining steps")
    parser.add_argument("--checkpoint-dir", help="where full runs keep checkpoints")
    parser.add_argument("--no-record", action="store_true", help="do not write results/ssql.json")
    args = parser.parse_args(argv)
    device = runtime.require_accelerator("full" if args.preset == "paper" else args.preset, args.device)
    overrides = {}
    if args.device or args.preset in (*runtime.GPU_PRESETS, "paper"):
        overrides["device"] = str(device)
    if args.seeds:
        overrides["seeds"] = tuple(args.seeds)
    if args.epochs is not None:
        overrides.update(epochs=args.epochs, steps=None)
    if args.steps is not None:
        overrides.update(steps=args.steps, epochs=None)
    if args.checkpoint_dir:
        overrides["checkpoint_dir"] = args.checkpoint_dir
    if args.no_record:
        overrides["record"] = False
    result = run(presets.PRESETS[args.preset](**overrides))
    print(result.summary())
    print()
    print(result.table("knn", None))
    print(json.dumps(result.timings.get("pretrain_wall_seconds", {}), indent=1))


if __name__ == "__main__":
    raise SystemExit(runtime.run_cli(main))
