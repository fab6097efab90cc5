"""S3L's full path: the colab preset end to end on a CIFAR-100 folder in torchvision's on-disk format,
interrupted mid-pretraining and rerun to resume, ending in a checked full-tier record; and the times
the chapter states for the colab and full presets against :func:`companion.s3l.run_hours`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import fabricate

ROOT = Path(__file__).resolve().parents[1]


def _page() -> str:
    return (ROOT / "book" / "03_s3l.md").read_text()


def test_colab_preset_is_the_full_recipe_shortened_to_under_an_hour():
    from companion import s3l

    full, colab = s3l.config.full(), s3l.config.colab()
    assert s3l.config.PRESETS["colab"] is s3l.config.colab
    same = ("dataset", "resolution", "arch", "width", "method", "method_kwargs", "batch_size", "lr", "finetune_lr",
            "mixup_alpha", "knn_k", "tier", "budget")
    assert {k: getattr(colab, k) for k in same} == {k: getattr(full, k) for k in same}
    assert colab.arms == {"low": (16,), "full": (32,)} and len(colab.seeds) >= 2  # the claims' comparison, paired
    assert colab.epochs < full.epochs and colab.finetune_epochs < full.finetune_epochs
    assert s3l.run_hours(colab).hours < 1 < s3l.run_hours().hours
    assert s3l.full_run_hours is s3l.run_hours  # the older name still works


def test_presets_checkpoint_under_checkpoint_root(tmp_path, monkeypatch):
    from companion import s3l

    monkeypatch.setenv("COMPANION_CHECKPOINTS", str(tmp_path))
    assert Path(s3l.config.full().checkpoint_dir) == tmp_path / "s3l"
    assert Path(s3l.config.colab().checkpoint_dir) == tmp_path / "s3l" / "colab"  # never resumed by a full run
    assert s3l.config.quick().checkpoint_dir is None


def test_run_hours_refuses_a_budget_it_cannot_count():
    from companion import s3l

    with pytest.raises(ValueError, match="budget='epochs'.*got budget='steps'"):
        s3l.run_hours(s3l.config.quick())


def test_page_states_the_colab_and_full_times_run_hours_gives():
    from companion import s3l

    text = _page()
    colab, full = s3l.run_hours(s3l.config.colab()), s3l.run_hours()
    assert [int(m) for m in re.findall(r"`--preset colab` takes about (\d+) minutes", text)] == [
        round(colab.hours * 60 / 5) * 5]
    assert [int(m) for m in re.findall(r"--preset colab  # about (\d+) min on a T4", text)] == [
        round(colab.hours * 60 / 5) * 5]
    assert [int(m) for m in re.findall(r"`--preset full` about (\d+) hours", text)] == [round(full.hours)]
    assert set(re.findall(r"about (\d+) h on a T4", text)) == {str(round(full.hours))}
    assert 'drive.mount("/content/drive")' in text and "rerun" in text.lower()


def test_cli_offers_colab_and_refuses_a_cpu_only_machine(monkeypatch, capsys):
    import torch

    from companion.s3l.__main__ import main

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="colab preset .* needs a GPU"):
        main(["--preset", "colab"])
    with pytest.raises(SystemExit):
        main(["--preset", "quick", "--epochs", "3"])
    assert "apply to the colab and full presets" in capsys.readouterr().err


@pytest.mark.fullpath
def test_colab_preset_runs_on_cifar100_files_resumes_and_records_full(tmp_path, monkeypatch):
    from companion import results
    from companion.s3l import config
    from companion.s3l.__main__ import main

    fabricate.cifar(tmp_path / "data", "cifar100", n_train=32, n_test=16)
    for name, folder in (("COMPANION_DATA", "data"), ("COMPANION_CHECKPOINTS", "checkpoints"),
                         ("COMPANION_RESULTS", "results")):
        monkeypatch.setenv(name, str(tmp_path / folder))
    monkeypatch.setenv("COMPANION_VERIFY_DATA", "0")
    colab = config.colab
    # the colab recipe on a CPU-sized network and data: 2 pretraining steps per epoch, a checkpoint every 2
    small = dict(width=8, batch_size=16, finetune_batch_size=16, epochs=2, warmup_epochs=1, finetune_epochs=1,
                 premise_steps=2, checkpoint_every=2, progress=False, threads=1,
                 method_kwargs={**colab().method_kwargs, "queue_size": 32})
    monkeypatch.setitem(config.PRESETS, "colab", lambda **o: colab(**{**small, **o}))

    fired = fabricate.interrupt_fit_after(monkeypatch, 3)  # in the first (16 px) schedule, after its step-2 checkpoint
    with pytest.raises(KeyboardInterrupt):
        main(["--preset", "colab", "--device", "cpu"])
    assert fired["fired"]
    stage = tmp_path / "checkpoints" / "s3l" / "colab" / "seed0" / "low" / "stage0_16px" / "last.pt"
    assert stage.exists()
    assert not list((tmp_path / "results").rglob("*.json"))  # nothing recorded by the interrupted run

    out = main(["--preset", "colab", "--device", "cpu"])
    assert out["arms"]["low"]["resumed_from"] == [2]  # seed 0's 16 px schedule went on from its checkpoint
    assert out["arms"]["low"]["steps"] == [2 * (32 // 16)]
    assert out["arms"]["full"]["resumed_from"] == [None]
    entry = results.latest("s3l", "full")
    results.check_record(entry, "full")
    claims = {c["id"]: c for c in entry["claims"]}
    assert set(claims) == {"premise_resolution", "premise_pretraining_helps", "small_resolution", "sanity_knn"}
    assert claims["premise_resolution"]["kind"] == "premise"
    assert tuple(claims["small_resolution"]["premises"]) == ("premise_resolution", "premise_pretraining_helps")
    assert all(c["tier"] == "full" for c in entry["claims"])
    assert entry["metrics"]["n_train"] == 32 and entry["metrics"]["seeds"] == [0, 1]
    assert entry["scale"].startswith("full: cifar100 (32 train / 16 test) at 32 px")
