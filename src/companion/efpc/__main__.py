"""Run the EFPC experiment and print its numbers: quick (one seed, CPU, under a minute), study (ten
seeds, a few minutes), colab (the full run shortened to under an hour on a T4) or full (the paper's
data on a GPU)."""

from __future__ import annotations

import json

from .. import results, runtime
from . import config as presets
from .experiment import run


def main(argv=None) -> None:
    parser = runtime.cli_parser("efpc", __doc__, presets=tuple(presets.PRESETS))
    parser.add_argument("--steps", type=int, help="training steps per compressor (overrides the preset)")
    parser.add_argument("--checkpoint-dir", help="full run: where checkpoints and predictions go")
    parser.add_argument("--eval-per-task", type=int, help="full run: LongBench questions per task")
    args = parser.parse_args(argv)
    if args.preset in runtime.GPU_PRESETS:
        runtime.require_accelerator(args.preset, args.device)
    overrides = {}
    for key in ("steps", "device", "checkpoint_dir", "eval_per_task"):
        if getattr(args, key) is not None:
            overrides[key] = getattr(args, key)
    config = presets.PRESETS[args.preset](**overrides)
    out = run(config)
    if hasattr(out, "table"):
        print(out.table("handwritten"))
        print()
        print(out.table("generated"))
        for c in out.claims:
            print(results.claim_line(c))
    else:
        claims = out.pop("claims", [])
        print(json.dumps(out, indent=2))
        for c in claims:
            print(results.claim_line(c))


if __name__ == "__main__":
    raise SystemExit(runtime.run_cli(main))
