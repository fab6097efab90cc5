"""``python -m companion.tobias --preset quick|study|colab|full``: run the Tobias experiment (random-CNN
boxes against boxes that ignore the image; MoCo v2 with and without the background swap) and record its
numbers and claims in ``results/tobias.json``. ``colab`` is the full preset with half the MoCo v2
epochs (a Colab session), recorded under the ``full`` tier."""

from .. import results, runtime
from . import config
from .experiment import run


def main(argv=None) -> dict:
    parser = runtime.cli_parser("tobias", __doc__, presets=tuple(config.PRESETS))
    parser.add_argument("--skip", nargs="+", default=(), choices=("localization", "cub", "ssl"),
                        help="parts of the preset to leave out")
    parser.add_argument("--cub-limit", type=int, default=None,
                        help="full and colab presets: only the first N CUB test images")
    parser.add_argument("--epochs", type=int, default=None,
                        help="override the SSL pretraining epochs (full and colab presets)")
    parser.add_argument("--num-workers", type=int, default=None, help="DataLoader workers for CUB")
    args = parser.parse_args(argv)
    device = runtime.require_accelerator(args.preset, args.device)
    cfg = config.PRESETS[args.preset]()
    if args.device or args.preset in runtime.GPU_PRESETS:
        cfg.device = str(device)
    for part in args.skip:
        setattr(cfg, part, None)
    if args.cub_limit is not None:
        if args.cub_limit < 1:
            raise ValueError(f"--cub-limit must be a positive number of images, got {args.cub_limit}")
        if cfg.cub is not None:
            cfg.cub.limit = args.cub_limit
    if args.num_workers is not None and cfg.cub is not None:
        cfg.cub.num_workers = args.num_workers
    if args.epochs is not None and cfg.ssl is not None:
        cfg.ssl.pretrain = cfg.ssl.pretrain.replace(epochs=args.epochs, steps=None)
    cfg.__post_init__()
    command = "python -m companion.tobias " + " ".join(argv if argv is not None else __import__("sys").argv[1:])
    metrics = run(cfg, command=command.strip())
    for c in metrics.get("claims", ()):
        print(results.claim_line(c))
    return metrics


if __name__ == "__main__":
    raise SystemExit(runtime.run_cli(main))
