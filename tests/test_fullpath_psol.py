"""PSOL's colab preset end to end on a fabricated CUB_200_2011 tree (the real on-disk format): cut off
mid-training, rerun to resume, and a verified ``full`` record; and the times the chapter states."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fabricate import cub, interrupt_fit_after, record_resumes

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.fullpath
def test_colab_preset_resumes_after_a_disconnect_and_records_the_full_tier(tmp_path, monkeypatch, capsys):
    from companion import psol, results, train
    from companion.psol.__main__ import main

    cub(tmp_path / "data", classes=3, per_class=4, size=64)
    for name, sub in (("COMPANION_DATA", "data"), ("COMPANION_CHECKPOINTS", "ckpt"), ("COMPANION_RESULTS", "results")):
        monkeypatch.setenv(name, str(tmp_path / sub))
    monkeypatch.setenv("COMPANION_VERIFY_DATA", "0")
    monkeypatch.setenv("COMPANION_DEVICE", "cpu")
    # the colab preset with its sizes cut: small random networks (no weight download), 32- and 64-px images, few steps
    small = dict(ddt_arch="resnet18", ddt_stage="layer4", ddt_input_size=64, ddt_pretrained=False,
                 regressor_arch="resnet18", regressor_pretrained=False, regressor_size=32, regressor_batch_size=2,
                 regressor_epochs=2, classifier_arch="resnet18", classifier_pretrained=False, classifier_epochs=2,
                 classifier_batch_size=2, eval_resize=40, eval_crop=32, num_workers=0, checkpoint_every=2)
    real_colab = psol.config.colab
    monkeypatch.setitem(psol.config.PRESETS, "colab", lambda **changes: real_colab(**{**small, **changes}))
    resumed = record_resumes(monkeypatch, train)
    fired = interrupt_fit_after(monkeypatch, 4)  # 3 regressor steps an epoch: cut off in its second epoch
    with pytest.raises(KeyboardInterrupt):
        main(["--preset", "colab", "--device", "cpu", "--no-progress"])
    assert fired["fired"]
    folder = next((tmp_path / "ckpt" / "psol").glob("train-6-*"))
    boxes = folder / "ddt_pseudo_boxes.pt"
    assert boxes.exists() and (folder / "regressor" / train.CHECKPOINT_NAME).exists()
    boxes_made = boxes.stat().st_mtime_ns
    out = capsys.readouterr().out
    assert "on a Colab T4" in out and str(tmp_path / "ckpt" / "psol") in out  # announced before it started

    main(["--preset", "colab", "--device", "cpu", "--no-progress"])
    assert resumed[0] == 4  # the regressor went on from its step-4 checkpoint
    assert boxes.stat().st_mtime_ns == boxes_made  # the pseudo boxes were reused, not recomputed
    entry = results.latest("psol", "full", tmp_path / "results")
    assert entry and entry["provenance"]["preset"].startswith("full")
    results.check_record(entry, "full")
    (claim,) = entry["claims"]
    assert claim["id"] == "regressor_beats_ddt" and claim["tier"] == "full" and claim["n"] == 3  # 3 test classes
    assert {"ddt", "psol_regressor"} <= set(entry["metrics"])


def _stated(pattern: str) -> list[float]:
    return [float(x) for x in re.findall(pattern, (ROOT / "book" / "02_psol.md").read_text())]


def test_the_chapter_states_the_time_its_presets_take():
    from companion import psol

    colab, full = psol.run_hours(psol.colab()), psol.run_hours()
    assert colab.hours < 1 and "T4_FLOPS" in full.basis and "classifier: 1 x 20 epochs x 5,994" in full.basis
    assert _stated(r"colab` preset:\s+about\s+(\d+)\s+minutes\s+on\s+a\s+T4") == [round(colab.hours * 60)]
    assert _stated(r"full` preset:\s+about\s+(\d+)\s+minutes\s+on\s+a\s+T4") == [round(full.hours * 60)]
    # the estimate follows the preset: twice the classifier's epochs cost more
    assert psol.run_hours(psol.full(classifier_epochs=40)).hours > full.hours


def test_full_runs_checkpoint_under_the_checkpoint_root(tmp_path, monkeypatch):
    """The default folder follows COMPANION_CHECKPOINTS (on Colab: Drive), not the data cache."""
    from companion import psol

    monkeypatch.setenv("COMPANION_CHECKPOINTS", str(tmp_path / "drive"))
    seen = {}

    class Stop(Exception):
        pass

    def fake_cub200(root=None, download=True):
        raise Stop

    monkeypatch.setattr("companion.data.cub200", fake_cub200)
    monkeypatch.setattr("companion.runtime.announce", lambda what, est, expect, ckpt, **kw: seen.setdefault("ckpt", ckpt))
    with pytest.raises(Stop):
        psol.run(psol.colab(device="cpu"))
    assert seen["ckpt"] == tmp_path / "drive" / "psol"


def test_colab_preset_is_the_full_recipe_with_fewer_classifier_epochs():
    from companion import psol

    assert psol.colab().classifier_epochs == 10
    assert psol.colab(classifier_epochs=20) == psol.full()
