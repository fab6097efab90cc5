"""The worst-case few-shot colab preset end to end on fabricated CIFAR-FS data (CIFAR-100's python
pickles, which the loader splits into CIFAR-FS classes by name): cut off while fine-tuning episodes,
rerun to resume, and a verified ``full`` record; and the times the chapter states."""

from __future__ import annotations

import pickle
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from fabricate import interrupt_fit_after

ROOT = Path(__file__).resolve().parents[1]


def cifar_fs(root: Path, per_class: int = 8, seed: int = 0) -> Path:
    """CIFAR-100's ``cifar-100-python`` folder (``train``, ``test``, ``meta`` pickles of (N, 3072) uint8 rows,
    channel-major) with the real 100 class names in CIFAR-100's (alphabetical) order, which is what the
    CIFAR-FS split looks up, and ``per_class`` images of each class, the last quarter in ``test``."""
    from companion.fewshot.data import CIFAR_FS_BASE, CIFAR_FS_NOVEL, CIFAR_FS_VAL

    names = sorted(CIFAR_FS_BASE + CIFAR_FS_VAL + CIFAR_FS_NOVEL)
    rng = np.random.default_rng(seed)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    labels = np.repeat(np.arange(100), per_class)
    # each class a colour of its own plus noise, so pre-training has something to learn
    colours = rng.integers(0, 256, size=(100, 3, 1, 1))
    images = np.clip(colours[labels] + rng.normal(0, 40, size=(len(labels), 3, 32, 32)), 0, 255).astype(np.uint8)
    test = np.arange(len(labels)) % per_class >= per_class * 3 // 4
    for split, keep in (("train", ~test), ("test", test)):
        y = labels[keep].tolist()
        blob = {"data": images[keep].reshape(-1, 3072), "fine_labels": y, "coarse_labels": [v // 5 for v in y],
                "filenames": [f"img{i}.png" for i in range(len(y))], "batch_label": split}
        (folder / split).write_bytes(pickle.dumps(blob, protocol=2))
    (folder / "meta").write_bytes(pickle.dumps({"fine_label_names": names,
                                                "coarse_label_names": [f"coarse{i}" for i in range(20)]}, protocol=2))
    return folder


@pytest.mark.fullpath
def test_colab_preset_resumes_after_a_disconnect_and_records_the_full_tier(tmp_path, monkeypatch, capsys):
    from companion import fewshot, results, train
    from companion.fewshot.__main__ import main

    cifar_fs(tmp_path / "data")
    for var, sub in (("COMPANION_DATA", "data"), ("COMPANION_CHECKPOINTS", "ckpt"), ("COMPANION_RESULTS", "results")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    monkeypatch.setenv("COMPANION_VERIFY_DATA", "0")
    real_colab = fewshot.config.colab

    def small_colab():  # the colab preset with its sizes cut: a narrow ResNet-12, few steps, 40 episodes
        cfg = real_colab()
        return replace(cfg, widths=(8, 8, 8, 8), pretrain_steps=6, pretrain_batch=16, pretrain_warmup=0,
                       n_episodes=40, chunk=20, q_query=3, members=2, progress=False, threads=1,
                       finetune=replace(cfg.finetune, steps=2, aux_batch=16))

    monkeypatch.setitem(fewshot.config.PRESETS, "colab", small_colab)
    fits = []
    real_fit = train.fit

    def spy(*args, **kwargs):
        out = real_fit(*args, **kwargs)
        fits.append(out.resumed_from)
        return out

    monkeypatch.setattr(train, "fit", spy)
    fired = interrupt_fit_after(monkeypatch, 6 + 2)  # pre-training, then the first chunk of plain fine-tuning
    with pytest.raises(KeyboardInterrupt):
        main(["--preset", "colab", "--device", "cpu"])
    assert fired["fired"]
    out = capsys.readouterr().out
    assert "on a Colab T4" in out and str(tmp_path / "ckpt" / "fewshot") in out  # announced before it started
    seed0 = tmp_path / "ckpt" / "fewshot" / "seed0"
    chunks = train.torch.load(seed0 / "episodes" / "5shot_finetune.pt", weights_only=False)
    assert len(chunks["accuracies"]) == 20  # the first chunk of 20 episodes was kept

    fits.clear()
    main(["--preset", "colab", "--device", "cpu"])
    assert fits[0] == 6  # pre-training was loaded from its checkpoint, not run again
    # the rerun fine-tunes the second chunk of plain fine-tuning only, then both chunks of SR, AC+SR, AC+EnSR
    assert len(fits) == 1 + 1 + 3 * 2
    entry = results.latest("fewshot", "full", tmp_path / "results")
    assert entry and entry["provenance"]["preset"].startswith("full")
    results.check_record(entry, "full")
    assert {c["id"] for c in entry["claims"]} == {"worst_case_5shot", "mean_5shot", "ac_raises_mean"}
    assert all(c["tier"] == "full" for c in entry["claims"])
    assert entry["metrics"]["5shot"]["finetune"]["n"] == 40


def _stated(pattern: str) -> list[float]:
    return [float(x) for x in re.findall(pattern, (ROOT / "book" / "05_worst_case_fewshot.md").read_text())]


def test_the_chapter_states_the_time_its_presets_take():
    from companion import fewshot

    colab, full = fewshot.run_hours(fewshot.config.colab()), fewshot.run_hours()
    assert colab.hours < 1 and "T4_FLOPS" in full.basis and "90 epochs x 38,400" in full.basis
    assert _stated(r"colab` preset:\s+about\s+(\d+)\s+minutes\s+on\s+a\s+T4") == [round(colab.hours * 60)]
    assert _stated(r"full` preset:\s+about\s+(\d+)\s+hours\s+on\s+a\s+T4") == [round(full.hours)]
    assert full.hours * 3600 == pytest.approx(fewshot.flop_estimate(fewshot.config.full())["total"] * 1e15 / 8e12)


def test_full_runs_checkpoint_under_the_checkpoint_root(tmp_path, monkeypatch):
    from companion.fewshot import config
    from companion.fewshot.experiment import checkpoint_folder

    monkeypatch.setenv("COMPANION_CHECKPOINTS", str(tmp_path / "drive"))
    assert checkpoint_folder(config.colab()) == tmp_path / "drive" / "fewshot" / "seed0"


def test_colab_preset_is_the_full_recipe_shortened():
    from companion.fewshot import config

    full = config.full()
    assert replace(config.colab(), pretrain_steps=full.pretrain_steps, shots=full.shots,
                   n_episodes=full.n_episodes) == full
