"""What a reader running a chapter on a Colab GPU relies on: checkpoints that outlive the runtime, an
explicit switch for local dataset copies, and a colab preset per chapter that fits a session and says
its time before it starts."""

from __future__ import annotations

import importlib
import sys
import types
import warnings

import pytest

from companion import runtime
from companion.data import datasets

import fabricate

#: Every chapter's package and the SSL toolkit: each has a colab preset and a run-time estimate.
PACKAGES = ("tobias", "psol", "s3l", "nrs", "fewshot", "ssql", "us3l", "effssl", "vit2040", "efpc", "ssl")


@pytest.fixture
def colab(monkeypatch, tmp_path):
    """A simulated Colab kernel: ``google.colab`` importable, Drive's folder under tmp_path (unmounted)."""
    google = types.ModuleType("google")
    module = types.ModuleType("google.colab")
    google.colab = module
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.colab", module)
    monkeypatch.setattr(runtime, "COLAB_DRIVE", tmp_path / "drive" / "MyDrive")
    monkeypatch.setattr(runtime, "_warned_no_drive", False)
    monkeypatch.delenv("COMPANION_CHECKPOINTS", raising=False)
    monkeypatch.setenv("COMPANION_DATA", str(tmp_path / "cache" / "data"))
    return tmp_path


def test_checkpoints_go_to_drive_on_colab_when_it_is_mounted(colab):
    (colab / "drive" / "MyDrive").mkdir(parents=True)  # what drive.mount("/content/drive") makes
    assert runtime.in_colab()
    assert runtime.checkpoint_root() == colab / "drive" / "MyDrive" / "companion" / "checkpoints"
    assert runtime.checkpoint_root("s3l") == colab / "drive" / "MyDrive" / "companion" / "checkpoints" / "s3l"


def test_on_colab_without_drive_it_says_how_to_mount_it_once_and_uses_the_cache(colab, capsys):
    assert runtime.checkpoint_root("psol") == colab / "cache" / "checkpoints" / "psol"
    said = capsys.readouterr().out
    assert 'drive.mount("/content/drive")' in said and "deletes" in said
    runtime.checkpoint_root("psol")
    assert capsys.readouterr().out == ""


def test_an_explicit_checkpoint_folder_wins_everywhere(colab, monkeypatch):
    (colab / "drive" / "MyDrive").mkdir(parents=True)
    monkeypatch.setenv("COMPANION_CHECKPOINTS", str(colab / "mine"))
    assert runtime.checkpoint_root("nrs") == colab / "mine" / "nrs"


def test_outside_colab_checkpoints_live_beside_the_data_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("COMPANION_CHECKPOINTS", raising=False)
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)
    monkeypatch.setenv("COMPANION_DATA", str(tmp_path / "data"))
    assert runtime.checkpoint_root() == tmp_path / "checkpoints"


@pytest.mark.parametrize("bad", ["", "../up", "a/b", ".hidden", 3])
def test_checkpoint_root_refuses_a_chapter_that_is_not_a_folder_name(bad):
    with pytest.raises(ValueError, match="chapter must be a plain folder name"):
        runtime.checkpoint_root(bad)


def test_announce_states_time_basis_result_and_where_it_resumes(capsys, tmp_path):
    short = runtime.estimate_hours(50_000, 10, 300.0, basis="assumed 300 images/s")
    text = runtime.announce("S3L colab preset", short, "the 32-px arm within a point of the 224-px arm",
                            checkpoints=tmp_path)
    assert text == capsys.readouterr().out.strip()
    assert "about 28 min on a Colab T4" in text and "assumed 300 images/s" in text
    assert "Expect: the 32-px arm" in text and f"Checkpoints: {tmp_path}" in text and "resume" in text
    long = runtime.estimate_hours(50_000, 400, 1_000.0)
    assert "about 6 h on a Colab T4" in runtime.announce("full", long, "x", verbose=False)
    with pytest.raises(TypeError, match="TimeEstimate"):
        runtime.announce("full", 2.0, "x")
    with pytest.raises(ValueError, match="result to expect"):
        runtime.announce("full", long, " ")


