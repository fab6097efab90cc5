"""PSOL inference speed: DDT pseudo boxes vs the trained regressor, per image.

DDT per image = VGG16 pool5 descriptors at 448 px + projection on the class direction + largest
connected component + box. The regressor = one ResNet-50 forward at 224 px + the head. Random
weights (no download): the speed does not depend on the weights.

    python benchmarks/psol_speed.py --device cuda                      # the paper's sizes
    python benchmarks/psol_speed.py --device cpu --steps 2 --batch-size 2 --ddt-size 224

Writes benchmarks/results/psol.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from companion import backbones
from companion.psol import BoxRegressor, fit_ddt, map_to_box


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, steps, warmup, device):
    for _ in range(warmup):
        fn()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    _sync(device)
    return (time.perf_counter() - t0) / steps


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--steps", type=int, default=20, help="timed batches per measurement")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--ddt-size", type=int, default=448)
    p.add_argument("--reg-size", type=int, default=224)
    p.add_argument("--amp", action="store_true", help="bfloat16/float16 autocast on CUDA")
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "psol.json"))
    a = p.parse_args(argv)
    if a.steps < 1 or a.batch_size < 1:
        raise SystemExit("--steps and --batch-size must be positive")
    device = torch.device(a.device)
    torch.manual_seed(0)

    vgg = backbones.conv_trunk("vgg16", "pool5", seed=0).to(device)
    r50 = backbones.conv_trunk("resnet50", "layer4", seed=0)
    reg = BoxRegressor(r50, backbones.out_channels(r50)).to(device).eval()
    x_ddt = torch.rand(a.batch_size, 3, a.ddt_size, a.ddt_size, device=device)
    x_reg = torch.rand(a.batch_size, 3, a.reg_size, a.reg_size, device=device)
    amp = torch.autocast(device.type, enabled=a.amp and device.type == "cuda")

    with torch.no_grad(), amp:
        d = vgg(x_ddt).float()
        model = fit_ddt(d.cpu() if d.shape[0] > 1 else torch.cat([d, d]).cpu())

        def ddt_step():
            desc = vgg(x_ddt).float().cpu()  # (B, 512, h, w); the PCA direction lives on the CPU
            maps = model.project(desc)
            return [map_to_box(m, a.ddt_size) for m in maps]

        def features_only():
            return vgg(x_ddt)

        def reg_step():
            return reg(x_reg)

        t_ddt = timed(ddt_step, a.steps, a.warmup, device)
        t_feat = timed(features_only, a.steps, a.warmup, device)
        t_reg = timed(reg_step, a.steps, a.warmup, device)

    out = {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__, "batch_size": a.batch_size, "steps": a.steps, "amp": bool(a.amp and device.type == "cuda"),
        "ddt_input": a.ddt_size, "regressor_input": a.reg_size,
        "ddt_ms_per_image": 1000 * t_ddt / a.batch_size,
        "ddt_features_ms_per_image": 1000 * t_feat / a.batch_size,
        "regressor_ms_per_image": 1000 * t_reg / a.batch_size,
        "ddt_images_per_s": a.batch_size / t_ddt,
        "regressor_images_per_s": a.batch_size / t_reg,
    }
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=2) + "\n")
    for k, v in out.items():
        print(f"{k:28s} {v:.2f}" if isinstance(v, float) else f"{k:28s} {v}")


if __name__ == "__main__":
    main()
