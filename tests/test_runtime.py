import random

import numpy as np
import pytest
import torch

from companion import runtime


def test_setup_defaults_to_quick_on_cpu(monkeypatch, capsys):
    monkeypatch.delenv("COMPANION_MODE", raising=False)
    rt = runtime.setup(seed=3)
    assert rt.mode == "quick" and rt.quick and not rt.full
    assert rt.device.type in ("cpu", "cuda", "mps")
    line = capsys.readouterr().out.strip()
    assert "mode=quick" in line and "torch" in line and line.count("\n") == 0


def test_mode_from_environment(monkeypatch):
    monkeypatch.setenv("COMPANION_MODE", "full")
    assert runtime.setup(verbose=False).mode == "full"
    assert runtime.setup(mode="quick", verbose=False).mode == "quick"


def test_bad_mode_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("COMPANION_MODE", "fast")
    with pytest.raises(ValueError, match="mode must be one of"):
        runtime.setup(verbose=False)


def test_seeding_repeats_python_numpy_torch():
    runtime.seed_everything(7)
    a = (random.random(), np.random.rand(), torch.rand(1).item())
    runtime.seed_everything(7)
    assert a == (random.random(), np.random.rand(), torch.rand(1).item())
    with pytest.raises(ValueError, match="seed"):
        runtime.seed_everything(-1)


def test_colab_cell_is_a_no_op_here_and_keeps_torch():
    cell = runtime.colab_install_cell()
    assert "--no-deps" in cell and runtime.REPO_URL in cell and "torch" not in cell.split("pip")[1].split("]")[0]
    exec(compile(cell, "<colab cell>", "exec"), {})  # not on Colab: nothing is installed


def test_colab_url_points_into_the_repository():
    url = runtime.colab_notebook_url("book/01_tobias.ipynb")
    assert url.endswith(f"/blob/{runtime.REPO_BRANCH}/book/01_tobias.ipynb")
    assert url.startswith("https://colab.research.google.com/github/")


def test_torch_threads_restores_the_setting_and_rejects_nonsense():
    import torch

    before = torch.get_num_threads()
    with runtime.torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with runtime.torch_threads(None):
        assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="threads"):
        with runtime.torch_threads(0):
            pass
