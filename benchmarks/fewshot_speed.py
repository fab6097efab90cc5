"""Speed of per-episode fine-tuning: episodes per second for each method of the worst-case chapter.

Random weights and random images (speed does not depend on them). Examples:

    python benchmarks/fewshot_speed.py                      # CPU, the quick run's MLP
    python benchmarks/fewshot_speed.py --device cuda        # GPU, ResNet-12 at 32 px, the full preset's sizes

Prints a table and writes benchmarks/results/fewshot.json. ``full_preset_hours`` extrapolates to the
full preset (500 episodes per shot, 100 steps, shots 1 and 5 at the measured shot's cost) when the
ResNet-12 runs with 256 base images per SR step, the full preset's sizes.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from companion import fewshot
from companion.fewshot.finetune import FineTune


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--steps", type=int, default=10, help="fine-tuning steps per episode")
    p.add_argument("--episodes", type=int, help="episodes fine-tuned in parallel (default 100 on CPU, 4 on GPU)")
    p.add_argument("--shot", type=int, default=1)
    p.add_argument("--backbone", choices=("mlp", "resnet12"), help="default: mlp on CPU, resnet12 otherwise")
    p.add_argument("--aux", type=int, help="base images per SR step (default 64 on CPU, 256 otherwise)")
    p.add_argument("--members", type=int, default=4)
    p.add_argument("--repeats", type=int, default=2, help="timed repeats after one warm-up")
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "fewshot.json"))
    args = p.parse_args(argv)

    device = torch.device(args.device)
    cpu = device.type == "cpu"
    backbone_name = args.backbone or ("mlp" if cpu else "resnet12")
    episodes = args.episodes or (100 if cpu else 4)
    aux = args.aux or (64 if cpu else 256)
    torch.manual_seed(0)
    if backbone_name == "mlp":
        shape, net = (1, 8, 8), fewshot.mlp_backbone((1, 8, 8), (128, 128, 64))
    else:
        shape, net = (3, 32, 32), fewshot.resnet12(dropout=0.1)
    net.to(device).eval()
    n_way, q = 5, 15
    sx = torch.randn(episodes, n_way * args.shot, *shape, device=device)
    sy = torch.arange(n_way, device=device).repeat_interleave(args.shot).repeat(episodes, 1)
    qx = torch.randn(episodes, n_way * q, *shape, device=device)
    base = torch.randn(2000, *shape)
    common = dict(steps=args.steps, aux_batch=aux, head_scale=10.0, crop_scale=(0.2, 1.0), flip=True)
    methods = {
        "finetune": FineTune(beta=0.0, **common),
        "sr": FineTune(beta=0.1, **common),
        "ac_sr": FineTune(beta=0.1, tune_blocks=1, **common),
        "ac_ensr": FineTune(beta=0.1, tune_blocks=1, members=args.members, **common),
    }
    rows = {}

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    t = time.perf_counter()
    for _ in range(args.repeats):
        fewshot.prototype_scores(net, sx, sy, qx, n_way, device)
    sync()
    rows["prototypes"] = {"episodes_per_s": episodes * args.repeats / (time.perf_counter() - t)}
    for name, m in methods.items():
        tuner = fewshot.EpisodeFineTuner(net, base, m, n_way, device)
        seeds = list(range(episodes * m.members))
        tuner(sx, sy, qx, seeds)  # warm-up
        sync()
        t, c = time.perf_counter(), time.process_time()
        for r in range(args.repeats):
            tuner(sx, sy, qx, seeds, seed=r)
        sync()
        wall, cpu_s = (time.perf_counter() - t) / args.repeats, (time.process_time() - c) / args.repeats
        rows[name] = {"episodes_per_s": episodes / wall, "steps_per_s": args.steps / wall,
                      "cpu_s_per_episode": cpu_s / episodes}
        if backbone_name == "resnet12" and aux == 256:
            # the full preset: 100 steps, 500 episodes, shots 1 and 5 (5-shot costs about as much)
            rows[name]["full_preset_hours"] = 2 * 500 * (100 / args.steps) / rows[name]["episodes_per_s"] / 3600
    out = {"device": str(device), "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
           "threads": torch.get_num_threads(), "backbone": backbone_name, "episodes_in_parallel": episodes,
           "steps": args.steps, "shot": args.shot, "aux_batch": aux, "members": args.members, "methods": rows}
    print(f"{out['device_name']} | {backbone_name} | {episodes} episodes in parallel | {args.steps} steps | "
          f"{args.shot}-shot | aux {aux}")
    for name, r in rows.items():
        extra = f"  ~{r['full_preset_hours']:.2f} h for the full preset" if "full_preset_hours" in r else ""
        print(f"  {name:10s} {r['episodes_per_s']:9.2f} episodes/s{extra}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    return out


if __name__ == "__main__":
    main()
