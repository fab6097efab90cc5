import random
import sys
from pathlib import Path

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
    monkeypatch.setenv("COMPANION_DEVICE", "cpu")  # full mode on a CPU only when asked for
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


def _config_repository():
    import yaml

    repo = yaml.safe_load((Path(__file__).resolve().parents[1] / "_config.yml").read_text())["repository"]
    return repo["url"].rstrip("/"), repo["branch"]


def test_repository_comes_from_config_yml():
    url, branch = _config_repository()
    assert runtime.repository() == (url, branch)
    # the fallback an installed copy uses is written from _config.yml by tools/colab_cells.py
    assert (runtime.REPO_URL, runtime.REPO_BRANCH) == (url, branch), "run `make colab-cells`"
    cell = runtime.colab_install_cell()
    assert f'REPO = "{url}"' in cell and f'BRANCH = "{branch}"' in cell
    owner_repo = url.removeprefix("https://github.com/")
    assert runtime.colab_notebook_url("book/01_tobias.ipynb") == (
        f"https://colab.research.google.com/github/{owner_repo}/blob/{branch}/book/01_tobias.ipynb")


def test_colab_cell_is_a_no_op_here():
    cell = runtime.colab_install_cell()
    assert max(len(line) for line in cell.splitlines()) <= 88
    exec(compile(cell, "<colab cell>", "exec"), {})  # not on Colab: nothing is installed


class _FakeColab:
    """Run the install cell as if on Colab, with pip replaced by a recorder."""

    def __init__(self, monkeypatch, returncode=0, stderr="", wheels=()):
        import glob
        import subprocess
        import types

        self.calls = []
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
        monkeypatch.setattr(glob, "glob", lambda pattern: list(wheels))

        def run(cmd, **kwargs):
            constraints = Path(cmd[cmd.index("-c") + 1]).read_text()
            self.calls.append((cmd, constraints))
            return subprocess.CompletedProcess(cmd, returncode, "", stderr)

        monkeypatch.setattr(subprocess, "run", run)

    def run_cell(self, url="https://github.com/someone/fork", branch="dev"):
        exec(compile(runtime.colab_install_cell(url, branch), "<colab cell>", "exec"), {})


def test_colab_install_keeps_colabs_torch_and_numpy(monkeypatch):
    import importlib.metadata as md

    fake = _FakeColab(monkeypatch)
    fake.run_cell()
    (cmd, constraints), = fake.calls
    assert cmd[-1] == "companion @ git+https://github.com/someone/fork@dev"
    assert "--no-deps" not in cmd  # the other dependencies still meet pyproject's lower bounds
    for name in ("torch", "torchvision", "numpy"):
        assert f"{name}=={md.version(name)}" in constraints.splitlines()


def test_colab_install_prefers_an_uploaded_wheel(monkeypatch):
    fake = _FakeColab(monkeypatch, wheels=["/content/companion-0.1.0-py3-none-any.whl"])
    fake.run_cell()
    assert fake.calls[0][0][-1] == "/content/companion-0.1.0-py3-none-any.whl"


def test_colab_install_failure_says_what_to_do(monkeypatch):
    fake = _FakeColab(monkeypatch, returncode=1, stderr="ERROR: Repository not found.")
    with pytest.raises(RuntimeError) as err:
        fake.run_cell()
    message = str(err.value)
    assert "Repository not found" in message and "make wheel" in message and "/content" in message
    assert "repository.url" in message and "someone/fork@dev" in message


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
