"""``python -m companion.ssql --preset quick|full|paper``: run the SSQL experiment and record it.

``full`` is CIFAR-10 / ResNet-18 for 200 epochs per method, ``paper`` the same for 400 epochs; both
resume from their checkpoints when interrupted.
"""

from __future__ import annotations

import argparse
import json

from . import config as presets
from .experiment import run


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m companion.ssql", description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(presets.PRESETS), default="quick")
    parser.add_argument("--seeds", type=int, nargs="+", help="override the preset's seeds")
    parser.add_argument("--epochs", type=int, help="override the pretraining epochs (full presets)")
    parser.add_argument("--steps", type=int, help="override the pretraining steps")
    parser.add_argument("--device", help="cpu, cuda, ... (default: the preset's)")
    parser.add_argument("--checkpoint-dir", help="where full runs keep checkpoints")
    parser.add_argument("--no-record", action="store_true", help="do not write results/ssql.json")
    args = parser.parse_args(argv)
    overrides = {}
    if args.seeds:
        overrides["seeds"] = tuple(args.seeds)
    if args.epochs is not None:
        overrides.update(epochs=args.epochs, steps=None)
    if args.steps is not None:
        overrides.update(steps=args.steps, epochs=None)
    if args.device:
        overrides["device"] = args.device
    if args.checkpoint_dir:
        overrides["checkpoint_dir"] = args.checkpoint_dir
    if args.no_record:
        overrides["record"] = False
    cfg = presets.PRESETS[args.preset](**overrides)
    result = run(cfg)
    print(result.summary())
    print()
    print(result.table("knn", None))
    print(json.dumps(result.metrics["pretrain_wall_seconds"], indent=1))


if __name__ == "__main__":
    main()
