"""Images per second of random-CNN localization (activation map + mean threshold + largest component +
box), batched against one image at a time.

    python benchmarks/tobias_speed.py                                   # CPU, ResNet-50 at 224 px, small
    python benchmarks/tobias_speed.py --device cuda --steps 20          # GPU, batches of 64

Both modes localize the same images with :func:`companion.tobias.localize.localize` (eval mode,
``torch.inference_mode``): batched, ``--batch-size`` images per call; single, one image per call.
CUDA work is synchronized before each clock read (the boxes are computed on the CPU from the maps, which
synchronizes anyway). Target: batching at least 1.5x faster. Prints a table and writes
``benchmarks/results/tobias.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from companion.backbones import conv_trunk
from companion.tobias.localize import localize

TARGET = 1.5


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def images_per_second(trunk, images: torch.Tensor, batch_size: int, device: torch.device, warmup: int) -> float:
    """Localize every image of ``images`` in chunks of ``batch_size``; images per second after warm-up."""
    for _ in range(warmup):
        localize(trunk, images[:batch_size], batch_size=batch_size)
    _sync(device)
    began = time.perf_counter()
    for chunk in images.split(batch_size):
        localize(trunk, chunk, batch_size=batch_size)
    _sync(device)
    return len(images) / (time.perf_counter() - began)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    p.add_argument("--steps", type=int, default=2, help="timed batches (the images are steps x batch size)")
    p.add_argument("--batch-size", type=int, default=None, help="default: 64 on CUDA, 16 on the CPU")
    p.add_argument("--warmup", type=int, default=1, help="untimed calls per mode")
    p.add_argument("--arch", default="resnet50", choices=("resnet18", "resnet50", "vgg16"))
    p.add_argument("--size", type=int, default=224, help="image side in pixels")
    p.add_argument("--layer4-stride", type=int, default=1, choices=(1, 2),
                   help="ResNets: 1 = the paper's trunk (14x14 at 224 px), 2 = torchvision's (7x7)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "tobias.json"))
    args = p.parse_args(argv)
    if args.steps < 1 or args.warmup < 0 or args.size < 32:
        p.error("--steps must be positive, --warmup non-negative and --size at least 32")
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if args.threads:
        torch.set_num_threads(args.threads)
    batch = args.batch_size or (64 if device.type == "cuda" else 16)
    stride = args.layer4_stride if args.arch.startswith("resnet") else 2
    trunk = conv_trunk(args.arch, None, seed=0, layer4_stride=stride).to(device)
    g = torch.Generator().manual_seed(0)
    images = torch.rand(args.steps * batch, 3, args.size, args.size, generator=g).to(device)

    batched = images_per_second(trunk, images, batch, device, args.warmup)
    single = images_per_second(trunk, images, 1, device, args.warmup)
    speedup = batched / single
    out = {
        "benchmark": "random-CNN maps + boxes, images per second",
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "arch": args.arch,
        "layer4_stride": stride,
        "size": args.size,
        "batch_size": batch,
        "images": len(images),
        "batched_images_per_s": batched,
        "single_images_per_s": single,
        "speedup": speedup,
        "target_speedup": TARGET,
        "meets_target": speedup >= TARGET,
        "torch": torch.__version__,
    }
    print(f"{args.arch} at {args.size} px on {device} ({out['threads']} threads), {len(images)} images")
    print(f"  batched ({batch}/call): {batched:8.1f} images/s")
    print(f"  one at a time:     {single:8.1f} images/s")
    print(f"  speed-up: {speedup:.2f}x (target {TARGET}x): {'met' if out['meets_target'] else 'NOT met'}")
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    return out


if __name__ == "__main__":
    main()
