"""Cost of one SSQL training step against one SimSiam step (the paper: about 2x).

    python benchmarks/ssql_speed.py                                   # CPU, ResNet-18 (small stem), batch 32
    python benchmarks/ssql_speed.py --device cuda --batch-size 512 --amp --steps 20
    python benchmarks/ssql_speed.py --encoder tiny --resolution 8 --channels 1 --batch-size 64   # the quick run's size

A step is forward, backward and an SGD update on two pre-made views (augmentation is not timed),
with the same encoder, projector and predictor for both methods (the SSQL CIFAR heads: 2048-d).
SSQL draws its bit-widths as in training unless ``--bits W A`` fixes them. Times are wall seconds
per step after ``--warmup`` untimed steps (CUDA is synchronised before each clock reading). Prints a
table and writes ``benchmarks/results/ssql.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from companion.ssl import SimSiam, build_encoder
from companion.ssql import SSQL


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build(name: str, args) -> torch.nn.Module:
    torch.manual_seed(0)
    kw = {"in_channels": args.channels}
    if args.encoder == "tiny":
        kw["width"] = args.width
    encoder = build_encoder(args.encoder, **kw)
    heads = dict(proj_dim=args.proj_dim, pred_dim=args.pred_dim, proj_layers=args.proj_layers)
    if name == "simsiam":
        return SimSiam(encoder, **heads)
    return SSQL(encoder, **heads, bits=tuple(args.bits) if args.bits else None)


def time_steps(model, v1, v2, args, device) -> list[float]:
    model.to(device).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    use_amp = args.amp and device.type == "cuda"
    dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and dtype == torch.float16)
    times = []
    for i in range(args.warmup + args.steps):
        _sync(device)
        t = time.perf_counter()
        with torch.autocast(device.type, dtype=dtype, enabled=use_amp):
            loss = model(v1, v2)["loss"]
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        _sync(device)
        if i >= args.warmup:
            times.append(time.perf_counter() - t)
    return times


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:1, ...)")
    p.add_argument("--steps", type=int, default=5, help="timed steps per method")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    p.add_argument("--encoder", default="resnet18_small", help="a companion.ssl.build_encoder name")
    p.add_argument("--width", type=int, default=16, help="width of the tiny encoder")
    p.add_argument("--resolution", type=int, default=32)
    p.add_argument("--channels", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--proj-dim", type=int, default=2048)
    p.add_argument("--pred-dim", type=int, default=2048)
    p.add_argument("--proj-layers", type=int, default=3)
    p.add_argument("--bits", type=int, nargs=2, metavar=("W", "A"), help="fix SSQL's bits instead of sampling")
    p.add_argument("--amp", action="store_true", help="mixed precision on CUDA, as companion.train.fit uses")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "ssql.json"))
    args = p.parse_args(argv)
    if args.steps < 1 or args.warmup < 0 or args.batch_size < 2:
        p.error("--steps must be >= 1, --warmup >= 0 and --batch-size >= 2")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    g = torch.Generator().manual_seed(0)
    shape = (args.batch_size, args.channels, args.resolution, args.resolution)
    v1, v2 = torch.rand(shape, generator=g).to(device), torch.rand(shape, generator=g).to(device)
    report = {
        "device": str(device), "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "torch": torch.__version__, "python": platform.python_version(), "threads": torch.get_num_threads(),
        "encoder": args.encoder, "resolution": args.resolution, "batch_size": args.batch_size, "amp": args.amp,
        "bits": args.bits, "steps": args.steps, "methods": {},
    }
    print(f"{'method':>8} {'s/step (median)':>16} {'s/step (mean)':>14} {'images/s':>10} {'peak MiB':>9}")
    for name in ("simsiam", "ssql"):
        model = build(name, args)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        times = time_steps(model, v1, v2, args, device)
        peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
        med, mean = statistics.median(times), statistics.fmean(times)
        report["methods"][name] = {"median_s": med, "mean_s": mean, "images_per_s": args.batch_size / med,
                                   "peak_mib": peak, "times_s": times}
        print(f"{name:>8} {med:16.4f} {mean:14.4f} {args.batch_size / med:10.1f} {peak or float('nan'):9.0f}")
        del model
    ratio = report["methods"]["ssql"]["median_s"] / report["methods"]["simsiam"]["median_s"]
    report["ssql_over_simsiam"] = ratio
    print(f"SSQL / SimSiam time per step: {ratio:.2f}x (the paper: about 2x)")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
