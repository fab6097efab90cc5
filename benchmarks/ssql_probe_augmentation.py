"""What the SSQL chapter's linear probe on features extracted once changes (a departure it lists).

The SSQL code's linear evaluation (``workers/linear.py``) feeds augmented images (random resized crops of
80 to 100% of the area and horizontal flips) through the frozen, quantized encoder at every epoch; the
chapter trains the same classifier (SGD, momentum 0.9, lr 30, no weight decay, /10 at 60 and 80 of 100
epochs, batch 128) on features extracted once from the unaugmented images. This script pretrains the
study's SimSiam and SSQL encoders for the first seeds (the study's code, steps and data), quantizes each at
the bit-widths asked for, and trains the probe both ways: same head initialization, same batch order.
It prints each method's accuracy under both probes, the change, and the chapter's claim (SSQL minus
SimSiam) under both, paired by seed.

    python benchmarks/ssql_probe_augmentation.py --seeds 5 --pairs 2w2f 2w4f

Writes ``benchmarks/results/ssql_probe_augmentation.json``.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import torch
from torch import nn

from companion import results
from companion.fewshot.finetune import random_resized_crop
from companion.runtime import process_map, torch_threads
from companion.ssl.evaluate import extract_features
from companion.ssql import config as ssql_config
from companion.ssql import evaluate, experiment

METHODS = ("simsiam", "ssql")


def augmented_probe(model: nn.Module, train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor,
                    test_y: torch.Tensor, epochs: int = 100, *, seed: int = 0) -> float:
    """:func:`companion.ssql.evaluate.sgd_linear_probe`'s classifier and schedule, trained on the features
    of freshly augmented images at every step (the official protocol); test images unaugmented."""
    gen = torch.Generator().manual_seed(seed)
    num_classes = int(max(int(train_y.max()), int(test_y.max()))) + 1
    dim = extract_features(model, train_x[:2]).shape[1]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        head = nn.Linear(dim, num_classes)
    lr = evaluate.PROBE_LR
    opt = torch.optim.SGD(head.parameters(), lr=lr, momentum=evaluate.PROBE_MOMENTUM, weight_decay=0.0)
    drops = [round(m * epochs) for m in evaluate.PROBE_MILESTONES]
    model.eval()
    torch.manual_seed(seed)  # the crops
    for epoch in range(epochs):
        for group in opt.param_groups:
            group["lr"] = lr * 0.1 ** sum(epoch >= d for d in drops)
        for idx in torch.randperm(len(train_x), generator=gen).split(evaluate.PROBE_BATCH):
            with torch.no_grad():
                f = model(random_resized_crop(train_x[idx], (0.8, 1.0), flip=True)).flatten(1)
            opt.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(head(f), train_y[idx]).backward()
            opt.step()
    with torch.no_grad():
        pred = head(extract_features(model, test_x)).argmax(1)
    return 100.0 * float((pred == test_y).float().mean())


def one_seed(cfg, seed: int, pairs) -> dict:
    """``{method: {pair: {"once": acc, "augmented": acc}}}`` for one seed (one thread)."""
    data = experiment.load_data(cfg)
    bank = slice(0, cfg.eval_train)
    train_x, train_y = data.train_x[bank], data.train_y[bank]
    out = {}
    with torch_threads(1):
        runs = experiment._one_seed(cfg, seed, data)
        for name in METHODS:
            scores, encoder = runs[name][0], runs[name][4]
            out[name] = {}
            for w, a in pairs:
                model = evaluate.at_bits(encoder, w, a, train_x[: cfg.calibration_images], convention=cfg.convention)
                pair = evaluate.pair_name(w, a)
                out[name][pair] = {"once": scores["linear"][pair],
                                   "augmented": augmented_probe(model, train_x, train_y, data.test_x, data.test_y,
                                                                cfg.linear_epochs)}
    return out


def parse_pair(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d+)w(\d+)f", text)
    if not m:
        raise argparse.ArgumentTypeError(f"a pair reads like 2w4f, got {text!r}")
    return int(m[1]), int(m[2])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--pairs", nargs="+", type=parse_pair, default=[(2, 2)])
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    if args.seeds < 3:
        parser.error("--seeds must be at least 3 (an interval needs them)")
    study = ssql_config.study()
    record = results.read("ssql", Path(__file__).resolve().parents[1] / "results")["study"]
    pairs = [p for p in args.pairs]
    missing = [evaluate.pair_name(*p) for p in pairs if p not in set(study.linear_pairs)]
    if missing:
        parser.error(f"the study's linear probe does not run at {missing}; choose from {study.linear_pairs}")
    cfg = study.replace(seeds=tuple(range(args.seeds)), methods=METHODS, workers=1)
    seeds = list(cfg.seeds)
    done = process_map(one_seed, [cfg] * len(seeds), seeds, [pairs] * len(seeds), workers=args.workers)
    report = {"seeds": seeds, "steps": cfg.steps, "pairs": {}}
    for w, a in pairs:
        pair = evaluate.pair_name(w, a)
        rows = {}
        for name in METHODS:
            once = [d[name][pair]["once"] for d in done]
            aug = [d[name][pair]["augmented"] for d in done]
            iv = results.interval(aug, once)
            rows[name] = {"once": once, "augmented": aug, "change": iv.estimate, "ci95": [iv.low, iv.high]}
            print(f"{pair} {name:8s} once {sum(once) / len(once):5.1f}  augmented {sum(aug) / len(aug):5.1f}  "
                  f"change {iv.estimate:+.2f} [{iv.low:+.2f}, {iv.high:+.2f}]", flush=True)
        claim = next((c for c in record["claims"] if c["id"] == f"ssql_linear_{pair}"), None)
        if claim is not None:  # the probe on features extracted once is the chapter's: the same numbers
            ours = [s - b for s, b in zip(rows["ssql"]["once"], rows["simsiam"]["once"])]
            same = all(abs(x - y) < 1e-9 for x, y in zip(ours, claim["samples"][: len(ours)]))
            print(f"{pair}: the features-once differences {'equal' if same else 'DIFFER FROM'} the study record's")
            rows["equals_study_record"] = same
        for probe in ("once", "augmented"):
            iv = results.interval(rows["ssql"][probe], rows["simsiam"][probe])
            rows[f"claim_{probe}"] = {"estimate": iv.estimate, "ci95": [iv.low, iv.high], "n": iv.n}
            print(f"{pair} SSQL minus SimSiam, probe on {probe}: {iv.estimate:+.2f} [{iv.low:+.2f}, {iv.high:+.2f}]")
        report["pairs"][pair] = rows
    path = Path(__file__).parent / "results" / "ssql_probe_augmentation.json"
    path.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
