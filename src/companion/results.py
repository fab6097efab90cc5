"""Measured results (``results/<chapter>.json``) and the verified paper numbers beside them.

Chapters write what they measure with :func:`write`; the "paper vs this book" table at the end of
every chapter is built by :func:`paper_vs_book` from those files and from ``paper_numbers.json``,
never typed by hand.

Book section: *How to read this book*, "Paper vs this book".
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

NOT_VERIFIED = "not verified"
NOT_RUN = "not run yet"
NOT_MEASURED = "not in this run"

#: The three tiers of every chapter: executed in each build, recorded by ``make study``, the paper's data.
TIERS = ("quick", "study", "full")
#: The only verdicts a claim can carry; computed by :func:`verdict`, never written by hand.
VERDICTS = ("holds", "does not hold", "inconclusive")
#: Keys left out of the drift check: what varies by nature from run to run (also any key ending in
#: ``seconds`` or ``_s``, e.g. ``fit_s``, ``images_per_s``: wall times and throughput).
VOLATILE = ("provenance", "timings", "time")


def _is_volatile(key: str) -> bool:
    return key in VOLATILE or key.endswith(("seconds", "_s"))

#: Each chapter's page, title, and the packages whose code its numbers depend on (a change there
#: marks its study record stale). The shared core (train, data, boxes) is not listed: it is tested
#: on its own and changes to it would mark every chapter stale at once.
CHAPTERS = {
    "tobias": ("01_tobias", "1. Tobias: a random CNN sees objects", ("tobias", "ssl", "backbones")),
    "psol": ("02_psol", "2. PSOL: pseudo-supervised object localization", ("psol", "backbones")),
    "s3l": ("03_s3l", "3. S3L: small is beautiful", ("s3l", "ssl")),
    "nrs": ("04_nrs", "4. NRS: neural random subspace", ("nrs",)),
    "fewshot": ("05_worst_case_fewshot", "5. Worst case matters for few-shot recognition", ("fewshot",)),
    "ssql": ("06_ssql", "6. SSQL: self-supervised and quantization learning", ("ssql", "quant", "ssl")),
    "us3l": ("07_us3l", "7. US3L: universally slimmable SSL", ("us3l", "slimmable", "ssl")),
    "effssl": ("08_efficient_ssl", "8. Efficient single-branch SSL", ("effssl", "ssl")),
    "vit2040": ("09_vit_2040", "9. ViTs with only 2040 images", ("vit2040", "ssl")),
    "efpc": ("10_efpc", "10. EFPC: efficient and flexible prompt compression", ("efpc", "compress")),
    "ssl_toolkit": ("08_efficient_ssl", "The self-supervised toolkit", ("ssl",)),
}

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def check_chapter_name(chapter: str) -> str:
    """A results file is named after its chapter: lower-case letters, digits and ``_`` only."""
    if not isinstance(chapter, str) or not _NAME.match(chapter):
        raise ValueError(
            f"chapter must be a plain name such as 'psol' (lower-case letters, digits, '_'), got {chapter!r}"
        )
    return chapter


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


def _clean(value: Any, where: str = "metrics") -> Any:
    """JSON-safe copy: tensors and numpy scalars become Python numbers; NaN and inf are refused."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, dict):
        return {str(k): _clean(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(
            f"{where} is {value}: results hold finite numbers only (record None for 'not measured', "
            "or fix the run that produced it)"
        )
    return value


def _atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a results file is for every reader
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------------------------------------
# Intervals and verdicts: the one place every chapter's claims are decided.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Interval:
    """A mean over ``n`` samples (seeds, episodes or splits) with its 95% interval ``[low, high]``."""

    estimate: float
    low: float
    high: float
    n: int
    method: str


def _samples(values, name: str) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be a sequence of numbers, got {type(values).__name__}") from err
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional (one number per seed/episode/split), got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty: an interval needs at least 2 samples")
    if not np.all(np.isfinite(arr)):
        bad = [i for i, v in enumerate(arr) if not math.isfinite(v)]
        raise ValueError(f"{name} holds non-finite values at positions {bad}: fix the runs that produced them")
    if arr.size < 2:
        raise ValueError(f"{name} has n={arr.size}: an interval needs at least 2 samples (seeds, episodes or splits)")
    return arr


def _paired(samples, baseline) -> np.ndarray:
    """``samples``, or ``samples - baseline`` element by element (same seed, episode or split)."""
    x = _samples(samples, "samples")
    if baseline is None:
        return x
    b = _samples(baseline, "baseline")
    if b.shape != x.shape:
        raise ValueError(f"paired samples must have the same length: {x.size} vs baseline {b.size}")
    return x - b


def interval(samples, baseline=None, *, method: str = "t", confidence: float = 0.95,
             n_boot: int = 10_000, seed: int = 0) -> Interval:
    r"""The mean of ``samples`` (minus ``baseline``, paired) with a ``confidence`` interval.

    ``method="t"``: Student's t interval, :math:`\bar d \pm t_{n-1,\,0.975}\, s/\sqrt n`.
    ``method="bootstrap"``: percentile bootstrap of the mean, ``n_boot`` resamples from a seeded
    generator (the same call gives the same interval). With ``baseline``, both are paired: the
    differences ``samples[i] - baseline[i]`` (same seed, episode or split) are what is resampled.

    Book section: *How to read this book*, "Claims, intervals and verdicts".
    """
    from scipy import stats

    x = _paired(samples, baseline)
    if not (isinstance(confidence, float) and 0.5 <= confidence < 1.0):
        raise ValueError(f"confidence must be a float in [0.5, 1), got {confidence!r}")
    mean = float(x.mean())
    if method == "t":
        half = float(stats.t.ppf(0.5 + confidence / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
        low, high, name = mean - half, mean + half, "t interval"
    elif method == "bootstrap":
        if not isinstance(n_boot, int) or n_boot < 100:
            raise ValueError(f"n_boot must be an integer >= 100, got {n_boot!r}")
        rng = np.random.default_rng(seed)
        means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
        alpha = (1 - confidence) / 2
        low, high = (float(v) for v in np.quantile(means, [alpha, 1 - alpha]))
        name = f"percentile bootstrap ({n_boot} resamples)"
    else:
        raise ValueError(f"method must be 't' or 'bootstrap', got {method!r}")
    if baseline is not None:
        name = "paired " + name
    return Interval(mean, low, high, int(x.size), name)


def verdict(low: float, high: float, direction: str = "greater", threshold: float = 0.0) -> str:
    """``holds`` when ``[low, high]`` lies wholly on the claimed side of ``threshold``,
    ``does not hold`` when it lies wholly on the other side, ``inconclusive`` when it straddles it.

    ``direction="greater"``: the claim is "the estimate exceeds ``threshold``"; ``"less"``: "is below".

    Book section: *How to read this book*, "Claims, intervals and verdicts".
    """
    for name, v in (("low", low), ("high", high), ("threshold", threshold)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"{name} must be a finite number, got {v!r}")
    if low > high:
        raise ValueError(f"the interval is empty: low={low} > high={high}")
    if direction == "greater":
        above, below = low > threshold, high < threshold
    elif direction == "less":
        above, below = high < threshold, low > threshold
    else:
        raise ValueError(f"direction must be 'greater' or 'less', got {direction!r}")
    return "holds" if above else "does not hold" if below else "inconclusive"


def claim(id: str, statement: str, metric: str, tier: str, samples, baseline=None, *,
          direction: str = "greater", threshold: float = 0.0, method: str = "t", unit: str = "points") -> dict:
    """One claim record: the paper's claim, what was measured, the interval over ``n`` samples and the
    verdict computed from it. ``samples`` (minus ``baseline``, paired) are kept in the record.

    Book section: *How to read this book*, "Claims, intervals and verdicts".
    """
    if not isinstance(id, str) or not _NAME.match(id):
        raise ValueError(f"claim id must be a plain name such as 'sr_worst_case', got {id!r}")
    for name, text in (("statement", statement), ("metric", metric)):
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"claim {id!r}: {name} must be a non-empty sentence")
    if tier not in TIERS:
        raise ValueError(f"claim {id!r}: tier must be one of {TIERS}, got {tier!r}")
    diffs = _paired(samples, baseline)
    est = interval(diffs, method=method)
    record = {
        "id": id,
        "statement": statement.strip(),
        "metric": metric.strip(),
        "tier": tier,
        "estimate": est.estimate,
        "ci95": [est.low, est.high],
        "n": est.n,
        "verdict": verdict(est.low, est.high, direction, threshold),
        "direction": direction,
        "threshold": float(threshold),
        "interval": ("paired " if baseline is not None else "") + est.method,
        "unit": unit,
        "samples": diffs.tolist(),
    }
    return record


def check_claim(record: dict) -> None:
    """Raise when a stored claim lacks a field or its verdict is not the one its interval gives."""
    need = ("id", "statement", "metric", "tier", "estimate", "ci95", "n", "verdict")
    missing = [k for k in need if k not in record]
    if missing:
        raise ValueError(f"claim {record.get('id', '?')!r} lacks {missing}")
    low, high = record["ci95"]
    expected = verdict(low, high, record.get("direction", "greater"), record.get("threshold", 0.0))
    if record["verdict"] != expected:
        raise ValueError(f"claim {record['id']!r} says {record['verdict']!r} but its interval "
                         f"[{low:.3g}, {high:.3g}] gives {expected!r}")


# ---------------------------------------------------------------------------------------------
# Provenance: where a record came from.
# ---------------------------------------------------------------------------------------------


def code_hash(chapter: str) -> str:
    """SHA-256 of the source of the packages a chapter's numbers depend on (see :data:`CHAPTERS`)."""
    packages = CHAPTERS.get(chapter, (None, None, (chapter,)))[2]
    digest = hashlib.sha256()
    base = Path(__file__).resolve().parent
    for package in packages:
        folder = base / package
        files = sorted(folder.rglob("*.py")) if folder.is_dir() else [base / f"{package}.py"]
        for f in files:
            if f.exists():
                digest.update(str(f.relative_to(base)).encode() + b"\0" + f.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _git_commit() -> str:
    root = find_project_root(Path(__file__).resolve().parent)
    if root is None or not (root / ".git").exists():
        return "unknown (not a git checkout)"
    try:
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "src"], cwd=root, capture_output=True,
                               text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown (git failed)"
    return head + (" + uncommitted changes in src/" if dirty else "")


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    text = f"{cpu}, {os.cpu_count()} cores"
    try:
        import torch

        if torch.cuda.is_available():
            text += f"; GPU: {torch.cuda.get_device_name(0)}"
    except Exception:  # noqa: BLE001 - provenance must never break a run
        pass
    return text


def _default_command(chapter: str, tier: str) -> str:
    if "ipykernel" in sys.modules:
        page = CHAPTERS.get(chapter, (chapter,))[0]
        return f"executing book/{page}.md ({tier} mode), e.g. by `make book`"
    argv0 = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    if argv0 == "__main__.py":
        return " ".join([f"python -m companion.{Path(sys.argv[0]).parent.name}", *sys.argv[1:]])
    return " ".join(sys.argv) if sys.argv else "unknown"


def provenance(chapter: str, tier: str, *, command: str | None = None, seeds=None,
               wall_s: float | None = None, preset: str | None = None) -> dict:
    """Commit, command, preset, seeds, wall time, machine, library versions and the code hash."""
    import torch

    return {
        "commit": _git_commit(),
        "code_hash": code_hash(chapter),
        "command": command or _default_command(chapter, tier),
        "preset": preset or tier,
        "seeds": _clean(list(seeds), "seeds") if seeds is not None else None,
        "wall_s": None if wall_s is None else round(float(wall_s), 1),
        "machine": _machine(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "time": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def write(chapter: str, mode: str, metrics: dict, scale: str, directory: Path | None = None, *,
          claims: list[dict] | tuple = (), seeds=None, command: str | None = None,
          wall_s: float | None = None, timings: dict | None = None, preset: str | None = None) -> Path:
    """Record ``metrics`` and ``claims`` for ``chapter`` under tier ``mode`` (``quick``, ``study`` or
    ``full``), keeping the other tiers, with its provenance.

    ``scale`` says what was run (data, size, device), e.g. ``"quick: 240 synthetic scenes, CPU"``.
    Whatever varies by nature between identical runs (wall times, throughput) goes in ``timings``:
    it is kept, but the drift check (:func:`drift`) ignores it, as it ignores the provenance.
    """
    check_chapter_name(chapter)
    if mode not in TIERS:
        raise ValueError(f"mode must be one of {TIERS}, got {mode!r}")
    if not metrics:
        raise ValueError("metrics is empty: nothing to record")
    stored_claims = []
    for c in claims:
        check_claim(c)
        if c["tier"] != mode:
            raise ValueError(f"claim {c['id']!r} is for tier {c['tier']!r}, written under {mode!r}")
        stored_claims.append(_clean(c, f"claim {c['id']!r}"))
    ids = [c["id"] for c in stored_claims]
    if len(set(ids)) != len(ids):
        raise ValueError(f"claim ids repeat: {ids}")
    path = (directory or results_dir()) / f"{chapter}.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    entry = {"scale": scale, "metrics": _clean(metrics), "claims": stored_claims,
             "provenance": provenance(chapter, mode, command=command, seeds=seeds, wall_s=wall_s, preset=preset)}
    if timings:
        entry["timings"] = _clean(timings, "timings")
    data[mode] = entry
    _atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")
    return path


def read(chapter: str, directory: Path | None = None) -> dict:
    """Everything recorded for ``chapter``: ``{tier: {"scale", "metrics", "claims", "provenance"}}``."""
    path = (directory or results_dir()) / f"{check_chapter_name(chapter)}.json"
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
    """The "paper vs this book" table as Markdown (a real table once rendered).

    Each row is ``{"what": label, "paper": key in paper_numbers.json or None,
    "quick": dotted key into the quick metrics or None, "study": same for study, "full": same for full}``.
    A paper value that is not verified shows as "not verified"; a run not made yet as "not run yet";
    a value the tier's run does not measure as "not in this run".
    """
    recorded = read(chapter, directory)
    numbers = paper_numbers()
    lines = [
        "| | paper | this book, quick | this book, study | this book, full |",
        "|---|---|---|---|---|",
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
        for mode in TIERS:
            key = row.get(mode)
            if key is None:
                cells.append("—")
                continue
            value = lookup(recorded, f"{mode}.metrics.{key}")
            # a tier that ran without this arm (a study-only schedule, say) is not "not run yet"
            cells.append(NOT_MEASURED if value is None and mode in recorded else _fmt(value, digits))
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    scales = "; ".join(f"**{mode}**: {lookup(recorded, f'{mode}.scale') or NOT_RUN}" for mode in TIERS)
    lines.append(f"Scale. {scales}.")
    if sources:
        lines.append("")
        lines.append("Paper sources: " + "; ".join(dict.fromkeys(sources)) + ".")
    return "\n".join(lines)


def _display_markdown(text: str):
    from IPython.display import Markdown, display

    display(Markdown(text))


def show_paper_vs_book(chapter: str, rows: list[dict], digits: int = 1):
    """Display :func:`paper_vs_book` as rendered Markdown in a notebook."""
    _display_markdown(paper_vs_book(chapter, rows, digits))


# ---------------------------------------------------------------------------------------------
# Claims on the page: tables, verdict sentences, staleness, the scoreboard, the drift check.
# ---------------------------------------------------------------------------------------------


def claims(chapter: str, tier: str | None = None, directory: Path | None = None) -> list[dict]:
    """The claim records of ``chapter`` (of one tier, or of all tiers in order)."""
    recorded = read(chapter, directory)
    tiers = TIERS if tier is None else (tier,)
    return [c for t in tiers for c in (recorded.get(t) or {}).get("claims", [])]


def find_claim(chapter: str, claim_id: str, tier: str, directory: Path | None = None) -> dict | None:
    """The record of one claim at one tier, or ``None`` when that tier has not recorded it."""
    if tier not in TIERS:
        raise ValueError(f"tier must be one of {TIERS}, got {tier!r}")
    for c in claims(chapter, tier, directory):
        if c["id"] == claim_id:
            return c
    return None


def study_status(chapter: str, directory: Path | None = None) -> str:
    """``"fresh"`` when the study record was made by the chapter's current code, ``"stale"`` when the
    chapter's packages changed since, ``"not run"`` when there is no study record."""
    entry = read(chapter, directory).get("study")
    if not entry:
        return "not run"
    recorded = lookup(entry, "provenance.code_hash")
    return "fresh" if recorded == code_hash(chapter) else "stale"


def _num(v: float, digits: int) -> str:
    return f"{v:+.{digits}f}"


def claims_table(chapter: str, tiers=("quick", "study"), digits: int = 1, directory: Path | None = None) -> str:
    """Markdown: one row per claim and tier (estimate, 95% interval, n, verdict), then provenance."""
    recorded = read(chapter, directory)
    lines = ["| claim | tier | metric | estimate | 95% interval | n | verdict |", "|---|---|---|---|---|---|---|"]
    notes = []
    for tier in tiers:
        entry = recorded.get(tier)
        if not entry:
            continue
        stale = tier == "study" and study_status(chapter, directory) == "stale"
        for c in entry.get("claims", []):
            low, high = c["ci95"]
            shown = f"**{c['verdict']}**" + (" (stale: re-run `make study`)" if stale else "")
            lines.append(f"| {c['statement']} | {tier} | {c['metric']} | {_num(c['estimate'], digits)} | "
                         f"[{_num(low, digits)}, {_num(high, digits)}] | {c['n']} | {shown} |")
        p = entry.get("provenance") or {}
        if p:
            seeds = p.get("seeds")
            seeds_text = "not recorded" if not seeds else (
                f"{seeds[0]}–{seeds[-1]}" if len(seeds) > 3 and seeds == list(range(seeds[0], seeds[0] + len(seeds)))
                else ", ".join(map(str, seeds)))
            wall = "" if p.get("wall_s") is None else f", {p['wall_s']:g} s"
            notes.append(f"*{tier}*: `{p.get('command')}`; seeds {seeds_text}{wall} on {p.get('machine')}, "
                         f"torch {p.get('torch')} ({p.get('torch_threads')} threads); commit {p.get('commit')}, "
                         f"code {p.get('code_hash')}, {p.get('time')}."
                         + (" **Stale**: the chapter's code has changed since; re-run `make study`." if stale else ""))
    if len(lines) == 2:
        lines.append(f"| no claim recorded yet | | | | | | {NOT_RUN} |")
    return "\n".join(lines) + ("\n\nProvenance. " + " ".join(notes) if notes else "")


def show_claims(chapter: str, tiers=("quick", "study"), digits: int = 1):
    """Display :func:`claims_table` in a notebook."""
    _display_markdown(claims_table(chapter, tiers, digits))


def say(chapter: str, claim_id: str, tier: str = "study", directory: Path | None = None, **texts: str) -> str:
    """The sentence for the verdict the record gives: prose that follows the verdict, never typed beside it.

    ``texts`` maps each verdict (``holds``, ``does_not_hold``, ``inconclusive``) to a sentence; each may use
    ``{estimate}``, ``{low}``, ``{high}``, ``{n}`` (formatted to one decimal) and ``{verdict}``. A verdict
    without a sentence, or a claim not recorded, is an error, so a chapter cannot state what its record lacks.
    """
    known = {"holds": "holds", "does_not_hold": "does not hold", "inconclusive": "inconclusive"}
    unknown = set(texts) - set(known)
    if unknown:
        raise ValueError(f"say() takes sentences for {sorted(known)}, got {sorted(unknown)}")
    c = find_claim(chapter, claim_id, tier, directory)
    if c is None:
        raise KeyError(f"{chapter}: claim {claim_id!r} has no {tier} record; run that tier first")
    key = {v: k for k, v in known.items()}[c["verdict"]]
    if key not in texts:
        raise ValueError(f"{chapter}/{claim_id} ({tier}) is {c['verdict']!r}, and say() was given no sentence for it")
    low, high = c["ci95"]
    return texts[key].format(estimate=f"{c['estimate']:.1f}", low=f"{low:.1f}", high=f"{high:.1f}",
                             n=c["n"], verdict=c["verdict"])


def show_say(chapter: str, claim_id: str, tier: str = "study", **texts: str):
    """Display :func:`say` as a paragraph of the page."""
    _display_markdown(say(chapter, claim_id, tier, **texts))


def scoreboard(directory: Path | None = None) -> str:
    """The reproduction scoreboard: every paper's claims with their verdicts at each tier (Markdown).

    Each row links to the chapter's claims section, labelled ``(<chapter>-claims)=`` in the chapter.
    """
    lines = ["| paper | claim | quick | study | full | study estimate [95% interval], n |",
             "|---|---|---|---|---|---|"]
    for chapter, (page, title, _) in CHAPTERS.items():
        if chapter == "ssl_toolkit":
            continue
        recorded = read(chapter, directory)
        ids = list(dict.fromkeys(c["id"] for c in claims(chapter, directory=directory)))
        if not ids:
            lines.append(f"| {{ref}}`{title} <{chapter}-claims>` | no claim recorded yet | {NOT_RUN} | {NOT_RUN} | not run | |")
            continue
        stale = study_status(chapter, directory) == "stale"
        for cid in ids:
            by_tier = {t: find_claim(chapter, cid, t, directory) for t in TIERS}
            first = next(c for c in by_tier.values() if c is not None)
            cells = []
            for t in TIERS:
                c = by_tier[t]
                text = ("not run" if t == "full" else NOT_RUN) if c is None else c["verdict"]
                if t == "study" and c is not None and stale:
                    text += " (stale)"
                cells.append(text)
            s = by_tier["study"]
            interval_text = "" if s is None else (
                f"{_num(s['estimate'], 1)} [{_num(s['ci95'][0], 1)}, {_num(s['ci95'][1], 1)}], n={s['n']}")
            lines.append(f"| {{ref}}`{title} <{chapter}-claims>` | {first['statement']} (*{first['metric']}*) | "
                         + " | ".join(cells)
                         + f" | {interval_text} |")
        del recorded
    return "\n".join(lines)


def show_scoreboard():
    """Display :func:`scoreboard` in a notebook."""
    _display_markdown(scoreboard())


def _comparable(entry: Any) -> Any:
    if isinstance(entry, dict):
        return {k: _comparable(v) for k, v in entry.items() if not _is_volatile(k)}
    if isinstance(entry, list):
        return [_comparable(v) for v in entry]
    return entry


def _differences(a: Any, b: Any, where: str) -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            if k not in a:
                out.append(f"{where}.{k}: only in the new run")
            elif k not in b:
                out.append(f"{where}.{k}: only in the committed file")
            else:
                out.extend(_differences(a[k], b[k], f"{where}.{k}"))
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _differences(x, y, f"{where}[{i}]")]
    return [] if a == b else [f"{where}: committed {b!r}, new run {a!r}"]


def drift(new: dict, committed: dict, tier: str = "quick") -> list[str]:
    """What differs between two records of one chapter at ``tier``, ignoring :data:`VOLATILE` keys.

    Empty when the run reproduced the committed numbers exactly (quick runs are bit-repeatable on one
    kind of machine, with the thread count pinned).
    """
    return _differences(_comparable(new.get(tier)), _comparable(committed.get(tier)), tier)


def check_drift(ref: str = "HEAD", directory: Path | None = None, tier: str = "quick") -> list[str]:
    """Compare every ``results/*.json`` in the working tree with its version at git ``ref``."""
    folder = directory or results_dir()
    root = find_project_root(folder) or folder.parent
    problems = []
    for path in sorted(folder.glob("*.json")):
        rel = path.resolve().relative_to(root.resolve())
        shown = subprocess.run(["git", "show", f"{ref}:{rel.as_posix()}"], cwd=root, capture_output=True, text=True)
        if shown.returncode != 0:
            problems.append(f"{rel}: not committed at {ref}")
            continue
        diffs = drift(json.loads(path.read_text()), json.loads(shown.stdout), tier)
        problems.extend(f"{rel}: {d}" for d in diffs)
    return problems


def main(argv=None) -> int:
    """``python -m companion.results check``: fail when the quick results just produced differ from git;
    ``python -m companion.results scoreboard``: print the scoreboard; ``status``: study freshness."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m companion.results", description=main.__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="compare results/*.json with their committed version (quick tier)")
    check.add_argument("--ref", default="HEAD")
    check.add_argument("--tier", default="quick", choices=TIERS)
    sub.add_parser("scoreboard", help="print the reproduction scoreboard (Markdown)")
    sub.add_parser("status", help="is each chapter's study record fresh?")
    args = parser.parse_args(argv)
    if args.command == "check":
        problems = check_drift(args.ref, tier=args.tier)
        if problems:
            print(f"results differ from {args.ref} ({len(problems)} values): re-run the book build "
                  "(`make book`) and commit results/, or find why the run is not repeatable:")
            print("\n".join("  " + p for p in problems[:200]))
            return 1
        print(f"results/: the {args.tier} records equal the committed ones")
        return 0
    if args.command == "scoreboard":
        print(scoreboard())
        return 0
    for chapter in CHAPTERS:
        print(f"{chapter:12s} {study_status(chapter)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
