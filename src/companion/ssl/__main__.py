"""``python -m companion.ssl --preset quick|study|colab|full``: the toolkit's sanity check on the shared
benchmark, every SSL method's encoder against the same network at random initialization (kNN and
linear probe), recorded in ``results/ssl_toolkit.json``. ``colab`` is the full preset (CIFAR-10,
ResNet-18, GPU) shortened to one Colab session; both resume from their checkpoints when rerun."""

from dataclasses import replace

from .. import results, runtime
from . import config
from .experiment import run, table


def main(argv=None) -> dict:
    parser = runtime.cli_parser("ssl", __doc__, presets=tuple(config.PRESETS))
    parser.add_argument("--methods", nargs="+", default=None, help="subset of simsiam byol moco simclr")
    parser.add_argument("--seeds", nargs="+", type=int, default=None)
    args = parser.parse_args(argv)
    device = runtime.require_accelerator(args.preset, args.device)
    cfg = config.PRESETS[args.preset]()
    if args.methods:
        unknown = [m for m in args.methods if m not in config.bench.RECIPES]
        if unknown:
            raise ValueError(f"unknown methods {unknown}; choose from {sorted(config.bench.RECIPES)}")
        cfg = replace(cfg, methods=tuple(args.methods))
    if args.seeds:
        cfg = replace(cfg, seeds=tuple(args.seeds))  # replace checks the config again (no repeated seeds)
    if args.device or args.preset in runtime.GPU_PRESETS:
        cfg = replace(cfg, pretrain=cfg.pretrain.replace(device=str(device)))
    metrics = run(cfg)
    print(table(metrics))
    for c in metrics["claims"]:
        print(results.claim_line(c))
    return metrics


if __name__ == "__main__":
    raise SystemExit(runtime.run_cli(main))
