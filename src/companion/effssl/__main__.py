"""Efficient single-branch SSL: the ablation ladder (NPID, + feature calibration, + the corrected bank
update, + SqrtKL) against the untrained encoder and SimSiam, recorded in results/effssl.json.

quick: digits on the CPU in seconds; study: the same with ten seeds (a few minutes); full: CIFAR-10/100
with ResNet-18 on a GPU; colab: the full recipe on CIFAR-10 shortened to one Colab session.
"""

from __future__ import annotations

import json

from .. import results, runtime
from . import config as presets
from .experiment import run


def main(argv=None) -> dict:
    parser = runtime.cli_parser("effssl", __doc__, presets=tuple(presets.PRESETS))
    parser.add_argument("--epochs", type=int, help="override the colab or full preset's epochs (40 and 200)")
    parser.add_argument("--seeds", type=int, nargs="+", help="override the preset's seeds")
    parser.add_argument("--datasets", nargs="+", choices=["digits", "scenes", "cifar10", "cifar100"],
                        help="override the preset's datasets")
    parser.add_argument("--no-record", action="store_true", help="do not write results/effssl.json")
    args = parser.parse_args(argv)
    device = runtime.require_accelerator(args.preset, args.device)
    overrides: dict = {"device": str(device)}
    if args.epochs is not None:
        if args.preset not in runtime.GPU_PRESETS:
            parser.error("--epochs applies to the colab and full presets (quick and study count steps)")
        if args.epochs < 1:
            parser.error(f"--epochs must be >= 1, got {args.epochs}")
        overrides["epochs"] = args.epochs
    if args.seeds:
        overrides["seeds"] = tuple(args.seeds)
    if args.datasets:
        overrides["datasets"] = tuple(args.datasets)
    cfg = presets.PRESETS[args.preset](**overrides)
    out = run(cfg, record=not args.no_record)
    summary = {d: {m: round(r["knn"], 2) for m, r in rows.items()} for d, rows in out.items() if d not in ("settings", "claims")}
    print(json.dumps(summary, indent=2))
    for c in out.get("claims", []):
        low, high = c["ci95"]
        print(results.claim_line(c))
    return out


if __name__ == "__main__":
    raise SystemExit(runtime.run_cli(main))
