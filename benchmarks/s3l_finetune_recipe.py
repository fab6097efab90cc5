"""What the CPU presets' short fine-tuning changes in the S3L chapter's claims (a departure it lists).

S3L's ``main_freeze.py`` fine-tunes for 120 epochs with mixup; the quick and study runs fine-tune for 40
steps (about two epochs of the 1,200 glyphs) without mixup, a CPU budget. This script reruns the study's
first seeds with the same pretraining and a fine-tuning five times as long with mixup (alpha 1), and
prints, per arm, the accuracy under each recipe; for the chapter's claim (8 px pretraining minus
16 px pretraining, both fine-tuned at 16 px), its estimate under each recipe and the change; and the
premise the claims rest on (16 px pretraining minus the untrained network) under each; paired by seed. The short recipe's numbers are the study record's own samples for these seeds (the same seed
gives the same numbers, so they are not recomputed).

    python benchmarks/s3l_finetune_recipe.py --seeds 5

Writes ``benchmarks/results/s3l_finetune_recipe.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from companion import results
from companion.s3l import config as s3l_config
from companion.s3l import experiment

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--factor", type=int, default=5, help="fine-tuning steps times the study's")
    args = parser.parse_args(argv)
    if args.seeds < 3:
        parser.error("--seeds must be at least 3 (an interval needs them)")
    study = s3l_config.study()
    record = results.read("s3l", ROOT / "results")["study"]
    if record["provenance"]["code_hash"] != results.code_hash("s3l"):
        parser.error("the S3L study record is stale: rerun the study first (its samples are the short recipe)")
    seeds = tuple(range(args.seeds))
    long = study.replace(seeds=seeds, arms={"low": (8,), "full": (16,)}, premise=False,
                         finetune_steps=args.factor * study.finetune_steps, mixup_alpha=1.0)
    out = experiment.run(long, record=False)
    short = record["metrics"]["per_seed"]
    report = {"seeds": list(seeds), "short": {"finetune_steps": study.finetune_steps, "mixup_alpha": study.mixup_alpha},
              "long": {"finetune_steps": long.finetune_steps, "mixup_alpha": long.mixup_alpha}, "arms": {}}
    for arm in ("low", "full", "untrained"):
        a, b = short[arm]["finetune"][: len(seeds)], out["per_seed"][arm]["finetune"]
        iv = results.interval(b, a)
        report["arms"][arm] = {"short": sum(a) / len(a), "long": sum(b) / len(b), "change": iv.estimate,
                               "ci95": [iv.low, iv.high], "per_seed_short": a, "per_seed_long": b}
        print(f"{arm:9s} short {sum(a) / len(a):5.1f}  long {sum(b) / len(b):5.1f}  "
              f"change {iv.estimate:+.2f} [{iv.low:+.2f}, {iv.high:+.2f}]", flush=True)
    gap = {name: [lo - fu for lo, fu in zip(per["low"]["finetune"][: len(seeds)], per["full"]["finetune"])]
           for name, per in (("short", short), ("long", out["per_seed"]))}
    for name, diffs in gap.items():
        iv = results.interval(diffs)
        report[f"claim_{name}"] = {"estimate": iv.estimate, "ci95": [iv.low, iv.high], "n": iv.n}
        print(f"8 px minus 16 px pretraining, {name} fine-tuning: {iv.estimate:+.2f} [{iv.low:+.2f}, {iv.high:+.2f}]")
    # the premise the claims rest on: fine-tuning from the 16 px pretraining beats the untrained network
    for name, per in (("short", short), ("long", out["per_seed"])):
        iv = results.interval(per["full"]["finetune"][: len(seeds)], per["untrained"]["finetune"][: len(seeds)])
        report[f"pretraining_helps_{name}"] = {"estimate": iv.estimate, "ci95": [iv.low, iv.high], "n": iv.n}
        print(f"16 px pretraining minus untrained, {name} fine-tuning: {iv.estimate:+.2f} "
              f"[{iv.low:+.2f}, {iv.high:+.2f}]")
    iv = results.interval(gap["long"], gap["short"])
    report["claim_change"] = {"estimate": iv.estimate, "ci95": [iv.low, iv.high], "n": iv.n}
    print(f"change of the claim's estimate: {iv.estimate:+.2f} [{iv.low:+.2f}, {iv.high:+.2f}]")
    path = Path(__file__).parent / "results" / "s3l_finetune_recipe.json"
    path.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
