"""Run the worst-case few-shot experiment and print its tables and claims: quick (CPU, digits, one
seed), study (five seeds), full (CIFAR-FS and ResNet-12 on a GPU) or colab (the full preset shortened
to one Colab session)."""

from __future__ import annotations

from dataclasses import replace

from .. import results, runtime
from . import config as presets
from .experiment import run


def main(argv=None) -> None:
    parser = runtime.cli_parser("fewshot", __doc__, presets=tuple(presets.PRESETS))
    parser.add_argument("--episodes", type=int, help="episodes per shot (default: the preset's)")
    parser.add_argument("--shots", type=int, nargs="+", help="e.g. --shots 1 5")
    parser.add_argument("--methods", nargs="+", choices=presets.METHODS, help="methods to score")
    parser.add_argument("--chunk", type=int, help="episodes fine-tuned in parallel")
    parser.add_argument("--checkpoint-dir", help="pre-training checkpoints and finished episode chunks")
    parser.add_argument("--data-root", help="folder holding (or receiving) CIFAR-100")
    parser.add_argument("--seed", type=int)
    args = parser.parse_args(argv)
    if args.preset in runtime.GPU_PRESETS:
        runtime.require_accelerator(args.preset, args.device)
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
    for c in result.claims:
        print(results.claim_line(c))


if __name__ == "__main__":
    raise SystemExit(runtime.run_cli(main))
