"""US3L's full path: the colab preset end to end on a CIFAR-100 folder in torchvision's on-disk format,
interrupted mid-training and rerun to resume, ending in a checked full-tier record; and the times the
chapter states for the colab and full presets against :func:`companion.us3l.run_hours`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import fabricate

ROOT = Path(__file__).resolve().parents[1]


def test_colab_preset_is_the_full_recipe_shortened_to_under_an_hour():
    from companion import us3l

    full, colab = us3l.config.full(), us3l.config.colab()
    assert us3l.config.PRESETS["colab"] is us3l.config.colab
    same = ("dataset", "resolution", "base_width", "blocks", "batch_size", "lr", "dim", "hidden", "temperature",
            "momentum", "reg_lambda", "reg_alpha", "eval_widths", "knn_k", "tier")
    assert {k: getattr(colab, k) for k in same} == {k: getattr(full, k) for k in same}
    # the main comparison, paired over seeds, and the premise's network alone at width 0.25
    assert colab.modes == ("us3l", "naive", "fixed") and colab.separate_widths == (0.25,) and len(colab.seeds) >= 2
    assert colab.epochs < full.epochs
    assert us3l.run_hours(colab).hours < 1 < us3l.run_hours().hours
    assert us3l.full_run_hours is us3l.run_hours  # the older name still works
    assert "evaluation" in us3l.run_hours(colab).basis


def test_presets_checkpoint_under_checkpoint_root(tmp_path, monkeypatch):
    from companion import us3l

    monkeypatch.setenv("COMPANION_CHECKPOINTS", str(tmp_path))
    assert Path(us3l.config.full().checkpoint_dir) == tmp_path / "us3l"
    assert Path(us3l.config.colab().checkpoint_dir) == tmp_path / "us3l" / "colab"  # never resumed by a full run
    assert us3l.config.quick().checkpoint_dir is None


def test_run_hours_refuses_a_preset_counted_in_steps():
    from companion import us3l

    with pytest.raises(ValueError, match="epochs set, steps None.*got steps=60, epochs=None"):
        us3l.run_hours(us3l.config.quick(tier="full"))


def test_page_states_the_colab_and_full_times_run_hours_gives():
    from companion import us3l

    text = (ROOT / "book" / "07_us3l.md").read_text()
    colab, full = us3l.run_hours(us3l.config.colab()), us3l.run_hours()
    assert [int(m) for m in re.findall(r"`--preset colab` takes about (\d+) minutes", text)] == [
        round(colab.hours * 60 / 5) * 5]
    assert [int(m) for m in re.findall(r"--preset colab  # about (\d+) min on a T4", text)] == [
        round(colab.hours * 60 / 5) * 5]
    assert set(re.findall(r"--preset full  # about (\d+) h on a T4", text)) == {str(round(full.hours))}
    assert 'drive.mount("/content/drive")' in text and "rerun" in text.lower()


def test_cli_offers_colab_and_refuses_a_cpu_only_machine(monkeypatch):
    import torch

    from companion.us3l.__main__ import main

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="colab preset .* needs a GPU"):
        main(["--preset", "colab"])


@pytest.mark.fullpath
def test_colab_preset_runs_on_cifar100_files_resumes_and_records_full(tmp_path, monkeypatch):
    from companion import results
    from companion.us3l import config, experiment
    from companion.us3l.__main__ import main

    fabricate.cifar(tmp_path / "data", "cifar100", n_train=32, n_test=16)
    for name, folder in (("COMPANION_DATA", "data"), ("COMPANION_CHECKPOINTS", "checkpoints"),
                         ("COMPANION_RESULTS", "results")):
        monkeypatch.setenv(name, str(tmp_path / folder))
    monkeypatch.setenv("COMPANION_VERIFY_DATA", "0")
    colab = config.colab
    # the colab recipe on a CPU-sized network and data: 2 steps per epoch, a checkpoint every 2
    small = dict(base_width=8, blocks=(1, 1, 1, 1), dim=16, hidden=32, batch_size=16, epochs=2, linear_epochs=5,
                 checkpoint_every=2, progress=False, threads=1)
    monkeypatch.setitem(config.PRESETS, "colab", lambda **o: colab(**{**small, **o}))
    resumed = []
    pretrain = experiment.pretrain

    def spy(*args, **kwargs):
        model, fit = pretrain(*args, **kwargs)
        resumed.append((Path(args[3].checkpoint_dir).name, fit.resumed_from, fit.steps))
        return model, fit

    monkeypatch.setattr(experiment, "pretrain", spy)

    # the untrained network's linear probe takes 5 fit steps (5 epochs of one batch), then US3L trains:
    # the interruption comes in seed 0's US3L network, after its step-2 checkpoint
    fired = fabricate.interrupt_fit_after(monkeypatch, 5 + 3)
    with pytest.raises(KeyboardInterrupt):
        main(["--preset", "colab", "--device", "cpu"])
    assert fired["fired"] and resumed == []
    assert (tmp_path / "checkpoints" / "us3l" / "colab" / "us3l_seed0" / "last.pt").exists()
    assert not list((tmp_path / "results").rglob("*.json"))  # nothing recorded by the interrupted run

    out = main(["--preset", "colab", "--device", "cpu"])
    assert resumed == [("us3l_seed0", 2, 4), ("naive_seed0", None, 4), ("fixed_0.25_seed0", None, 4),
                       ("us3l_seed1", None, 4), ("naive_seed1", None, 4), ("fixed_0.25_seed1", None, 4)]
    assert set(out["mean"]) == {"random init", "us3l", "naive", "separate"}
    entry = results.latest("us3l", "full")
    results.check_record(entry, "full")
    ids = {c["id"] for c in entry["claims"]}
    assert {"premise_naive_degrades_w25", "sanity_knn", "sanity_linear", "us3l_vs_naive_w25",
            "us3l_vs_naive_w100"} <= ids
    assert all(c["tier"] == "full" for c in entry["claims"])
    assert entry["scale"].startswith("full: cifar100 at 32 px, slimmable ResNet base width 8, 2 epochs of batch 16")
