"""The SSL toolkit's colab preset end to end on fabricated CIFAR-10 files: interrupted once, rerun to
resume, recorded as a verified full-tier record; and the stated full-run times follow from run_hours."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

import fabricate

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.fullpath
def test_colab_preset_resumes_after_an_interruption_and_records_the_full_tier(tmp_path, monkeypatch, capsys):
    from companion import results
    from companion.ssl import config, experiment, pretrain as pretrain_module

    folders = fabricate.full_run_folders(monkeypatch, tmp_path)
    fabricate.cifar(folders["data"], "cifar10", n_train=48, n_test=24)
    cfg = config.colab()
    assert cfg.mode == "full" and cfg.dataset == "cifar10" and cfg.methods == config.full().methods
    assert Path(cfg.pretrain.checkpoint_dir) == folders["checkpoints"] / "ssl_toolkit-colab"
    # the preset's recipe, sizes cut to a few CPU steps (a narrow encoder, heads and queue, batches of 16,
    # one epoch of the 48 fabricated images); two seeds so that the claims get an interval
    narrow = {"simsiam": {"proj_dim": 64, "pred_dim": 32}, "moco": {"dim": 32, "queue_size": 32},
              "byol": {"proj_dim": 32, "hidden": 64}}
    small = replace(
        cfg, seeds=(0, 1),
        pretrain=cfg.pretrain.replace(encoder="tiny", encoder_kwargs={"width": 4}, epochs=1, batch_size=16,
                                      checkpoint_every=2, device="cpu", progress=False, num_threads=1),
        method_kwargs={m: {**kw, **narrow.get(m, {})} for m, kw in cfg.method_kwargs.items()}, threads=1,
    )
    resumed = fabricate.record_resumes(monkeypatch, pretrain_module)
    stop = fabricate.interrupt_fit_after(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        experiment.run(small)
    assert stop["fired"] and not list(folders["results"].rglob("*.json"))  # nothing recorded yet
    assert (folders["checkpoints"] / "ssl_toolkit-colab" / "simsiam_seed0" / "last.pt").exists()
    out = capsys.readouterr().out
    assert "on a Colab T4" in out and "ssl_toolkit-colab" in out  # announced before it started

    metrics = experiment.run(small)  # the rerun
    assert resumed[0] == 2, "the interrupted method did not resume from its step-2 checkpoint"
    assert resumed[1:] == [None] * 5  # the other five method-seed runs started fresh
    (path,) = (folders["results"] / "custom").glob("ssl_toolkit-full-*.json")  # a cut-down colab run
    entry = results.latest("ssl_toolkit", "full", folders["results"])
    results.check_record(entry, "full", str(path))
    assert entry["provenance"]["preset"] == "full, customised"
    ids = {c["id"] for c in entry["claims"]}
    assert {"sanity_knn", "sanity_knn_simsiam", "sanity_knn_moco", "sanity_knn_byol"} <= ids
    assert all(c["tier"] == "full" and "on cifar10" in c["metric"] for c in entry["claims"])
    assert metrics["setting"]["dataset"] == "cifar10" and len(metrics["simsiam"]["knn"]["per_seed"]) == 2


def test_run_hours_follows_the_presets_and_the_chapter_states_it():
    """Every stated time of the toolkit's full run is run_hours of its preset, rounded as stated."""
    from companion import ssl
    from companion.ssl import config

    whole, short = ssl.run_hours(), ssl.run_hours(config.colab())
    assert short.hours < 1 < whole.hours
    assert "3 methods" in whole.basis and "200 epochs" in whole.basis and "TFLOP/s" in whole.basis
    assert short.hours == pytest.approx(whole.hours * config.COLAB_EPOCHS / 200, rel=0.02)  # evaluation aside
    text = " ".join((ROOT / "book" / "08_efficient_ssl.md").read_text().split())  # line breaks as spaces
    stated = re.search(r"`python -m companion\.ssl --preset colab` takes about (\d+) minutes on a T4 and "
                       r"`--preset full` about (\d+) hours", text)
    assert stated, "chapter 8 no longer states the toolkit's colab and full times"
    assert [int(stated[1]), int(stated[2])] == [round(short.hours * 60), round(whole.hours)]
