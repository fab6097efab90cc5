"""Measured results (``results/<chapter>.json``) and the verified paper numbers beside them.

Chapters write what they measure with :func:`write`; the "paper vs this book" table at the end of
every chapter is built by :func:`paper_vs_book` from those files and from ``paper_numbers.json``,
never typed by hand.

Book section: *How to read this book*, "Paper vs this book".
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

NOT_VERIFIED = "not verified"
NOT_RUN = "not run yet"


def find_project_root(start: Path | None = None) -> Path | None:
    """The folder holding the book's ``_toc.yml`` and ``pyproject.toml``, searching upwards."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "_toc.yml").exists() and (folder / "pyproject.toml").exists():
            return folder
    return None


def results_dir() -> Path:
    """``COMPANION_RESULTS``, else ``results/`` at the project root, else ``./results``."""
    if os.environ.get("COMPANION_RESULTS"):
        return Path(os.environ["COMPANION_RESULTS"])
    root = find_project_root()
    return (root if root is not None else Path.cwd()) / "results"


def _clean(value: Any) -> Any:
    """JSON-safe copy: tensors and numpy scalars become Python numbers, NaN becomes None."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write(chapter: str, mode: str, metrics: dict, scale: str, directory: Path | None = None) -> Path:
    """Record ``metrics`` for ``chapter`` under ``mode`` (``quick``/``full``), keeping the other mode.

    ``scale`` says what was run (data, size, device), e.g. ``"quick: 240 synthetic scenes, CPU"``.
    """
    if mode not in ("quick", "full"):
        raise ValueError(f"mode must be 'quick' or 'full', got {mode!r}")
    if not metrics:
        raise ValueError("metrics is empty: nothing to record")
    path = (directory or results_dir()) / f"{chapter}.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data[mode] = {
        "scale": scale,
        "metrics": _clean(metrics),
        "recorded": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
    }
    _atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")
    return path


def read(chapter: str, directory: Path | None = None) -> dict:
    """Everything recorded for ``chapter``: ``{mode: {"scale", "metrics", "recorded"}}``."""
    path = (directory or results_dir()) / f"{chapter}.json"
    return json.loads(path.read_text()) if path.exists() else {}


def lookup(tree: dict, dotted: str) -> Any:
    """``lookup(d, "a.b")`` is ``d["a"]["b"]``; ``None`` when any part is missing."""
    node: Any = tree
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


@dataclass(frozen=True)
class PaperNumber:
    """One verified number, with where it was read."""

    key: str
    value: float | None
    metric: str
    setting: str
    source: str

    @property
    def shown(self) -> str:
        return NOT_VERIFIED if self.value is None else f"{self.value:g}"


def paper_numbers() -> dict[str, PaperNumber]:
    """All numbers in ``paper_numbers.json``, keyed ``"<paper>/<name>"``."""
    raw = json.loads(resources.files("companion").joinpath("paper_numbers.json").read_text())
    out = {}
    for paper, entries in raw["papers"].items():
        for name, e in entries.items():
            key = f"{paper}/{name}"
            out[key] = PaperNumber(key, e.get("value"), e["metric"], e["setting"], e["source"])
    return out


def paper_number(key: str) -> PaperNumber:
    numbers = paper_numbers()
    if key not in numbers:
        raise KeyError(f"{key!r} is not in paper_numbers.json; known: {sorted(numbers)}")
    return numbers[key]


def _fmt(value: Any, digits: int) -> str:
    if value is None:
        return NOT_RUN
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def paper_vs_book(chapter: str, rows: list[dict], digits: int = 1, directory: Path | None = None) -> str:
    """The "paper vs this book" table as Markdown.

    Each row is ``{"what": label, "paper": key in paper_numbers.json or None,
    "quick": dotted key into results quick metrics or None, "full": same for full}``.
    A paper value that is not verified shows as "not verified"; a run not made yet as "not run yet".
    """
    recorded = read(chapter, directory)
    numbers = paper_numbers()
    quick_scale = lookup(recorded, "quick.scale") or NOT_RUN
    full_scale = lookup(recorded, "full.scale") or NOT_RUN
    lines = [
        "| | paper | this book, quick | this book, full |",
        "|---|---|---|---|",
    ]
    sources = []
    for row in rows:
        paper_key = row.get("paper")
        if paper_key is None:
            paper_cell = NOT_VERIFIED
        else:
            if paper_key not in numbers:
                raise KeyError(f"{paper_key!r} is not in paper_numbers.json")
            pn = numbers[paper_key]
            paper_cell = pn.shown
            if pn.value is not None:
                sources.append(f"{pn.metric} ({pn.setting}): {pn.source}")
        cells = [row["what"], paper_cell]
        for mode in ("quick", "full"):
            key = row.get(mode)
            cells.append("—" if key is None else _fmt(lookup(recorded, f"{mode}.metrics.{key}"), digits))
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"Scale, quick: {quick_scale}. Scale, full: {full_scale}.")
    if sources:
        lines.append("")
        lines.append("Paper sources: " + "; ".join(dict.fromkeys(sources)) + ".")
    return "\n".join(lines)


def show_paper_vs_book(chapter: str, rows: list[dict], digits: int = 1):
    """Display :func:`paper_vs_book` as rendered Markdown in a notebook."""
    from IPython.display import Markdown, display

    display(Markdown(paper_vs_book(chapter, rows, digits)))
