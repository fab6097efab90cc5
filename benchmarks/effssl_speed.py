"""Images per second of one single-branch instance-discrimination step against one SimSiam step.

    python benchmarks/effssl_speed.py                                  # CPU, tiny CNN, a few steps
    python benchmarks/effssl_speed.py --device cuda --steps 50         # GPU, ResNet-18 (small stem), batch 512

A step is: augment the batch on the device, forward, backward, SGD update, and (single branch) the bank
update. The single-branch step encodes one view per image (with CutMix, SqrtKL and the gradient bank
update, 10,000 sampled negatives); SimSiam encodes two. "images/s" counts dataset images, so the ratio is
the speed-up per epoch. CUDA work is synchronized before each clock read; on CUDA the step runs under
bfloat16 autocast like ``companion.train.fit``. Prints a table and writes ``benchmarks/results/effssl.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from companion.effssl import SingleBranchID
from companion.ssl import GPUAugment, SimSiam, build_encoder


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(model, step, params, device, steps: int, warmup: int) -> tuple[float, float | None]:
    """Seconds per step (after ``warmup`` untimed steps) and peak CUDA memory in GiB."""
    opt = torch.optim.SGD(params, lr=0.05, momentum=0.9, weight_decay=1e-4)
    amp = device.type == "cuda"
    if amp:
        torch.cuda.reset_peak_memory_stats(device)
    began = None
    for i in range(warmup + steps):
        if i == warmup:
            _sync(device)
            began = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            loss = step()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if hasattr(model, "update_bank"):
            model.update_bank()
    _sync(device)
    seconds = (time.perf_counter() - began) / steps
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if amp else None
    return seconds, peak


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--steps", type=int, default=5, help="timed steps per method")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=None, help="default: 512 on CUDA, 64 on the CPU")
    p.add_argument("--encoder", default=None, help="default: resnet18_small on CUDA, tiny on the CPU")
    p.add_argument("--resolution", type=int, default=32)
    p.add_argument("--bank", type=int, default=50_000, help="memory bank rows (dataset size)")
    p.add_argument("--negatives", type=int, default=10_000)
    p.add_argument("--threads", type=int, default=1, help="CPU threads (0: torch's default)")
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "effssl.json"))
    args = p.parse_args(argv)
    if args.steps < 1 or args.warmup < 0:
        p.error("--steps must be positive and --warmup non-negative")
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    cuda = device.type == "cuda"
    batch = args.batch_size or (512 if cuda else 64)
    encoder_name = args.encoder or ("resnet18_small" if cuda else "tiny")
    enc_kw = {} if encoder_name != "tiny" else {"width": 16, "stem_stride": 2}
    big = encoder_name != "tiny"
    torch.manual_seed(0)
    images = torch.rand(batch, 3, args.resolution, args.resolution, device=device)
    index = torch.randperm(args.bank, device=device)[:batch]
    aug = GPUAugment(args.resolution, blur=False)

    single = SingleBranchID(build_encoder(encoder_name, **enc_kw), args.bank, dim=2048 if big else 64,
                            hidden=2048 if big else 128, head_layers=3 if big else 2, negatives=args.negatives,
                            update="gradient", sqrt_weight=20.0).to(device)
    simsiam = SimSiam(build_encoder(encoder_name, **enc_kw), proj_dim=2048 if big else 128, pred_dim=512 if big else 32,
                      proj_layers=2).to(device)
    runs = {
        "single_branch": (single, lambda: single(aug(images), index)["loss"], single.parameters()),
        "simsiam": (simsiam, lambda: simsiam(aug(images), aug(images))["loss"], simsiam.parameters()),
    }
    report = {"device": str(device), "gpu": torch.cuda.get_device_name(device) if cuda else None, "encoder": encoder_name,
              "batch_size": batch, "resolution": args.resolution, "bank": args.bank, "negatives": args.negatives,
              "steps": args.steps, "warmup": args.warmup, "threads": args.threads or None, "torch": torch.__version__,
              "python": platform.python_version(), "methods": {}}
    print(f"{'method':>14} {'s/step':>9} {'images/s':>10} {'peak GiB':>9}")
    for name, (model, step, params) in runs.items():
        model.train()
        seconds, peak = time_steps(model, step, list(params), device, args.steps, args.warmup)
        report["methods"][name] = {"seconds_per_step": seconds, "images_per_s": batch / seconds, "peak_gib": peak}
        print(f"{name:>14} {seconds:9.4f} {batch / seconds:10.1f} {peak if peak is not None else float('nan'):9.2f}")
    ratio = report["methods"]["single_branch"]["images_per_s"] / report["methods"]["simsiam"]["images_per_s"]
    report["speedup"] = ratio
    print(f"single-branch images/s is {ratio:.2f}x SimSiam's")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
