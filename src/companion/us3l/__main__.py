"""US3L against naive slimmable SSL and networks trained alone, at every width.

``python -m companion.us3l --preset quick|study|colab|full`` runs the experiment and records it in
``results/us3l.json``; ``full`` trains on CIFAR-100 on a GPU and resumes from its checkpoints, ``colab``
is the same shortened to a Colab session (recorded under the full tier, as a customised run).
"""

from __future__ import annotations

import json

from .. import runtime
from . import config as presets
from .experiment import run


def main(argv=None) -> dict:
    parser = runtime.cli_parser("us3l", __doc__.splitlines()[0], presets=runtime.PRESETS + ("colab",))
    parser.add_argument("--seeds", type=int, nargs="+", help="override the preset's seeds")
    parser.add_argument("--epochs", type=int, help="override the preset's epochs (full: 400, colab: 8)")
    parser.add_argument("--no-record", action="store_true", help="do not write results/us3l.json")
    args = parser.parse_args(argv)
    device = runtime.require_accelerator(args.preset, args.device)
    overrides = {"device": str(device) if args.device or args.preset in runtime.GPU_PRESETS else None}
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if args.seeds:
        overrides["seeds"] = tuple(args.seeds)
    if args.epochs is not None:
        overrides.update(epochs=args.epochs, steps=None)
    cfg = presets.PRESETS[args.preset](**overrides)
    out = run(cfg, record=not args.no_record)
    print(json.dumps(out["mean"], indent=1))
    return out


if __name__ == "__main__":
    raise SystemExit(runtime.run_cli(main))
