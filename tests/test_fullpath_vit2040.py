"""ViT with 2040 images on the full path: the colab preset through ``python -m companion.vit2040`` on a
fabricated Flowers-102 (jpg + .mat), interrupted mid-training and rerun to resume, ending in a verified
``full`` record; and the Full run section's stated T4 times, read from the page and recomputed."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

import fabricate
from companion import results, train
from companion.vit2040 import config, run_hours
from companion.vit2040.config import ViTShape

ROOT = Path(__file__).resolve().parents[1]


def _tiny_colab():
    """The colab preset with its sizes cut to a few CPU steps: a one-layer ViT at 16 px, batches of 8,
    two epochs per stage; the recipe, the seeds and every switch are the preset's."""
    colab = config.colab()
    return replace(colab, shape=ViTShape(image_size=16, patch_size=4, dim=16, layers=1, heads=2, mlp_dim=32),
                   pretrain=replace(colab.pretrain, epochs=2, batch_size=8),
                   finetune=replace(colab.finetune, epochs=2, batch_size=8), knn_k=3, threads=1)


@pytest.mark.fullpath
def test_colab_preset_runs_end_to_end_resumes_and_records_the_full_tier(tmp_path, monkeypatch, capsys):
    from companion.vit2040 import __main__ as cli

    data, ckpt, out = tmp_path / "data", tmp_path / "checkpoints", tmp_path / "results"
    fabricate.flowers102(data, per_split=2, classes=4, size=24)  # train + val: 16 images, test: 8
    for name, value in (("COMPANION_DATA", data), ("COMPANION_VERIFY_DATA", "0"), ("COMPANION_CHECKPOINTS", ckpt),
                        ("COMPANION_RESULTS", out)):
        monkeypatch.setenv(name, str(value))
    tiny = _tiny_colab()
    monkeypatch.setitem(config.PRESETS, "colab", lambda: tiny)
    resumed = []
    fit = train.fit

    def watched(*args, **kwargs):
        got = fit(*args, **kwargs)
        resumed.append(got.resumed_from)
        return got

    monkeypatch.setattr(train, "fit", watched)
    # seed 0: pretraining (4 steps, a checkpoint after each) completes, fine-tuning stops after 2 of its 4
    stop = fabricate.interrupt_fit_after(monkeypatch, 6)
    with pytest.raises(KeyboardInterrupt):
        cli.main(["--preset", "colab", "--device", "cpu"])
    assert stop["fired"] and resumed == [None]  # only the pretraining finished
    said = capsys.readouterr().out
    assert "on a Colab T4 (estimate: 2 seeds x" in said and f"Checkpoints: {ckpt / 'vit2040'}" in said
    folder = ckpt / "vit2040" / "2+2ep_seed0"
    assert (folder / "finetune_cutmix" / "last.pt").exists()
    assert not (out / "vit2040.json").exists() and not (out / "custom").exists()  # nothing recorded yet

    metrics = cli.main(["--preset", "colab", "--device", "cpu"])
    assert resumed[1:3] == [4, 2]  # the rerun took up the finished pretraining and the fine-tuning at step 2
    assert all(r is None for r in resumed[3:])  # everything after the interruption trained from scratch
    entry = results.latest("vit2040", "full", out)
    assert entry and entry["provenance"]["preset"] == "full, customised"
    results.check_record(entry, "full")
    claims = {c["id"]: c for c in entry["claims"]}
    assert set(claims) == {"pretrain_vs_scratch", "premise_pretrain_learns", "premise_scratch_learns",
                           "premise_cutmix_pastes", "sanity_linear"}
    assert all(c["tier"] == "full" and c["n"] == 2 for c in claims.values())
    assert entry["metrics"]["seeds"] == [0, 1]
    assert metrics["budget_steps"] == {"pretrain": 4, "finetune": 4, "scratch": 8}
    assert "Flowers-102, train+val 16 / test 8 images" in entry["scale"]
    json.dumps(entry)


def _stated(page: str) -> tuple[int, int]:
    text = (ROOT / "book" / page).read_text()
    section = text[text.index("## Full run"):text.index("## Exercises")]
    found = re.search(r"about (\d+) minutes for `colab` and about (\d+) hours? for `full`", " ".join(section.split()))
    assert found, "the Full run section states no 'about N minutes for `colab` and about N hours for `full`'"
    return int(found[1]), int(found[2])


def test_the_full_run_section_states_the_times_run_hours_gives():
    colab, full = run_hours(config.colab()), run_hours(config.full())
    assert _stated("09_vit_2040.md") == (round(colab.hours * 60), round(full.hours))
    assert colab.hours < 1  # the colab preset fits a Colab session
    assert run_hours().hours == full.hours and "2 seeds" in colab.basis and "8 TFLOP/s" in colab.basis
    # the estimate follows the preset: twice the seeds, twice the time; the ablation adds its pretrainings
    assert run_hours(config.colab(seeds=(0, 1, 2, 3))).hours == pytest.approx(2 * colab.hours)
    assert run_hours(config.colab(run_ablation=True)).hours > 2 * colab.hours
    with pytest.raises(TypeError, match="vit2040 Config"):
        run_hours("colab")
