"""Cost of S3L pretraining per resolution: FLOPs per image and measured seconds per step / images per second.

    python benchmarks/s3l_speed.py                                 # CPU, the quick network, 8/16/32 px
    python benchmarks/s3l_speed.py --threads 1                     # the timings pinned in s3l.config.quick()
    python benchmarks/s3l_speed.py --device cuda --preset full --steps 50 --resolutions 16 32

For each resolution it runs ``--steps`` MoCo pretraining steps through ``companion.ssl.pretrain`` (the
same path the experiment takes, augmentation included) after a few warm-up steps, and reports wall and
CPU seconds per step, images per second, and the FLOPs per image of the encoder's forward pass and of a
whole training step (``FlopCounterMode``). Prints a table and writes ``benchmarks/results/s3l.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from companion.s3l import config as s3l_config
from companion.s3l.cost import flops_per_image, train_step_flops
from companion.s3l.experiment import build_method, pretrain_config


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu", help="torch device (cpu, cuda, ...)")
    p.add_argument("--preset", choices=["quick", "full"], default="quick", help="which network and batch size")
    p.add_argument("--steps", type=int, default=30, help="timed pretraining steps per resolution")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    p.add_argument("--resolutions", type=int, nargs="+", default=[8, 16, 32])
    p.add_argument("--batch-size", type=int, help="override the preset's batch size")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "s3l.json"))
    args = p.parse_args(argv)
    if args.steps < 1 or args.warmup < 0:
        p.error("--steps must be positive and --warmup non-negative")
    if args.threads:
        torch.set_num_threads(args.threads)

    cfg = (s3l_config.quick if args.preset == "quick" else s3l_config.full)(device=args.device, progress=False)
    if args.batch_size:
        cfg = cfg.replace(batch_size=args.batch_size)
    n = max(cfg.batch_size * 4, cfg.method_kwargs.get("queue_size", 0), 256)  # MoCo needs K <= N
    data = torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    report = {"device": args.device, "preset": args.preset, "arch": cfg.arch, "width": cfg.width,
              "batch_size": cfg.batch_size, "steps": args.steps, "threads": torch.get_num_threads(),
              "torch": torch.__version__, "python": platform.python_version(),
              "gpu": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else None, "resolutions": {}}
    from companion.ssl.pretrain import pretrain

    print(f"{'px':>4} {'fwd MFLOPs':>11} {'step MFLOPs':>12} {'wall s/step':>12} {'cpu s/step':>11} {'img/s':>9}")
    for r in args.resolutions:
        method = build_method(cfg).to(args.device)
        fwd = flops_per_image(method.encoder, r) / 1e6
        step = train_step_flops(method, r) / 1e6
        pcfg = pretrain_config(cfg, args.device).replace(resolution=r)
        if args.warmup:
            method, _ = pretrain(method, None, data, pcfg.replace(steps=args.warmup))
        _sync(args.device)
        wall, cpu = time.perf_counter(), time.process_time()
        method, _ = pretrain(method, None, data, pcfg.replace(steps=args.steps))
        _sync(args.device)
        wall, cpu = (time.perf_counter() - wall) / args.steps, (time.process_time() - cpu) / args.steps
        row = {"forward_mflops": fwd, "step_mflops": step, "wall_s_per_step": wall, "cpu_s_per_step": cpu,
               "images_per_s": cfg.batch_size / wall}
        report["resolutions"][str(r)] = row
        print(f"{r:4d} {fwd:11.2f} {step:12.2f} {wall:12.4f} {cpu:11.4f} {row['images_per_s']:9.0f}")
    rs = sorted(report["resolutions"], key=int)
    if len(rs) > 1:
        lo, hi = report["resolutions"][rs[0]], report["resolutions"][rs[-1]]
        print(f"{rs[-1]} px / {rs[0]} px: forward FLOPs x{hi['forward_mflops'] / lo['forward_mflops']:.2f}, "
              f"wall time per step x{hi['wall_s_per_step'] / lo['wall_s_per_step']:.2f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")
    return report


if __name__ == "__main__":
    main()
