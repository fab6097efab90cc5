"""fit under torchrun: two CPU processes (gloo) against one process, checkpoints and resume.

Two launches of ``torch.distributed.run`` (each starts three Python processes that import torch), so
this is marked slow: about 15 s on an idle machine.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn

from companion.train import FitConfig, fit

SCRIPT = textwrap.dedent('''
    import json, os, sys
    import torch
    from torch import nn
    from companion import train

    out, ckpt, phase = sys.argv[1], sys.argv[2], sys.argv[3]
    rank = int(os.environ["RANK"])
    saves = []
    real_save = train.atomic_save
    train.atomic_save = lambda obj, path: (saves.append(int(obj["step"])), real_save(obj, path))[1]

    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=g)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]]) + 0.1 * torch.randn(64, 1, generator=g)

    class Stop(Exception):
        pass

    def run(name, noise, checkpoint_dir=None, stop_at=-1):
        torch.manual_seed(1)
        model = nn.Linear(4, 1)

        def step(m, b):
            # noise from each rank's global RNG: resume must restore every rank's RNG
            xb = b[0] + noise * torch.randn_like(b[0]) if noise else b[0]
            return ((m(xb) - b[1]) ** 2).mean()

        def after(m, s):
            if s == stop_at:
                raise Stop

        cfg = train.FitConfig(steps=8, batch_size=8, lr=0.05, optimizer="sgd", warmup_steps=2, seed=7,
                              progress=False, checkpoint_dir=checkpoint_dir, checkpoint_every=3)
        saves.clear()
        resumed_from = None
        try:
            resumed_from = train.fit(model, (x, y), step, cfg, after_step=after).resumed_from
        except Stop:
            pass
        torch.save(model.state_dict(), f"{out}/{name}_rank{rank}.pt")
        with open(f"{out}/{name}_rank{rank}.json", "w") as f:
            json.dump({"saves": list(saves), "resumed_from": resumed_from}, f)

    if phase == "1":
        run("plain", 0.0)
        run("full", 0.01, f"{ckpt}/full")
        run("cut", 0.01, f"{ckpt}/cut", stop_at=4)  # dies during step 5; the checkpoint holds step 3
    else:
        run("resumed", 0.01, f"{ckpt}/cut")
    torch.distributed.destroy_process_group()
''')


def _torchrun(tmp_path, phase):
    script = tmp_path / "ddp_fit.py"
    script.write_text(SCRIPT)
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", TQDM_DISABLE="1")
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(script), str(out), str(tmp_path / "ckpt"), phase]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def _load(tmp_path, name):
    out = tmp_path / "out"
    weights = [torch.load(out / f"{name}_rank{r}.pt") for r in range(2)]
    info = [json.loads((out / f"{name}_rank{r}.json").read_text()) for r in range(2)]
    return weights, info


def _same(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_two_processes_match_one_and_resume_exactly(tmp_path):
    _torchrun(tmp_path, "1")

    # batch_size is per process: 2 processes x 8 equal 1 process x 16, step for step
    plain, _ = _load(tmp_path, "plain")
    assert _same(*plain), "ranks ended with different weights"
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=g)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]]) + 0.1 * torch.randn(64, 1, generator=g)
    torch.manual_seed(1)
    single = nn.Linear(4, 1)
    fit(single, (x, y), lambda m, b: ((m(b[0]) - b[1]) ** 2).mean(),
        FitConfig(steps=8, batch_size=16, lr=0.05, optimizer="sgd", warmup_steps=2, seed=7, progress=False))
    for k, v in single.state_dict().items():
        torch.testing.assert_close(plain[0][k], v, rtol=1e-5, atol=1e-6)

    full, info = _load(tmp_path, "full")
    assert _same(*full)
    assert info[0]["saves"] == [3, 6, 8] and info[1]["saves"] == []  # rank 0 alone writes
    _, info = _load(tmp_path, "cut")
    assert info[0]["saves"] == [3] and info[1]["saves"] == []

    _torchrun(tmp_path, "2")  # a fresh torchrun resumes from the step-3 checkpoint
    resumed, info = _load(tmp_path, "resumed")
    assert [i["resumed_from"] for i in info] == [3, 3]
    assert _same(*resumed)
    assert _same(resumed[0], full[0]), "resumed run differs from the uninterrupted one"
