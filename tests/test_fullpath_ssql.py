"""SSQL's colab preset end to end on fabricated CIFAR-10 files: interrupted once, rerun to resume,
recorded as a verified full-tier record; the same under torchrun with two CPU processes (gloo); and
the chapter's stated times follow from run_hours."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import fabricate

ROOT = Path(__file__).resolve().parents[1]


def _env(monkeypatch, tmp_path) -> dict:
    folders = fabricate.full_run_folders(monkeypatch, tmp_path)
    fabricate.cifar(folders["data"], "cifar10", n_train=48, n_test=24)
    return folders


#: The colab preset's recipe with its sizes cut to a few CPU steps: a narrow encoder and heads (3-layer
#: projector as the preset's, 64 wide), batches of 16, one epoch of the 48 fabricated images, two seeds (an
#: interval needs two), one thread.
SMALL = dict(seeds=(0, 1), encoder="tiny", encoder_kwargs={"width": 4}, proj_dim=64, pred_dim=64, epochs=1,
             batch_size=16, checkpoint_every=2, device="cpu", progress=False, num_workers=0, threads=1, linear_epochs=5)


@pytest.mark.fullpath
def test_colab_preset_resumes_after_an_interruption_and_records_the_full_tier(tmp_path, monkeypatch, capsys):
    from companion import results, ssql
    from companion.ssl import pretrain as pretrain_module

    folders = _env(monkeypatch, tmp_path)
    cfg = ssql.config.colab()
    assert (cfg.mode, cfg.dataset, cfg.methods) == ("full", "cifar10", ssql.config.full().methods)
    assert Path(cfg.checkpoint_dir) == folders["checkpoints"] / "ssql-colab"
    small = cfg.replace(**SMALL)
    resumed = fabricate.record_resumes(monkeypatch, pretrain_module)
    stop = fabricate.interrupt_fit_after(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        ssql.run(small)
    assert stop["fired"] and not list(folders["results"].rglob("*.json"))
    assert (folders["checkpoints"] / "ssql-colab" / "simsiam-seed0" / "last.pt").exists()
    out = capsys.readouterr().out
    assert "on a Colab T4" in out and "ssql-colab" in out  # announced before it started

    res = ssql.run(small)  # the rerun
    assert resumed[0] == 2, "the interrupted method did not resume from its step-2 checkpoint"
    assert resumed[1:] == [None] * 3
    (path,) = (folders["results"] / "custom").glob("ssql-full-*.json")
    entry = results.latest("ssql", "full", folders["results"])
    results.check_record(entry, "full", str(path))
    ids = {c["id"] for c in entry["claims"]}
    paper = {"ssql_knn_2w4f", "ssql_knn_4w4f", "ssql_knn_fp", "ssql_linear_2w4f", "ssql_linear_4w4f"}
    premises = {f"premise_collapse_{p}_{w}" for p in ("knn", "linear") for w in ("2w4f", "4w4f")}
    assert paper | premises == ids  # each quantized claim rests on its collapse premise
    by_id = {c["id"]: c for c in entry["claims"]}
    assert by_id["ssql_linear_2w4f"]["premises"] == ["premise_collapse_linear_2w4f"]
    assert all(c["tier"] == "full" for c in entry["claims"])
    assert len(res.metrics["mean"]["ssql"]["knn"]) == len(cfg.pairs())  # the preset's whole PTQ grid


DDP_SCRIPT = textwrap.dedent('''
    import json, os, sys
    from companion import ssql, train
    small = json.loads(sys.argv[1])
    for key in ("seeds", "grid_w", "grid_a"):
        small[key] = tuple(small[key])
    for key in ("linear_pairs", "claim_pairs"):
        small[key] = tuple(tuple(p) for p in small[key])
    res = ssql.run(ssql.config.colab().replace(**small))
    with open(os.path.join(sys.argv[2], f"rank{os.environ['RANK']}.json"), "w") as f:
        params = {k: float(v.double().sum()) for k, v in res.encoders["ssql"].named_parameters()}
        json.dump({"params": params, "main": train.is_main_process()}, f)
''')


@pytest.mark.fullpath
def test_colab_preset_under_torchrun_with_two_cpu_processes(tmp_path, monkeypatch):
    """The chapter's ``torchrun`` command, on two CPU processes (gloo): both ranks end with the same
    weights and rank 0 alone announces and writes the (verified) record. (The ranks' evaluations differ:
    batch-norm running statistics are each rank's own after the last step, so rank 0's are the record.)"""
    import json

    folders = _env(monkeypatch, tmp_path)
    script, out = tmp_path / "ddp_ssql.py", tmp_path / "out"
    script.write_text(DDP_SCRIPT)
    out.mkdir()
    # training is what runs distributed: one seed and a 2 x 2 PTQ grid are enough to evaluate and record
    small = {**SMALL, "seeds": [0], "checkpoint_every": 0, "grid_w": [4, 0], "grid_a": [4, 0],
             "linear_pairs": [[4, 4], [0, 0]], "claim_pairs": [[4, 4]]}
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", TQDM_DISABLE="1")
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(script), json.dumps(small), str(out)], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]
    assert [r["main"] for r in ranks] == [True, False]
    assert ranks[0]["params"] == pytest.approx(ranks[1]["params"], rel=1e-6)
    from companion.train import load_checkpoint

    # one epoch of 48 images in steps of 2 x 16 is one step (not three: the batch is per process)
    assert load_checkpoint(folders["checkpoints"] / "ssql-colab" / "ssql-seed0")["step"] == 1
    assert done.stdout.count("on a Colab T4") == 1  # rank 0 alone announces
    (path,) = folders["results"].rglob("ssql-full-*.json")
    from companion import results

    results.check_record(results.latest("ssql", "full", folders["results"]), "full", str(path))


def _stated(pattern: str) -> list[int]:
    text = " ".join((ROOT / "book" / "06_ssql.md").read_text().split())  # line breaks as spaces
    return [int(m) for m in re.findall(pattern, text)]


def test_run_hours_follows_the_presets_and_the_chapter_states_it():
    from companion import ssql

    colab, full, paper = (ssql.run_hours(f()) for f in (ssql.config.colab, ssql.config.full, ssql.config.paper))
    assert ssql.run_hours().hours == full.hours
    assert colab.hours < 1 < full.hours < paper.hours
    assert "SSQL" in full.basis and "200 epochs" in full.basis and "TFLOP/s" in full.basis
    # SSQL's step runs the network twice as often as SimSiam's (the quantized branch), so it costs about 2x
    times = dict(re.findall(r"(SimSiam|SSQL): ([\d.]+) h", full.basis))
    assert 1.7 < float(times["SSQL"]) / float(times["SimSiam"]) < 2.3
    assert _stated(r"--preset colab` takes about (\d+) minutes") == [round(colab.hours * 60)]
    assert _stated(r"--preset full` about (\d+) hours") == [round(full.hours)]
    assert _stated(r"--preset paper` about (\d+) hours") == [round(paper.hours)]


def test_cli_offers_the_colab_preset_and_it_refuses_a_cpu_only_machine(capsys):
    import torch

    from companion.runtime import run_cli
    from companion.ssql.__main__ import main

    with pytest.raises(SystemExit):
        main(["--help"])
    assert "colab" in capsys.readouterr().out
    if not torch.cuda.is_available():
        assert run_cli(main, ["--preset", "colab"]) == 1
        assert "the colab preset trains on the paper's data and needs a GPU" in capsys.readouterr().err
