"""The Efficient-SSL chapter's colab preset end to end on fabricated CIFAR-10 files: interrupted once,
rerun to resume, recorded as a verified full-tier record; and the chapter's stated times follow from
run_hours."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import fabricate

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.fullpath
def test_colab_preset_resumes_after_an_interruption_and_records_the_full_tier(tmp_path, monkeypatch, capsys):
    from companion import effssl, results
    from companion.effssl import experiment

    folders = fabricate.full_run_folders(monkeypatch, tmp_path)
    fabricate.cifar(folders["data"], "cifar10", n_train=48, n_test=24)
    cfg = effssl.config.colab()
    full = effssl.config.full()
    assert (cfg.tier, cfg.datasets, cfg.methods, cfg.baseline_budget) == ("full", ("cifar10",), full.methods, "time")
    assert Path(cfg.checkpoint_dir) == folders["checkpoints"] / "effssl-colab"
    # the preset's recipe, sizes cut to a few CPU steps: a narrow encoder and head, batches of 16, one epoch
    # of the 48 fabricated images; two seeds so that the claims get an interval
    small = cfg.replace(encoder="tiny", encoder_kwargs={"width": 4}, dim=32, hidden=32, epochs=1, batch_size=16,
                        checkpoint_every=2, progress=False, device="cpu", threads=1, linear_epochs=5, seeds=(0, 1))
    resumed = fabricate.record_resumes(monkeypatch, experiment)
    # the untrained floor's linear probe comes first (5 epochs of one full batch: 5 steps), then NPID
    stop = fabricate.interrupt_fit_after(monkeypatch, small.linear_epochs + 2)
    with pytest.raises(KeyboardInterrupt):
        effssl.run(small)
    assert stop["fired"] and not list(folders["results"].rglob("*.json"))
    assert (folders["checkpoints"] / "effssl-colab" / "cifar10" / "npid_seed0" / "last.pt").exists()
    out = capsys.readouterr().out
    assert "on a Colab T4" in out and "effssl-colab" in out  # announced before it started

    rows = effssl.run(small)  # the rerun
    assert resumed[0] == 2, "the interrupted rung did not resume from its step-2 checkpoint"
    # per seed: NPID, SqrtKL, SimSiam's timing probe and SimSiam itself; only the interrupted run resumed
    assert len(resumed) == 8 and resumed[1:] == [None] * 7
    assert rows["cifar10"]["npid"]["curve"]["steps"][-1] == 3  # the resumed run's curve went on to its end
    (path,) = (folders["results"] / "custom").glob("effssl-full-*.json")
    entry = results.latest("effssl", "full", folders["results"])
    results.check_record(entry, "full", str(path))
    # SimSiam at the same GPU time gets its premise and the efficiency claim that rests on it
    assert {c["id"] for c in entry["claims"]} == {"sanity_knn", "sanity_linear", "premise_simsiam_learns",
                                                  "sqrtkl_vs_simsiam"}
    efficiency = next(c for c in entry["claims"] if c["id"] == "sqrtkl_vs_simsiam")
    assert efficiency["premises"] == ["premise_simsiam_learns"] and "the full method's wall time" in efficiency["statement"]
    assert all(c["tier"] == "full" and "cifar10" in c["metric"] for c in entry["claims"])
    assert set(entry["metrics"]["cifar10"]) == {"untrained", "npid", "sqrtkl", "simsiam"}


def _stated(pattern: str) -> list[int]:
    text = " ".join((ROOT / "book" / "08_efficient_ssl.md").read_text().split())  # line breaks as spaces
    return [int(m) for m in re.findall(pattern, text)]


def test_run_hours_follows_the_presets_and_the_chapter_states_it():
    from companion import effssl

    colab, full = effssl.run_hours(effssl.config.colab()), effssl.run_hours(effssl.config.full())
    assert effssl.run_hours().hours == full.hours
    assert colab.hours < 1 < full.hours
    assert "cifar100" in full.basis and "200 epochs" in full.basis and "TFLOP/s" in full.basis
    assert "cifar100" not in colab.basis and f"{effssl.config.COLAB_EPOCHS} epochs" in colab.basis
    # SimSiam gets the full method's time: one more run of the same length per dataset
    assert full.basis.count("(the same time)") == 2
    assert _stated(r"`python -m companion\.effssl --preset colab` takes about (\d+) minutes") == [round(colab.hours * 60)]
    assert _stated(r"`--preset full` \(both datasets\) about (\d+) hours") == [round(full.hours)]