def test_local_copies_need_the_explicit_switch_and_it_warns(monkeypatch, tmp_path):
    fabricate.cifar(tmp_path, "cifar10", n_train=10, n_test=5)
    monkeypatch.setenv("COMPANION_VERIFY_DATA", "1")
    with pytest.raises(datasets.DatasetCorruptError, match="COMPANION_VERIFY_DATA=0"):
        datasets.torchvision_dataset("cifar10", "train", download=False, root=tmp_path)
    monkeypatch.setenv("COMPANION_VERIFY_DATA", "0")
    with pytest.warns(datasets.UnverifiedDataWarning, match="WITHOUT checking"):
        train = datasets.torchvision_dataset("cifar10", "train", download=False, root=tmp_path)
    assert len(train) == 10 and train[3][1] == 3
    monkeypatch.setenv("COMPANION_VERIFY_DATA", "no")
    with pytest.raises(ValueError, match="COMPANION_VERIFY_DATA must be 0 or 1"):
        datasets.torchvision_dataset("cifar10", "train", download=False, root=tmp_path)


def test_the_switch_does_not_invent_a_missing_dataset(monkeypatch, tmp_path):
    monkeypatch.setenv("COMPANION_VERIFY_DATA", "0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", datasets.UnverifiedDataWarning)
        with pytest.raises(datasets.DatasetMissingError, match="is not in"):
            datasets.torchvision_dataset("cifar100", "train", download=False, root=tmp_path)


def test_fabricated_formats_read_back_with_torchvision_and_the_cub_reader(monkeypatch, tmp_path):
    monkeypatch.setenv("COMPANION_VERIFY_DATA", "0")
    fabricate.cifar(tmp_path, "cifar100", n_train=8, n_test=4)
    fabricate.stl10(tmp_path, n_train=10, n_test=10, n_unlabeled=5)
    fabricate.flowers102(tmp_path, per_split=1, classes=3, size=32)
    fabricate.cub(tmp_path, classes=3, per_class=2, size=32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", datasets.UnverifiedDataWarning)
        assert len(datasets.torchvision_dataset("cifar100", "test", root=tmp_path, download=False)) == 4
        stl = datasets.torchvision_dataset("stl10", "train+unlabeled", root=tmp_path, download=False)
        assert len(stl) == 15 and stl[0][0].size == (96, 96)
        flowers = datasets.torchvision_dataset("flowers102", "val", root=tmp_path, download=False)
        assert len(flowers) == 3 and sorted(flowers[i][1] for i in range(3)) == [0, 1, 2]
    records = datasets.cub200(tmp_path, download=False)
    assert len(records) == 6 and sum(r.is_train for r in records) == 3
    x1, y1, x2, y2 = records[0].box
    assert 0 <= x1 < x2 <= 32 and 0 <= y1 < y2 <= 32


@pytest.mark.parametrize("package", PACKAGES)
def test_every_chapter_has_a_colab_preset_that_fits_a_session(package):
    """The colab preset is the full recipe shortened to under an hour on a T4 (by the chapter's own
    estimate, from the preset's epochs and a stated throughput); the full preset takes longer."""
    pkg = importlib.import_module(f"companion.{package}")
    config = importlib.import_module(f"companion.{package}.config")
    colab_hours = pkg.run_hours(config.colab())
    full_hours = pkg.run_hours()
    assert isinstance(colab_hours, runtime.TimeEstimate) and colab_hours.basis
    assert 0 < colab_hours.hours < 1.0, f"{package}: colab preset {colab_hours}"
    assert full_hours.hours > colab_hours.hours


@pytest.mark.parametrize("package", PACKAGES)
def test_every_chapter_command_line_takes_preset_colab_and_refuses_a_cpu_only_machine(package, monkeypatch, capsys):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delenv("COMPANION_DEVICE", raising=False)
    main = importlib.import_module(f"companion.{package}.__main__").main
    with pytest.raises((RuntimeError, SystemExit)) as err:
        main(["--preset", "colab"])
    assert "needs a GPU" in str(err.value) + capsys.readouterr().err


def test_a_colab_run_is_recorded_as_the_colab_preset_beside_the_full_record(tmp_path, capsys):
    from companion import results
    from companion.s3l import config

    path = results.write("s3l", "full", {"acc": 1.0}, "test", directory=tmp_path, config=config.colab())
    assert path == tmp_path / "custom" / "s3l-full-colab.json"
    assert "colab preset" in capsys.readouterr().out
    entry = results.latest("s3l", "full", directory=tmp_path)
    assert entry["provenance"]["preset"] == "colab" and "customised" not in entry
    assert results.write("s3l", "full", {"acc": 2.0}, "test", directory=tmp_path, config=config.full()) == \
        tmp_path / "s3l.json"
    import dataclasses

    shorter = dataclasses.replace(config.colab(), seeds=(0,))
    custom = results.write("s3l", "full", {"acc": 3.0}, "test", directory=tmp_path, config=shorter)
    assert custom.name.startswith("s3l-full-") and custom.name != "s3l-full-colab.json"
    assert results.latest("s3l", "full", directory=tmp_path)["provenance"]["preset"] == "full, customised"
