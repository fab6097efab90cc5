"""Images per second for one SimSiam training step, with three ways of feeding it.

1. ``in_memory``: two fixed, already-augmented view batches on the device (the compute ceiling);
2. ``cpu_pipeline``: per-image ``transforms.v2`` augmentation in DataLoader workers, then a copy to the device
   (what a plain PyTorch recipe does);
3. ``gpu_augment``: the images stay on the device and :class:`companion.ssl.GPUAugment` augments whole batches there.

The ratio ``in_memory / pipeline`` says whether feeding the model is the bottleneck (target: within 1.25x).
ResNet-18 with the small stem at 32 px; mixed precision on CUDA.

    python benchmarks/ssl_speed.py --device cuda --batch-size 512 --steps 30
    python benchmarks/ssl_speed.py --device cpu --batch-size 16 --steps 3

Writes ``benchmarks/results/ssl.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from companion import ssl


def simsiam_step(model, opt, scaler, v1, v2, device, amp_dtype):
    with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
        loss = model(v1, v2)["loss"]
    opt.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(opt)
    scaler.update()
    return loss


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(name, batches, step, steps, warmup, batch_size, device):
    """Run ``warmup`` untimed then ``steps`` timed steps, each pulling one batch from ``batches``."""
    it = iter(batches)
    for _ in range(warmup):
        step(*next(it))
    sync(device)
    began = time.perf_counter()
    for _ in range(steps):
        step(*next(it))
    sync(device)
    seconds = time.perf_counter() - began
    ips = steps * batch_size / seconds
    print(f"{name:>13}: {ips:10.1f} images/s  ({seconds / steps * 1000:.1f} ms/step)", flush=True)
    return {"images_per_s": ips, "ms_per_step": 1000 * seconds / steps, "steps": steps}


def forever(loader):
    while True:
        yield from loader


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch-size", type=int, default=None, help="default 512 on CUDA, 16 on CPU")
    p.add_argument("--steps", type=int, default=None, help="timed steps per mode (default 30 on CUDA, 3 on CPU)")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 5 on CUDA, 1 on CPU)")
    p.add_argument("--workers", type=int, default=None, help="DataLoader workers for cpu_pipeline (default: CPU count, at most 16)")
    p.add_argument("--resolution", type=int, default=32)
    p.add_argument("--encoder", default="resnet18_small")
    p.add_argument("--images", type=int, default=None, help="dataset size (default 8 batches)")
    p.add_argument("--modes", nargs="+", default=["in_memory", "cpu_pipeline", "gpu_augment"])
    p.add_argument("--no-amp", action="store_true")
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "ssl.json"))
    a = p.parse_args(argv)

    device = torch.device(a.device)
    cuda = device.type == "cuda"
    bs = a.batch_size or (512 if cuda else 16)
    steps = a.steps or (30 if cuda else 3)
    warmup = a.warmup if a.warmup is not None else (5 if cuda else 1)
    workers = a.workers if a.workers is not None else min(16, os.cpu_count() or 1)
    n_images = a.images or 8 * bs
    amp_dtype = None
    if cuda and not a.no_amp:
        amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        torch.backends.cudnn.benchmark = True
    if not cuda:
        torch.set_num_threads(max(1, min(torch.get_num_threads(), os.cpu_count() or 1)))

    torch.manual_seed(0)
    # content does not matter for speed; uint8 storage like CIFAR's, float on the device for the batched path
    images_u8 = torch.randint(0, 256, (n_images, 3, a.resolution, a.resolution), dtype=torch.uint8)
    model = ssl.SimSiam(ssl.build_encoder(a.encoder), proj_dim=2048, pred_dim=512, proj_layers=2).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    step = lambda v1, v2: simsiam_step(model, opt, scaler, v1, v2, device, amp_dtype)  # noqa: E731
    out = {}

    v1 = torch.rand(bs, 3, a.resolution, a.resolution, device=device)
    v2 = torch.rand(bs, 3, a.resolution, a.resolution, device=device)
    if "in_memory" in a.modes:
        out["in_memory"] = timed("in_memory", forever([(v1, v2)]), step, steps, warmup, bs, device)

    if "cpu_pipeline" in a.modes:
        ds = ssl.TwoViewDataset(images_u8, ssl.ssl_augment(a.resolution))
        loader = torch.utils.data.DataLoader(
            ds, batch_size=bs, shuffle=True, drop_last=True, num_workers=workers, pin_memory=cuda,
            persistent_workers=workers > 0, prefetch_factor=4 if workers > 0 else None,
        )
        batches = ((b[0].to(device, non_blocking=True), b[1].to(device, non_blocking=True)) for b in forever(loader))
        out["cpu_pipeline"] = timed("cpu_pipeline", batches, step, steps, warmup, bs, device)
        out["cpu_pipeline"]["workers"] = workers

    if "gpu_augment" in a.modes:
        on_device = images_u8.to(device).float().div_(255)
        aug = ssl.GPUAugment(a.resolution)
        g = torch.Generator(device=device).manual_seed(0)

        def views():
            while True:
                x = on_device[torch.randint(0, n_images, (bs,), device=device, generator=g)]
                yield aug(x), aug(x)

        out["gpu_augment"] = timed("gpu_augment", views(), step, steps, warmup, bs, device)

    if "in_memory" in out:
        # measured again at the end and the faster run kept, so warm-up and drifting load do not favour the pipelines
        again = timed("in_memory", forever([(v1, v2)]), step, steps, warmup, bs, device)
        if again["images_per_s"] > out["in_memory"]["images_per_s"]:
            out["in_memory"] = again
        for mode in ("cpu_pipeline", "gpu_augment"):
            if mode in out:
                r = out["in_memory"]["images_per_s"] / out[mode]["images_per_s"]
                out[mode]["slowdown_vs_in_memory"] = r
                print(f"in_memory / {mode}: {r:.2f}x (target <= 1.25x)")

    report = {
        "benchmark": "one SimSiam step (forward, backward, SGD), images/s",
        "device": torch.cuda.get_device_name(device) if cuda else f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)",
        "torch": torch.__version__, "encoder": a.encoder, "resolution": a.resolution, "batch_size": bs,
        "amp": str(amp_dtype).replace("torch.", "") if amp_dtype else "off", "results": out,
    }
    path = Path(a.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(path.read_text()) if path.exists() else {}
    previous[device.type] = report  # keep the other device's numbers
    path.write_text(json.dumps(previous, indent=2) + "\n")
    print(f"wrote {path}")
    return report


if __name__ == "__main__":
    main()
