"""``python -m companion.fewshot --preset quick|full``: run the experiment and print its tables."""

from __future__ import annotations

import argparse
from dataclasses import replace

from . import config as presets
from .experiment import run


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m companion.fewshot", description=__doc__)
    parser.add_argument("--preset", choices=("quick", "full"), default="quick")
    parser.add_argument("--episodes", type=int, help="episodes per shot (default: the preset's)")
    parser.add_argument("--shots", type=int, nargs="+", help="e.g. --shots 1 5")
    parser.add_argument("--methods", nargs="+", choices=presets.METHODS, help="methods to score")
    parser.add_argument("--chunk", type=int, help="episodes fine-tuned in parallel")
    parser.add_argument("--device", help="cuda, cpu or mps (default: the best available)")
    parser.add_argument("--checkpoint-dir", help="pre-training checkpoints and finished episode chunks")
    parser.add_argument("--data-root", help="folder holding (or receiving) CIFAR-100")
    parser.add_argument("--seed", type=int)
    args = parser.parse_args(argv)

    config = presets.preset(args.preset)
    changes = {k: v for k, v in {
        "n_episodes": args.episodes, "shots": tuple(args.shots) if args.shots else None,
        "methods": tuple(args.methods) if args.methods else None, "chunk": args.chunk, "device": args.device,
        "checkpoint_dir": args.checkpoint_dir, "data_root": args.data_root, "seed": args.seed,
    }.items() if v is not None}
    config = replace(config, **changes)
    result = run(config)
    for shot in config.shots:
        print(f"\n{config.n_way}-way {shot}-shot, {config.n_episodes} episodes (accuracy in %)\n")
        print(result.table(shot))
    print(f"\nseconds: {result.seconds}")


if __name__ == "__main__":
    main()
