"""Tobias on the full path: the colab preset through ``python -m companion.tobias`` on a fabricated
CUB_200_2011 tree and STL-10 binary folder, MoCo v2 interrupted mid-training and rerun to resume, ending
in a verified ``full`` record; and the Full run section's stated T4 times, read from the page and
recomputed."""

from __future__ import annotations

import json
import re
import sys
from dataclasses import replace
from pathlib import Path

import pytest

import fabricate
from companion import results
from companion.tobias import config, run_hours

ROOT = Path(__file__).resolve().parents[1]


def _tiny_colab():
    """The colab preset with its sizes cut to a few CPU steps: CUB at 32 px (the random rows; the
    pretrained one needs torchvision's ImageNet weights, a download), MoCo v2 with a TinyCNN (a ResNet-18's
    checkpoints take seconds to write) on 32 STL-10 images at 32 px for 2 epochs of batch 8, a checkpoint
    every 2 steps; the comparison, the recipe's other settings and the seeds are the preset's."""
    cfg = config.colab()
    cfg.cub = replace(cfg.cub, models=tuple(m for m in cfg.cub.models if not m[4]), image_size=32, batch_size=8,
                      num_workers=0)
    pre = cfg.ssl.pretrain
    cfg.ssl = replace(cfg.ssl, n_train=32, mask_size=64, knn_k=5, linear_epochs=5, pretrain=pre.replace(
        encoder="tiny", encoder_kwargs={"width": 8}, resolution=32, epochs=2, batch_size=8, checkpoint_every=2,
        progress=False,
        method_kwargs={**pre.method_kwargs, "queue_size": 16}))
    cfg.threads = 1
    return cfg


@pytest.mark.fullpath
def test_colab_preset_runs_end_to_end_resumes_and_records_the_full_tier(tmp_path, monkeypatch, capsys):
    from companion.tobias import __main__ as cli

    pretrain_module = sys.modules["companion.ssl.pretrain"]
    data, ckpt, out = tmp_path / "data", tmp_path / "checkpoints", tmp_path / "results"
    fabricate.cub(data, classes=5, per_class=2, size=48)  # 5 test images
    fabricate.stl10(data, n_train=20, n_test=20, n_unlabeled=40)
    for name, value in (("COMPANION_DATA", data), ("COMPANION_VERIFY_DATA", "0"), ("COMPANION_CHECKPOINTS", ckpt),
                        ("COMPANION_RESULTS", out)):
        monkeypatch.setenv(name, str(value))
    tiny = _tiny_colab()
    monkeypatch.setitem(config.PRESETS, "colab", lambda: tiny)
    resumed, stop = [], {}
    fit = pretrain_module.fit

    def watched(*args, **kwargs):  # MoCo v2's fit; the linear probes' fits are not counted
        if not stop:  # a disconnect 5 steps into the first pretraining (its checkpoint is at step 4)
            stop.update(fabricate.interrupt_fit_after(monkeypatch, 5))
            stop["watching"] = True
        got = fit(*args, **kwargs)
        resumed.append(got.resumed_from)
        return got

    monkeypatch.setattr(pretrain_module, "fit", watched)
    from companion.tobias import experiment

    strides, trunk = [], experiment.conv_trunk
    monkeypatch.setattr(experiment, "conv_trunk",
                        lambda *a, **k: strides.append(k.get("layer4_stride")) or trunk(*a, **k))
    with pytest.raises(KeyboardInterrupt):
        cli.main(["--preset", "colab", "--device", "cpu"])
    assert resumed == []
    said = capsys.readouterr().out
    assert "on a Colab T4 (estimate: CUB" in said and f"Checkpoints: {ckpt / 'tobias'}" in said
    folder = ckpt / "tobias" / "moco_stl10_2ep_baseline_seed0"
    assert (folder / "last.pt").exists()
    assert not (out / "tobias.json").exists() and not (out / "custom").exists()  # nothing recorded yet

    # CUB's random ResNet-50s run with layer4 at stride 1 (CUBConfig.layer4_stride), then the masks' network
    assert strides[:3] == [1, 1, 1] and tiny.cub.layer4_stride == 1
    metrics = cli.main(["--preset", "colab", "--device", "cpu"])
    assert resumed == [4, None, None, None, None, None]  # seed 0's baseline took up at step 4; the rest ran anew
    entry = results.latest("tobias", "full", out)
    assert entry and entry["provenance"]["preset"] == "full, customised"
    results.check_record(entry, "full")
    claims = {c["id"]: c for c in entry["claims"]}
    assert set(claims) == {"sanity_knn", "sanity_linear", "premise_moco_learns", "swap_linear"}
    assert claims["swap_linear"]["premises"] == ["premise_moco_learns"]  # STL-10 has no background label
    assert all(c["tier"] == "full" and c["n"] == 3 for c in claims.values())
    assert metrics["cub"]["n_images"] == 5 and "random_resnet50" in metrics["cub"]
    assert "CUB-200-2011 test (5 images) at 32 px" in entry["scale"] and "2 epochs" in entry["scale"]
    json.dumps(entry)


def _stated(page: str) -> tuple[int, int]:
    text = (ROOT / "book" / page).read_text()
    section = text[text.index("## Full run"):text.index("## Exercises")]
    found = re.search(r"about (\d+) minutes for `colab` and about (\d+) hours? for `full`", " ".join(section.split()))
    assert found, "the Full run section states no 'about N minutes for `colab` and about N hours for `full`'"
    return int(found[1]), int(found[2])


def test_the_full_run_section_states_the_times_run_hours_gives():
    colab, full = run_hours(config.colab()), run_hours(config.full())
    assert _stated("01_tobias.md") == (round(colab.hours * 60), round(full.hours))
    assert colab.hours < 1 and run_hours().hours == full.hours
    assert "2 arms x 3 seeds" in full.basis and "8 TFLOP/s" in full.basis
    shorter = config.full()
    shorter.ssl.seeds = (0,)  # the MoCo v2 part follows the preset's seeds
    assert run_hours(shorter).hours < full.hours / 2
    with pytest.raises(TypeError, match="tobias Config"):
        run_hours("colab")


def test_preset_colab_is_the_full_preset_with_half_the_epochs_and_needs_a_gpu(monkeypatch):
    import torch

    from companion.tobias import __main__ as cli

    seen = []
    monkeypatch.setattr(cli, "run", lambda cfg, command=None: seen.append(cfg) or {"claims": []})
    cli.main(["--preset", "colab", "--device", "cpu"])
    colab, full = seen[0], config.full()
    assert colab.mode == "full" and colab.ssl.pretrain.epochs == config.COLAB_EPOCHS == full.ssl.pretrain.epochs // 2
    assert colab.ssl.pretrain.replace(epochs=full.ssl.pretrain.epochs) == full.ssl.pretrain
    assert (colab.cub, colab.ssl.seeds, colab.device) == (full.cub, (0, 1, 2), "cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="colab preset .* needs a GPU"):
        cli.main(["--preset", "colab"])
