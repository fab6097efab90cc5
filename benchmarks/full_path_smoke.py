"""Run the full-mode training path for a bounded number of steps and time it.

The full presets need the paper's datasets; this script feeds the same code (the SSL toolkit's
``pretrain`` with the full preset: ResNet-18 small stem, 32 px, batch 512, batched augmentation on the
device, mixed precision, checkpoints through ``companion.train.fit``) with synthetic scenes of
CIFAR's size, stops it half-way, resumes from the checkpoint, and checks the resumed run ends where an
uninterrupted one does.

    python benchmarks/full_path_smoke.py --device cuda --steps 40
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from companion.data import make_scenes
from companion.ssl.pretrain import PretrainConfig, pretrain


class Stop(Exception):
    pass


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--images", type=int, default=4096)
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "full_path_smoke.json"))
    args = p.parse_args()
    images = make_scenes(args.images, size=32, classes=8, seed=0).images
    base = PretrainConfig.full(steps=args.steps, epochs=None, batch_size=args.batch_size, device=args.device,
                               progress=False, checkpoint_every=args.steps // 2)
    report = {"device": args.device, "steps": args.steps, "batch_size": args.batch_size,
              "gpu": torch.cuda.get_device_name() if args.device.startswith("cuda") else None}
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        ref, res = pretrain("simsiam", None, images, base.replace(checkpoint_dir=f"{tmp}/a"))
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        report["uninterrupted_s"] = time.perf_counter() - start
        report["images_per_s"] = args.steps * args.batch_size / report["uninterrupted_s"]
        report["final_loss"] = res.last("loss")

        import companion.ssl.pretrain as sp

        real_fit = sp.fit

        def stopping_fit(*a, **k):
            inner, half = k["after_step"], args.steps // 2

            def after_step(core, step):
                inner(core, step)
                if step == half:  # the checkpoint at step `half` is on disk: interrupt as a disconnect would
                    raise Stop

            k["after_step"] = after_step
            return real_fit(*a, **k)

        sp.fit = stopping_fit
        try:
            pretrain("simsiam", None, images, base.replace(checkpoint_dir=f"{tmp}/b"))
        except Stop:
            pass
        finally:
            sp.fit = real_fit
        resumed, res_b = pretrain("simsiam", None, images, base.replace(checkpoint_dir=f"{tmp}/b"))
        report["resumed_from"] = res_b.resumed_from
        diffs = [float((a - b).abs().max()) for a, b in zip(ref.state_dict().values(), resumed.state_dict().values())
                 if a.is_floating_point()]
        report["max_weight_difference_after_resume"] = max(diffs)
    if args.device.startswith("cuda"):
        report["peak_memory_gb"] = torch.cuda.max_memory_allocated() / 2**30
    print(json.dumps(report, indent=2))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
