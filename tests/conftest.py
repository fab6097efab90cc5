import os

import companion  # noqa: F401  (first: it pins the CPU kernels before torch loads)
import matplotlib
import pytest
import torch

matplotlib.use("Agg")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
torch.set_num_threads(2)


@pytest.fixture(autouse=True)
def _results_in_tmp(tmp_path, monkeypatch):
    """Tests never write into the project's results/ folder."""
    monkeypatch.setenv("COMPANION_RESULTS", str(tmp_path / "results"))
    yield
    import matplotlib.pyplot as plt

    plt.close("all")
