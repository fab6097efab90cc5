"""Speed of one instance-discrimination pretraining step (multi-crop + CutMix + forward/backward + AdamW).

Prints images/s (source images per second; each gives 2 global + 4 local crops) and crops/s, and writes
benchmarks/results/vit2040.json. Defaults are the paper's: DeiT-Tiny at 112 px, 2,040 instance classes.
``--stage finetune`` times a fine-tuning step instead (224 px, 102 classes, mixup), for the full-run estimate.

    python benchmarks/vit2040_speed.py --device cuda --steps 20
    python benchmarks/vit2040_speed.py --device cuda --steps 20 --stage finetune
    python benchmarks/vit2040_speed.py --device cpu --steps 2 --batch-size 8     # a small CPU check
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from companion.train import build_optimizer, FitConfig
from companion.vit2040 import InstanceDiscrimination, Supervised, build_vit, config


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=20, help="timed steps (after 3 warm-up steps)")
    parser.add_argument("--batch-size", type=int, default=256, help="source images per step (the paper: 256)")
    parser.add_argument("--shape", choices=("deit_tiny", "micro"), default="deit_tiny")
    parser.add_argument("--stage", choices=("pretrain", "finetune"), default="pretrain")
    parser.add_argument("--instances", type=int, default=2040)
    parser.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                        help="bfloat16/float16 autocast (default: on for CUDA, as companion.train.fit does)")
    parser.add_argument("--threads", type=int, help="CPU threads (default: torch's); 1 is often fastest on a busy CPU")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "vit2040.json"))
    args = parser.parse_args(argv)
    if args.steps < 1 or args.batch_size < 1:
        raise SystemExit("--steps and --batch-size must be positive")

    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = config.full() if args.shape == "deit_tiny" else config.quick()
    source = cfg.shape.image_size * 8 // 7 if args.shape == "deit_tiny" else cfg.shape.image_size
    torch.manual_seed(0)
    if args.stage == "pretrain":
        res, classes = cfg.pretrain_resolution(), args.instances
        step = InstanceDiscrimination(classes, res, cfg.crops, multi_crop=True, cutmix=True)
        crops = cfg.crops.n_global + cfg.crops.n_local
    else:
        res, classes, crops = cfg.shape.image_size, 102 if args.shape == "deit_tiny" else 10, 1
        step = Supervised(classes, res, steps_per_epoch=1, scale=cfg.finetune_scale, crops=cfg.crops, mix=True)
    model = build_vit(cfg.shape, classes, image_size=res).to(device).train()
    opt = build_optimizer(model.parameters(), FitConfig(steps=1, lr=cfg.pretrain.lr, weight_decay=cfg.pretrain.weight_decay))
    amp = (device.type == "cuda") if args.amp is None else (args.amp and device.type == "cuda")
    dtype = torch.bfloat16 if amp and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=amp and dtype == torch.float16)
    images = torch.randint(0, 256, (args.batch_size, cfg.shape.in_channels, source, source), dtype=torch.uint8, device=device)
    index = torch.randint(0, classes, (args.batch_size,), device=device)

    def one():
        with torch.autocast(device.type, dtype=dtype, enabled=amp):
            loss = step(model, (images, index))["loss"]
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(3):
        one()
    sync()
    began = time.perf_counter()
    for _ in range(args.steps):
        one()
    sync()
    seconds = time.perf_counter() - began
    out = {
        "benchmark": f"vit2040 {args.stage} step",
        "shape": args.shape, "resolution": res, "classes": classes, "batch_size": args.batch_size,
        "crops_per_image": crops, "steps": args.steps, "amp": amp, "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(), "torch": torch.__version__,
        "seconds_per_step": seconds / args.steps,
        "images_per_s": args.batch_size * args.steps / seconds,
        "crops_per_s": args.batch_size * crops * args.steps / seconds,
    }
    if device.type == "cuda":
        out["max_memory_gb"] = torch.cuda.max_memory_allocated(device) / 2**30
    print(json.dumps(out, indent=2))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    return out


if __name__ == "__main__":
    main()
