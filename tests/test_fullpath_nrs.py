"""NRS's colab preset end to end on fabricated data in the real on-disk formats (scikit-learn's OpenML
cache for the tables, a CUB_200_2011 tree for the CNN): cut off while fine-tuning on CUB, rerun to
resume, and a verified ``full`` record; and the times the chapter states."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fabricate import cub, interrupt_fit_after
from test_fullpath_defects import _fake_openml_cache

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.fullpath
def test_colab_preset_resumes_after_a_disconnect_and_records_the_full_tier(tmp_path, monkeypatch, capsys):
    import sklearn.datasets._openml as openml

    from companion import nrs, results, train
    from companion.nrs import cnn
    from companion.nrs.__main__ import main
    from companion.nrs.config import CUBConfig
    from companion.nrs.tabular import OPENML

    def offline(*args, **kwargs):
        raise OSError("this test has no network")

    monkeypatch.setattr(openml, "urlopen", offline)
    names = ("letter", "satimage")
    for name in names:
        _fake_openml_cache(tmp_path / "openml", OPENML[name]["data_id"])
    cub(tmp_path / "data", classes=3, per_class=4, size=48)
    for var, sub in (("COMPANION_DATA", "data"), ("COMPANION_CHECKPOINTS", "ckpt"), ("COMPANION_RESULTS", "results")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    monkeypatch.setenv("COMPANION_VERIFY_DATA", "0")
    real_colab = nrs.config.colab

    def small_colab():  # the colab preset with its sizes cut: two tables, 2 epochs, few trees, a small CNN
        cfg = real_colab()
        cfg.datasets, cfg.data_home = names, str(tmp_path / "openml")
        cfg.per_dataset = {n: {m: {**kw, "max_epochs": 2} for m, kw in cfg.per_dataset[n].items()} for n in names}
        cfg.rf, cfg.hgb = {"n_estimators": 5, "n_jobs": 1}, {"max_iter": 10}
        cfg.cub = CUBConfig(arch="resnet18", pretrained=False, image_size=32, epochs=2, batch_size=2, num_workers=0)
        return cfg

    monkeypatch.setitem(nrs.config.PRESETS, "colab", small_colab)
    fits = []
    real_fit = train.fit

    def spy(model, data, step_fn, config, **kwargs):
        out = real_fit(model, data, step_fn, config, **kwargs)
        if config.checkpoint_dir is not None:  # CUB (the tabular networks keep no checkpoints)
            fits.append((Path(config.checkpoint_dir).name, out.resumed_from))
        return out

    monkeypatch.setattr(train, "fit", spy)
    armed = {}
    real_train_cub = cnn.train_cub

    def cut_off_in_cub(*args, **kwargs):  # the tabular part finishes; CUB's first head is cut off at step 4
        if not armed:
            armed["state"] = interrupt_fit_after(monkeypatch, 4)
        return real_train_cub(*args, **kwargs)

    monkeypatch.setattr(cnn, "train_cub", cut_off_in_cub)
    with pytest.raises(KeyboardInterrupt):
        main(["--preset", "colab", "--device", "cpu"])
    assert armed["state"]["fired"]
    out = capsys.readouterr().out
    assert "on a Colab T4" in out and str(tmp_path / "ckpt" / "nrs") in out  # announced before it started
    assert (tmp_path / "ckpt" / "nrs" / "tabular.json").exists()

    main(["--preset", "colab", "--device", "cpu"])
    out = capsys.readouterr().out
    assert out.count("finished earlier, loaded from") == len(names)  # the tables were not fitted again
    assert fits[0] == ("cub_resnet18_nrs_32px", 3)  # the NRS head went on from its epoch-1 checkpoint (3 steps)
    assert fits[1] == ("cub_resnet18_linear_32px", None)
    entry = results.latest("nrs", "full", tmp_path / "results")
    assert entry and entry["provenance"]["preset"].startswith("full")
    results.check_record(entry, "full")
    assert {c["id"] for c in entry["claims"]} == {f"nrs_vs_{b}_{n}" for b in ("rf", "hgb") for n in names} | {
        "nrs_vs_rf_mean", "nrs_vs_hgb_mean"}
    assert all(c["tier"] == "full" and c["n"] == 3 for c in entry["claims"])
    assert set(entry["metrics"]["cub"]) == {"nrs", "linear"}


def _stated(pattern: str) -> list[float]:
    return [float(x) for x in re.findall(pattern, (ROOT / "book" / "04_nrs.md").read_text())]


def test_the_chapter_states_the_time_its_presets_take():
    from companion import nrs

    colab, full = nrs.run_hours(nrs.config.colab()), nrs.run_hours()
    assert colab.hours < 1 and "T4_FLOPS" in full.basis and "CUB nrs head: 1 x 65 epochs" in full.basis
    assert _stated(r"colab` preset:\s+about\s+(\d+)\s+minutes\s+on\s+a\s+T4") == [round(colab.hours * 60)]
    assert _stated(r"full` preset:\s+about\s+(\d+)\s+hours\s+on\s+a\s+T4") == [round(full.hours)]
    assert nrs.run_hours(nrs.config.full()).hours > nrs.run_hours(_without_cub(nrs.config.full())).hours


def _without_cub(cfg):
    cfg.cub = None
    return cfg


def test_full_runs_checkpoint_under_the_checkpoint_root(tmp_path, monkeypatch):
    from companion.nrs import config
    from companion.nrs.experiment import _checkpoint_root

    monkeypatch.setenv("COMPANION_CHECKPOINTS", str(tmp_path / "drive"))
    assert _checkpoint_root(config.colab()) == tmp_path / "drive" / "nrs"


def test_colab_preset_is_the_full_recipe_shortened():
    """Fewer rounds, tables and CUB epochs; every model setting of the tables it keeps is the full preset's."""
    from dataclasses import replace

    from companion.nrs import config

    colab, full = config.colab(), config.full()
    assert colab.rounds == 3 and colab.datasets == ("letter", "satimage", "usps", "gisette") and colab.cub.epochs == 10
    assert replace(colab.cub, epochs=65) == full.cub
    assert colab.per_dataset == {n: full.per_dataset[n] for n in colab.datasets}
    assert replace(colab, rounds=5, datasets=full.datasets, per_dataset=full.per_dataset, cub=full.cub) == full
