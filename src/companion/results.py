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
TOO_FEW = "too few samples"
NOT_TESTABLE = "not testable at this scale"
#: The only verdicts a claim can carry; computed by :func:`claim` and :func:`finalize`, never written by hand.
#: "too few samples": n < 3 or no spread; "not testable at this scale": a premise of the claim does not hold.
VERDICTS = ("holds", "does not hold", "inconclusive", TOO_FEW, NOT_TESTABLE)
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


#: The committed records as shipped inside an installed package (``companion/records/``, copied from
#: ``results/`` when the wheel is built): what the chapters read where no checkout is around, on Colab.
#: Read-only: nothing is ever written there. In a checkout (an editable install) the folder does not exist.
SHIPPED = Path(__file__).resolve().parent / "records"
#: A reader's own records when neither ``COMPANION_RESULTS`` nor a checkout says where: under the working folder.
OWN_FOLDER = "companion-results"


def results_dir() -> Path:
    """Where runs are recorded and read first: ``COMPANION_RESULTS``, else ``results/`` at the project
    root, else ``./companion-results`` (a reader's own folder; never the shipped records)."""
    if os.environ.get("COMPANION_RESULTS"):
        return Path(os.environ["COMPANION_RESULTS"]).expanduser()
    root = find_project_root()
    return root / "results" if root is not None else Path.cwd() / OWN_FOLDER


def shipped_dir() -> Path | None:
    """The records shipped with the installed package, or ``None`` in a checkout (no such folder)."""
    return SHIPPED if SHIPPED.is_dir() else None


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


#: Fewest independent units (seeds, splits, blocks) a decided verdict needs.
MIN_N = 3
#: Fewest units a percentile bootstrap is allowed on: below that its interval is the sample range.
BOOTSTRAP_MIN_N = 10
#: Family-wise error rate of each chapter's paper claims at one tier (Holm's step-down procedure).
ALPHA = 0.05
#: What a claim is: a check that the testbed can show the paper's effect (``premise``), a check that
#: the setup works at all (``sanity``: e.g. pretraining beats the untrained network), or the paper's claim.
KINDS = ("premise", "sanity", "paper")
#: The question a claim asks of its paired differences d (method minus baseline, in the paper's direction):
#: superiority (d > 0), non-inferiority (d > -margin) or equivalence (-margin < d < margin).
TESTS = ("superiority", "non-inferiority", "equivalence")


def _bootstrap_means(x: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)


def interval(samples, baseline=None, *, method: str = "t", confidence: float = 0.95,
             n_boot: int = 10_000, seed: int = 0) -> Interval:
    r"""The mean of ``samples`` (minus ``baseline``, paired) with a ``confidence`` interval.

    ``method="t"``: Student's t interval, :math:`\bar d \pm t_{n-1,\,0.975}\, s/\sqrt n` (n >= 2).
    ``method="bootstrap"``: percentile bootstrap of the mean, ``n_boot`` resamples from a seeded
    generator (the same call gives the same interval); it needs n >= :data:`BOOTSTRAP_MIN_N`, since
    with fewer units its interval is little more than the sample range. With ``baseline``, both are
    paired: the differences ``samples[i] - baseline[i]`` (same seed, episode or split) are resampled.

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
        if x.size < BOOTSTRAP_MIN_N:
            raise ValueError(f"a bootstrap interval needs n >= {BOOTSTRAP_MIN_N} samples, got n={x.size}: "
                             "use method='t' (or more seeds)")
        if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 100:
            raise ValueError(f"n_boot must be an integer >= 100, got {n_boot!r}")
        means = _bootstrap_means(x, n_boot, seed)
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
    This is the interval's own verdict; :func:`claim` adds the rules on top (n >= 3, non-zero spread,
    the claim's kind and test, premises and Holm's correction).

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


def _equivalence_verdict(low: float, high: float, margin: float) -> str:
    if -margin < low and high < margin:
        return "holds"
    if high < -margin or low > margin:
        return "does not hold"
    return "inconclusive"


def threshold_of(test: str, direction: str, margin: float | None) -> float | None:
    """The line a claim's interval is judged against: 0 (superiority), ``+margin`` (superiority by at
    least ``margin``, higher is better; ``-margin`` when lower is better), ``-margin`` (non-inferiority,
    higher is better) or ``+margin`` (lower is better); ``None`` for equivalence (the band ±margin)."""
    if test == "superiority":
        if margin is None:
            return 0.0
        return margin if direction == "greater" else -margin
    if test == "non-inferiority":
        return -margin if direction == "greater" else margin
    return None


def _p_above(x: np.ndarray, line: float, method: str, means: np.ndarray | None) -> float:
    """One-sided p-value of "mean <= line" (small when the mean lies clearly above ``line``)."""
    from scipy import stats

    if method == "bootstrap":
        return float(np.mean(means <= line))
    se = float(x.std(ddof=1)) / math.sqrt(x.size)
    if se == 0.0:
        return 0.0 if x.mean() > line else 1.0
    return float(stats.t.sf((float(x.mean()) - line) / se, x.size - 1))


def _p_below(x: np.ndarray, line: float, method: str, means: np.ndarray | None) -> float:
    if method == "bootstrap":
        return float(np.mean(means >= line))
    return _p_above(-x, -line, method, None)


def _decide(x: np.ndarray, *, test: str, direction: str, margin: float | None, method: str,
            n_boot: int, seed: int) -> dict:
    """Estimate, interval, p-value and the interval's verdict of paired differences ``x``."""
    iv = interval(x, method=method, n_boot=n_boot, seed=seed)
    means = _bootstrap_means(x, n_boot, seed) if method == "bootstrap" else None
    sd = float(x.std(ddof=1))
    if test == "equivalence":
        p_for = max(_p_above(x, -margin, method, means), _p_below(x, margin, method, means))
        p_against = min(_p_below(x, -margin, method, means), _p_above(x, margin, method, means))
        raw = _equivalence_verdict(iv.low, iv.high, margin)
    else:
        line = threshold_of(test, direction, margin)
        up, down = _p_above(x, line, method, means), _p_below(x, line, method, means)
        p_for, p_against = (up, down) if direction == "greater" else (down, up)
        raw = verdict(iv.low, iv.high, direction, line)
    if x.size < MIN_N or sd == 0.0:
        raw = TOO_FEW
    return {"estimate": iv.estimate, "ci95": [iv.low, iv.high], "n": iv.n, "sd": sd, "interval": iv.method,
            "p_value": min(1.0, 2.0 * min(p_for, p_against)), "interval_verdict": raw}


def claim(id: str, statement: str, metric: str, tier: str, samples, baseline=None, *,
          kind: str | None = None, test: str = "superiority", margin: float | None = None,
          direction: str = "greater", method: str = "t", n_boot: int = 10_000, seed: int = 0,
          unit: str = "points", premises=()) -> dict:
    """One claim record: the claim in the paper's direction, what was measured, the interval over ``n``
    independent units (seeds, splits, blocks) and the verdict computed from it. ``samples`` (minus
    ``baseline``, paired) are kept in the record, so the record can be checked against them.

    ``kind``: ``"paper"`` (the paper's claim), ``"premise"`` (the testbed can show the paper's effect) or
    ``"sanity"`` (the setup works at all); by default it follows the id: ``premise_*`` ids are premise
    checks, ``sanity_*`` ids sanity checks, every other id a paper claim. ``test``: ``"superiority"`` (the interval lies above 0;
    with a ``margin``, "better by at least ``margin``": above ``+margin``, as a premise's "clear margin"), ``"non-inferiority"`` (above ``-margin``) or ``"equivalence"`` (inside ``±margin``); ``direction="less"``
    when a lower number is the paper's side. ``premises``: ids of premise claims of the same tier; when
    any of them does not hold, this claim is "not testable at this scale" (decided by :func:`write`).

    The verdict is ``"too few samples"`` when n < :data:`MIN_N` or every sample is equal (no spread).
    :func:`write` completes it for the chapter's family of paper claims (Holm's correction).

    Book section: *How to read this book*, "Claims, intervals and verdicts".
    """
    if not isinstance(id, str) or not _NAME.match(id):
        raise ValueError(f"claim id must be a plain name such as 'sr_worst_case', got {id!r}")
    for name, text in (("statement", statement), ("metric", metric)):
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"claim {id!r}: {name} must be a non-empty sentence")
    if tier not in TIERS:
        raise ValueError(f"claim {id!r}: tier must be one of {TIERS}, got {tier!r}")
    named = "premise" if id.startswith("premise") else "sanity" if id.startswith("sanity") else "paper"
    kind = named if kind is None else kind
    if kind not in KINDS:
        raise ValueError(f"claim {id!r}: kind must be one of {KINDS}, got {kind!r}")
    if kind != named:
        raise ValueError(f"claim {id!r}: a {kind} claim's id must start with '{kind}_' (premise_..., sanity_...), "
                         "and a paper claim's with neither")
    if test not in TESTS:
        raise ValueError(f"claim {id!r}: test must be one of {TESTS}, got {test!r}")
    if direction not in ("greater", "less"):
        raise ValueError(f"claim {id!r}: direction must be 'greater' or 'less', got {direction!r}")
    if test == "superiority" and margin is None:
        pass  # better than 0
    elif isinstance(margin, bool) or not isinstance(margin, (int, float)) or not (0 < margin < math.inf):
        raise ValueError(f"claim {id!r}: a {test} claim needs a finite margin > 0, got {margin!r}")
    if method not in ("t", "bootstrap"):
        raise ValueError(f"claim {id!r}: method must be 't' or 'bootstrap', got {method!r}")
    if isinstance(premises, str) or not all(isinstance(p, str) and _NAME.match(p) for p in premises):
        raise ValueError(f"claim {id!r}: premises must be a tuple of claim ids, got {premises!r}")
    if kind == "premise" and premises:
        raise ValueError(f"claim {id!r}: a premise claim cannot itself have premises")
    diffs = _paired(samples, baseline)
    decided = _decide(diffs, test=test, direction=direction, margin=None if margin is None else float(margin),
                      method=method, n_boot=n_boot, seed=seed)
    record = {
        "id": id,
        "statement": statement.strip(),
        "metric": metric.strip(),
        "tier": tier,
        "kind": kind,
        "test": test,
        "margin": None if margin is None else float(margin),
        "direction": direction,
        "threshold": threshold_of(test, direction, margin),
        "method": method,
        **({"n_boot": n_boot, "boot_seed": seed} if method == "bootstrap" else {}),
        "unit": unit,
        "premises": list(premises),
        **decided,
        "interval": ("paired " if baseline is not None else "") + decided["interval"],
        "verdict": decided["interval_verdict"],
        "holm": None,
        "samples": diffs.tolist(),
    }
    return record


#: Fields every stored claim carries.
CLAIM_FIELDS = ("id", "statement", "metric", "tier", "kind", "test", "margin", "direction", "threshold",
                "method", "unit", "premises", "estimate", "ci95", "n", "sd", "interval", "p_value",
                "interval_verdict", "verdict", "holm", "samples")


def _close(a, b) -> bool:
    return isinstance(a, (int, float)) and not isinstance(a, bool) and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def check_claim(record: dict) -> None:
    """Raise unless a stored claim is what its own samples give: n, estimate, interval, p-value and the
    interval's verdict are recomputed from ``samples`` with the stored method; the final verdict must be
    one its rules allow (the family-level rules, premises and Holm, are checked by :func:`check_record`)."""
    if not isinstance(record, dict):
        raise ValueError(f"a claim must be a JSON object, got {type(record).__name__}")
    cid = record.get("id", "?")
    missing = [k for k in CLAIM_FIELDS if k not in record]
    if missing:
        raise ValueError(f"claim {cid!r} lacks {missing}")
    if record["verdict"] not in VERDICTS:
        raise ValueError(f"claim {cid!r}: verdict {record['verdict']!r} is not one of {VERDICTS}")
    samples = record["samples"]
    if not isinstance(samples, list) or len(samples) < 2:
        raise ValueError(f"claim {cid!r}: samples must be a list of at least 2 numbers")
    try:
        again = claim(cid, record["statement"], record["metric"], record["tier"], samples, kind=record["kind"],
                      test=record["test"], margin=record["margin"], direction=record["direction"],
                      method=record["method"], n_boot=record.get("n_boot", 10_000),
                      seed=record.get("boot_seed", 0), unit=record["unit"], premises=tuple(record["premises"]))
    except (ValueError, TypeError) as err:
        raise ValueError(f"claim {cid!r} cannot be recomputed from its samples: {err}") from None
    if record["n"] != again["n"]:
        raise ValueError(f"claim {cid!r} says n={record['n']} but holds {again['n']} samples")
    for key in ("estimate", "sd", "p_value"):
        if not _close(record[key], again[key]):
            raise ValueError(f"claim {cid!r} says {key}={record[key]!r} but its samples give {again[key]!r}")
    ci = record["ci95"]
    if not (isinstance(ci, list) and len(ci) == 2 and all(_close(a, b) for a, b in zip(ci, again["ci95"]))):
        raise ValueError(f"claim {cid!r} says ci95={ci!r} but its samples give {again['ci95']!r}")
    if record["threshold"] != again["threshold"]:
        raise ValueError(f"claim {cid!r} says threshold={record['threshold']!r}; its test gives {again['threshold']!r}")
    raw = again["interval_verdict"]
    if record["interval_verdict"] != raw:
        raise ValueError(f"claim {cid!r} says {record['interval_verdict']!r} but its interval "
                         f"[{again['ci95'][0]:.3g}, {again['ci95'][1]:.3g}] (n={again['n']}) gives {raw!r}")
    allowed = {raw}
    if raw != TOO_FEW and record["premises"]:
        allowed.add(NOT_TESTABLE)
    if raw in ("holds", "does not hold") and record["kind"] == "paper":
        allowed.add("inconclusive")  # Holm's correction can only withhold a decision
    if record["verdict"] not in allowed:
        raise ValueError(f"claim {cid!r} says {record['verdict']!r} but its interval "
                         f"[{again['ci95'][0]:.3g}, {again['ci95'][1]:.3g}] (n={again['n']}) gives {raw!r}")


def holm(p_values) -> list[float]:
    """Holm's step-down adjusted p-values (same order as given): p_(i) times (m - i + 1), made monotone."""
    p = [float(v) for v in p_values]
    order = sorted(range(len(p)), key=lambda i: p[i])
    adjusted, running = [0.0] * len(p), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p) - rank) * p[i]))
        adjusted[i] = running
    return adjusted


def finalize(claims_: list[dict]) -> list[dict]:
    """Complete the verdicts of one tier's claims as a family: a claim whose premise does not hold is
    "not testable at this scale"; the paper claims still tested are corrected together with Holm's
    procedure at family-wise level :data:`ALPHA` (a decided verdict whose adjusted p-value is not below
    ALPHA becomes "inconclusive"). Returns new records; premise and sanity claims are not corrected.

    Book section: *How to read this book*, "Claims, intervals and verdicts".
    """
    out = [dict(c, verdict=c["interval_verdict"], holm=None) for c in claims_]
    by_id = {c["id"]: c for c in out}
    for c in out:
        if c["verdict"] == TOO_FEW or not c["premises"]:
            continue
        for pid in c["premises"]:
            premise = by_id.get(pid)
            if premise is None or premise["kind"] != "premise":
                raise ValueError(f"claim {c['id']!r} names premise {pid!r}, which is not a premise claim of "
                                 f"this tier (ids: {sorted(by_id)})")
        failed = [pid for pid in c["premises"] if by_id[pid]["interval_verdict"] != "holds"]
        if failed:
            c["verdict"] = NOT_TESTABLE
            c["untestable"] = "; ".join(f"premise {pid}: {by_id[pid]['interval_verdict']}" for pid in failed)
    family = [c for c in out if c["kind"] == "paper" and c["verdict"] not in (TOO_FEW, NOT_TESTABLE)]
    for c, adjusted in zip(family, holm([c["p_value"] for c in family])):
        c["holm"] = {"family": len(family), "p_adjusted": adjusted}
        if c["verdict"] in ("holds", "does not hold") and not adjusted < ALPHA:
            c["verdict"] = "inconclusive"
    return out


def check_record(entry: dict, tier: str, where: str = "record") -> None:
    """Raise unless one tier's entry is well formed and each claim is what its samples and family give."""
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: tier {tier!r} must be a JSON object, got {type(entry).__name__}")
    for key, kind in (("scale", str), ("metrics", dict), ("claims", list)):
        if not isinstance(entry.get(key), kind):
            raise ValueError(f"{where}: tier {tier!r} lacks {key!r} (a {kind.__name__})")
    ids = []
    for c in entry["claims"]:
        try:
            check_claim(c)
        except ValueError as err:
            raise ValueError(f"{where}, {tier}: {err}") from None
        if c["tier"] != tier:
            raise ValueError(f"{where}: claim {c['id']!r} is for tier {c['tier']!r}, stored under {tier!r}")
        ids.append(c["id"])
    if len(set(ids)) != len(ids):
        raise ValueError(f"{where}, {tier}: claim ids repeat: {ids}")
    expected = finalize(entry["claims"])
    for stored, again in zip(entry["claims"], expected):
        if stored["verdict"] != again["verdict"] or (stored["holm"] or {}) != (again["holm"] or {}):
            raise ValueError(f"{where}, {tier}: claim {stored['id']!r} says {stored['verdict']!r} "
                             f"(Holm {stored['holm']}) but its family gives {again['verdict']!r} (Holm {again['holm']})")
    seeds = lookup(entry, "provenance.seeds")
    if seeds and len(set(map(str, seeds))) != len(seeds):
        raise ValueError(f"{where}, {tier}: seeds repeat: {seeds}")


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
        return f"executing book/{page}.md in {tier} mode (make book)"
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


#: Config fields that say where or how a run happens, not what it computes: a run that changes only
#: these is still its preset's run.
RUNTIME_FIELDS = frozenset({"device", "progress", "checkpoint_dir", "data_root", "download", "record",
                            "write_results", "num_workers", "workers", "cache_dir", "verbose", "colab"})


def _settings(config) -> dict:
    import dataclasses

    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in RUNTIME_FIELDS}
        if isinstance(value, (list, tuple)):
            return type(value)(strip(v) for v in value)
        return value

    return strip(dataclasses.asdict(config))


def customised(config, tier: str) -> dict:
    """How ``config`` differs from the preset of its tier (``{field: [preset value, run value]}``);
    empty for the preset itself. The preset is the function named ``tier`` in the config's module."""
    import dataclasses
    import importlib

    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise TypeError(f"config must be a dataclass instance, got {type(config).__name__}")
    factory = getattr(importlib.import_module(type(config).__module__), tier, None)
    if not callable(factory):
        return {"preset": [None, f"no {tier}() preset in {type(config).__module__}"]}
    mine, preset = _settings(config), _settings(factory())
    return {k: [_clean(preset.get(k), k), _clean(mine.get(k), k)]
            for k in sorted(set(mine) | set(preset)) if mine.get(k) != preset.get(k)}


class _Locked:
    """An exclusive lock (``fcntl.flock``) on ``<file>.lock`` around a read-modify-replace of ``file``:
    two runs writing one chapter's record at once (the book build beside ``make study``) both land."""

    def __init__(self, path: Path):
        self.lock_path = path.with_name(f".{path.name}.lock")

    def __enter__(self):
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = open(self.lock_path, "a")
        try:
            import fcntl

            fcntl.flock(self.handle, fcntl.LOCK_EX)
        except ImportError:  # not POSIX: the atomic replace still prevents torn files
            pass
        return self

    def __exit__(self, *exc):
        self.handle.close()  # closing the descriptor releases the lock
        return False


def write(chapter: str, mode: str, metrics: dict, scale: str, directory: Path | None = None, *,
          claims: list[dict] | tuple = (), seeds=None, command: str | None = None,
          wall_s: float | None = None, timings: dict | None = None, preset: str | None = None,
          config=None) -> Path:
    """Record ``metrics`` and ``claims`` for ``chapter`` under tier ``mode`` (``quick``, ``study`` or
    ``full``), keeping the other tiers, with its provenance.

    ``scale`` says what was run (data, size, device), e.g. ``"240 synthetic scenes, CPU"``.
    Whatever varies by nature between identical runs (wall times, throughput) goes in ``timings``:
    it is kept, but the drift check (:func:`drift`) ignores it, as it ignores the provenance.

    The claims are completed as a family (:func:`finalize`: premises, Holm's correction) and each
    given dict gets its final ``verdict`` and ``holm`` in place, so what a run prints is what is recorded.
    With ``config`` (the run's config dataclass), a run whose settings differ from its tier's preset is
    recorded under its own name, ``custom/<chapter>-<tier>-<hash>.json``, never over the preset's record.
    The read-modify-replace holds a file lock, so concurrent writers of one chapter lose nothing.
    """
    check_chapter_name(chapter)
    if mode not in TIERS:
        raise ValueError(f"mode must be one of {TIERS}, got {mode!r}")
    if not isinstance(metrics, dict) or not metrics:
        raise ValueError("metrics is empty: nothing to record")
    if seeds is not None:
        seeds = list(seeds)
        if len(set(map(str, seeds))) != len(seeds):
            raise ValueError(f"seeds repeat: {seeds}: each seed is one independent unit, record each once")
    for c in claims:
        check_claim(c)
        if c["tier"] != mode:
            raise ValueError(f"claim {c['id']!r} is for tier {c['tier']!r}, written under {mode!r}")
    ids = [c["id"] for c in claims]
    if len(set(ids)) != len(ids):
        raise ValueError(f"claim ids repeat: {ids}")
    final = finalize(list(claims))
    for given, done in zip(claims, final):
        given.update(verdict=done["verdict"], holm=done["holm"])
        if "untestable" in done:
            given["untestable"] = done["untestable"]
    stored_claims = [_clean(c, f"claim {c['id']!r}") for c in final]
    folder = directory or results_dir()
    path = folder / f"{chapter}.json"
    entry = {"scale": scale, "metrics": _clean(metrics), "claims": stored_claims,
             "provenance": provenance(chapter, mode, command=command, seeds=seeds, wall_s=wall_s, preset=preset)}
    if config is not None:
        changed = customised(config, mode)
        if changed and mode == "full" and not customised(config, "colab"):
            # the colab preset (the full recipe shortened to a Colab session): a full-tier run of its own,
            # kept beside the full preset's record, never over it
            changed = {}
            path = folder / "custom" / f"{chapter}-full-colab.json"
            entry["provenance"]["preset"] = "colab"
            print(f"results: the colab preset's run is recorded in {path}")
        if changed:
            digest = hashlib.sha256(json.dumps(changed, sort_keys=True, default=str).encode()).hexdigest()[:8]
            path = folder / "custom" / f"{chapter}-{mode}-{digest}.json"
            entry["customised"] = changed
            entry["provenance"]["preset"] = f"{mode}, customised"
            print(f"results: these settings differ from the {mode} preset ({', '.join(changed)}): recorded in "
                  f"{path}, not over the preset's record")
    if timings:
        entry["timings"] = _clean(timings, "timings")
    with _Locked(path):
        data = _load(path) if path.exists() else {}
        data[mode] = entry
        _atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")
    return path


def _load(path: Path) -> dict:
    """A results file, parsed and checked for shape; one clear error naming the file otherwise."""
    try:
        text = path.read_text()
    except OSError as err:
        raise ValueError(f"{path}: cannot be read ({err.strerror})") from None
    if not text.strip():
        raise ValueError(f"{path}: is empty; restore it (`git checkout -- {path.name}` in results/) or re-run "
                         "the chapter")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: is not valid JSON ({err.msg} at line {err.lineno}, column {err.colno}); "
                         "it may be truncated: restore it from git or re-run the chapter") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: must hold a JSON object of tiers {TIERS}, got a {type(data).__name__}")
    unknown = sorted(set(data) - set(TIERS))
    if unknown:
        raise ValueError(f"{path}: unknown tiers {unknown}; a record has only {TIERS}")
    for tier, entry in data.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("claims", []), list):
            raise ValueError(f"{path}: tier {tier!r} must be an object with a list of claims")
        for c in entry.get("claims", []):
            missing = [k for k in ("id", "verdict", "ci95", "estimate", "n", "statement") if not isinstance(c, dict) or k not in c]
            if missing:
                cid = c.get("id", "?") if isinstance(c, dict) else "?"
                raise ValueError(f"{path}: {tier} claim {cid!r} lacks {missing}")
    return data


def read(chapter: str, directory: Path | None = None) -> dict:
    """Everything recorded for ``chapter``: ``{tier: {"scale", "metrics", "claims", "provenance"}}``;
    ``{}`` when nothing is recorded; a clear ValueError naming the file when it is malformed.

    Without ``directory``, an installed package's shipped record (:func:`shipped_dir`) supplies the
    tiers the reader's own folder lacks: a reader's quick run on Colab sits beside the book's study."""
    path = (directory or results_dir()) / f"{check_chapter_name(chapter)}.json"
    own = _load(path) if path.exists() else {}
    shipped = shipped_dir() if directory is None else None
    if shipped is not None and (shipped / path.name).exists():
        return {**_load(shipped / path.name), **own}
    return own


def latest(chapter: str, tier: str, directory: Path | None = None) -> dict:
    """The entry of ``tier`` written last for ``chapter``, the preset's record or a customised run's
    (``custom/``): what a reader's own last run recorded. ``{}`` when there is none."""
    folder = directory or results_dir()
    candidates = [folder / f"{check_chapter_name(chapter)}.json",
                  *(folder / "custom").glob(f"{chapter}-{tier}-*.json")]
    found = [(p.stat().st_mtime_ns, p) for p in candidates if p.exists()]
    for _, path in sorted(found, reverse=True):
        entry = _load(path).get(tier)
        if entry:
            return entry
    shipped = shipped_dir() if directory is None else None
    if shipped is not None and (shipped / f"{chapter}.json").exists():
        return _load(shipped / f"{chapter}.json").get(tier) or {}
    return {}


def verify(chapter: str, directory: Path | None = None) -> list[str]:
    """Every problem of ``chapter``'s record: each tier's claims recomputed from their samples and family."""
    path = (directory or results_dir()) / f"{check_chapter_name(chapter)}.json"
    try:
        data = read(chapter, directory)
    except ValueError as err:
        return [str(err)]
    problems = []
    for tier, entry in data.items():
        try:
            check_record(entry, tier, str(path))
        except ValueError as err:
            problems.append(str(err))
    return problems


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
    scales = "; ".join(f"**{mode}**: {strip_tier(lookup(recorded, f'{mode}.scale'), mode) or NOT_RUN}"
                       for mode in TIERS)
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

#: Each paper's central claim on the scoreboard: (short name, claim id, the claim in a few words, the
#: data this book tests it on, the paper's data). The other claims are counted beside it.
CENTRAL = {
    "tobias": ("Tobias", "random_cnn_vs_centred", "a random CNN's map beats a centred box",
               "112-px synthetic scenes", "CUB, ImageNet"),
    "psol": ("PSOL", "regressor_beats_ddt", "a regressor on DDT's boxes beats DDT",
             "64-px synthetic scenes", "CUB, ImageNet"),
    "s3l": ("S3L", "small_resolution", "low-resolution pretraining loses at most 1 point",
            "glyphs at 8 vs 16 px", "CIFAR-100 and more"),
    "nrs": ("NRS", "nrs_vs_rf_real_tables", "NRS beats a random forest on average", "34 real tables",
            "35 tables, CUB"),
    "fewshot": ("Worst case", "worst_case_1shot", "AC+EnSR raises the 1-shot worst case", "digits, an MLP",
                "CIFAR-FS"),
    "ssql": ("SSQL", "ssql_linear_2w4f", "SSQL beats SimSiam at 2-bit weights", "8-px digits", "CIFAR-10"),
    "us3l": ("US3L", "us3l_vs_naive_w25", "US3L beats released naive at width 0.25",
             "8-px digits", "CIFAR-100"),
    "effssl": ("Efficient SSL", "sqrtkl_vs_moco", "one branch matches MoCo v2 for less",
               "8-px digits", "CIFAR-10/100"),
    "vit2040": ("ViT-2040", "pretrain_vs_scratch", "pretraining beats training from scratch",
                "12-px digits, a 2-layer ViT", "Flowers-102"),
    "efpc": ("EFPC", "task_aware_gain", "task-aware compression keeps more of the answer",
             "24 passages, MiniLM", "LongBench"),
}

#: Colours of the verdict badges and forest-plot points (colour-blind safe, with the word always shown).
VERDICT_COLOURS = {"holds": "#1b7837", "does not hold": "#b2182b", "inconclusive": "#8c8c8c",
                   TOO_FEW: "#b8b8b8", NOT_TESTABLE: "#e08214"}


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


def plural(n: int, word: str, many: str | None = None) -> str:
    """``plural(1, "seed")`` is "1 seed", ``plural(2, "seed")`` "2 seeds" (no "seed(s)" on a page)."""
    return f"{n} {word if n == 1 else (many or word + 's')}"


def _code(text: str) -> str:
    """``text`` as a Markdown code span that survives backticks inside it."""
    text = str(text)
    fence = "``" if "`" in text else "`"
    return f"{fence} {text} {fence}" if fence == "``" else f"`{text}`"


def strip_tier(scale: str, tier: str) -> str:
    """A stored scale without a leading ``"<tier>: "`` (the table already says the tier)."""
    scale = scale or ""
    return scale[len(tier) + 2:] if scale.startswith(f"{tier}: ") else scale


def kind_text(c: dict) -> str:
    """The claim's kind and test in a few words, e.g. "paper, non-inferiority (margin 1)"."""
    if c["test"] == "superiority":
        by = "" if c["margin"] is None else f", by at least {c['margin']:g}"
        return c["kind"] + by
    if c["kind"] != "paper":
        return c["kind"]
    return f"paper, {c['test']} (margin {c['margin']:g})"


def _cell(c: dict | None, digits: int, stale: bool = False) -> str:
    if c is None:
        return "—"
    low, high = c["ci95"]
    text = f"{_num(c['estimate'], digits)} [{_num(low, digits)}, {_num(high, digits)}], n={c['n']}: **{c['verdict']}**"
    if c["verdict"] == "inconclusive" and c.get("interval_verdict") in ("holds", "does not hold"):
        text += f" ({c['interval_verdict']} before Holm)"
    if c["verdict"] == NOT_TESTABLE and c.get("untestable"):
        text += f" ({c['untestable']})".replace("_", "_\u200b")  # long premise ids may break across lines
    return text + (" (stale)" if stale else "")


_KIND_ORDER = {"premise": 0, "sanity": 1, "paper": 2}


def claims_table(chapter: str, tiers=("quick", "study"), digits: int = 1, directory: Path | None = None) -> str:
    """Markdown: one row per claim (premise checks, sanity checks, then the paper's claims) with each
    tier side by side (estimate, 95% interval, n, verdict), then the provenance of each tier."""
    recorded = read(chapter, directory)
    stale = study_status(chapter, directory) == "stale"
    by_id: dict[str, dict] = {}
    for tier in tiers:
        for c in (recorded.get(tier) or {}).get("claims", []):
            by_id.setdefault(c["id"], {})[tier] = c
    header = "| claim | kind | " + " | ".join(tiers) + " |"
    lines = [header, "|---|---|" + "---|" * len(tiers)]
    rows = sorted(by_id.items(), key=lambda kv: _KIND_ORDER.get(next(iter(kv[1].values()))["kind"], 3))
    for cid, per_tier in rows:
        first = next(iter(per_tier.values()))
        cells = [_cell(per_tier.get(t), digits, stale and t == "study" and t in per_tier) for t in tiers]
        lines.append(f"| {first['statement']} <br>*{first['metric']}* | {kind_text(first)} | " + " | ".join(cells) + " |")
    if not by_id:
        lines.append("| no claim recorded yet | | " + " | ".join([NOT_RUN] * len(tiers)) + " |")
    notes = []
    for tier in tiers:
        p = (recorded.get(tier) or {}).get("provenance") or {}
        if not p:
            continue
        seeds = p.get("seeds")
        seeds_text = "seeds not recorded" if not seeds else (
            f"seeds {seeds[0]}–{seeds[-1]}" if len(seeds) > 3 and seeds == list(range(seeds[0], seeds[0] + len(seeds)))
            else ("seed " if len(seeds) == 1 else "seeds ") + ", ".join(map(str, seeds)))
        wall = "" if p.get("wall_s") is None else f", {p['wall_s']:g} s"
        threads = p.get("torch_threads")
        notes.append(f"- *{tier}*: {_code(p.get('command'))}; {seeds_text}{wall} on {p.get('machine')}, torch "
                     f"{p.get('torch')} ({plural(threads, 'thread') if isinstance(threads, int) else threads}); "
                     f"commit {p.get('commit')}, code {p.get('code_hash')}, {p.get('time')}."
                     + (" **Stale**: the chapter's code has changed since; re-run `make study`."
                        if stale and tier == "study" else ""))
    rule = ("Each cell: the estimate (mean paired difference), its 95% interval, the number of independent units n, "
            "and the verdict. Verdicts: *holds* when the 95% interval lies wholly on the paper's side of the line (0 for "
            "superiority, minus the margin for non-inferiority), *does not hold* when wholly on the other side, "
            "*inconclusive* otherwise; *too few samples* below n = 3 or with no spread. The paper's claims of each "
            "tier are corrected together (Holm); premise and sanity checks are not.")
    return "\n".join(lines) + "\n\n" + rule + ("\n\nProvenance:\n\n" + "\n".join(notes) if notes else "")


def claim_line(c: dict, digits: int = 2) -> str:
    """One claim on one line, as the command lines print it: id, estimate [interval] (n) verdict."""
    low, high = c["ci95"]
    return (f"{c['id']} ({kind_text(c)}): {_num(c['estimate'], digits)} [{_num(low, digits)}, {_num(high, digits)}]"
            f" (n={c['n']}) {c['verdict']}")


def show_claims(chapter: str, tiers=("quick", "study"), digits: int = 1):
    """Display :func:`claims_table` in a notebook."""
    _display_markdown(claims_table(chapter, tiers, digits))


_SAY_KEYS = {"holds": "holds", "does_not_hold": "does not hold", "inconclusive": "inconclusive",
             "too_few_samples": TOO_FEW, "not_testable": NOT_TESTABLE}


def say(chapter: str, claim_id: str, tier: str = "study", directory: Path | None = None, **texts: str) -> str:
    """The sentence for the verdict the record gives: prose that follows the verdict, never typed beside it.

    ``texts`` maps each verdict (``holds``, ``does_not_hold``, ``inconclusive``, and optionally
    ``too_few_samples``, ``not_testable``) to a sentence; each may use ``{estimate}``, ``{low}``, ``{high}``,
    ``{n}`` (formatted to one decimal) and ``{verdict}``. A decided or inconclusive verdict without a
    sentence, or a claim not recorded, is an error, so a chapter cannot state what its record lacks; the
    two undecided verdicts get a plain sentence saying why when none is given.
    """
    unknown = set(texts) - set(_SAY_KEYS)
    if unknown:
        raise ValueError(f"say() takes sentences for {sorted(_SAY_KEYS)}, got {sorted(unknown)}")
    c = find_claim(chapter, claim_id, tier, directory)
    if c is None:
        raise KeyError(f"{chapter}: claim {claim_id!r} has no {tier} record; run that tier first")
    key = {v: k for k, v in _SAY_KEYS.items()}[c["verdict"]]
    low, high = c["ci95"]
    fields = dict(estimate=f"{c['estimate']:.1f}", low=f"{low:.1f}", high=f"{high:.1f}", n=c["n"], verdict=c["verdict"])
    if key not in texts:
        if key == "too_few_samples":
            return ("This run has too few independent samples to decide (n = {n}); the study tier decides it."
                    .format(**fields))
        if key == "not_testable":
            return (f"At this scale the claim cannot be tested: {c.get('untestable', 'its premise does not hold')} "
                    "(see the premise checks above).")
        raise ValueError(f"{chapter}/{claim_id} ({tier}) is {c['verdict']!r}, and say() was given no sentence for it")
    return texts[key].format(**fields)


def show_say(chapter: str, claim_id: str, tier: str = "study", **texts: str):
    """Display :func:`say` as a paragraph of the page."""
    _display_markdown(say(chapter, claim_id, tier, **texts))


def paper_label(paper_claims: list[dict]) -> str:
    """A reproduction report's label for a paper from its paper claims' verdicts: *reproduced* (every
    claim holds), *not reproduced* (none holds, some do not), *mixed*, *undecided* (none decided) or
    *not testable at this scale* (every claim's premise fails)."""
    verdicts = [c["verdict"] for c in paper_claims]
    if not verdicts:
        return "not run yet"
    if all(v == NOT_TESTABLE for v in verdicts):
        return NOT_TESTABLE
    decided = [v for v in verdicts if v in ("holds", "does not hold")]
    if not decided:
        return "undecided"
    if all(v == "holds" for v in verdicts):
        return "reproduced"
    if "holds" not in decided:
        return "not reproduced"
    return "mixed"


def scoreboard_rows(directory: Path | None = None, tier: str = "study") -> list[dict]:
    """One row per paper: its central claim at ``tier``, the counts of its other claims by kind and
    verdict, and the paper's label (:func:`paper_label`)."""
    rows = []
    for chapter, (page, title, _) in CHAPTERS.items():
        if chapter == "ssl_toolkit":
            continue
        short, cid, phrase, here, paper_scale = CENTRAL[chapter]
        recorded = claims(chapter, tier, directory)
        central = next((c for c in recorded if c["id"] == cid), None)
        others = [c for c in recorded if c["id"] != cid]
        counts = {}
        for c in others:
            counts.setdefault(c["kind"], {}).setdefault(c["verdict"], 0)
            counts[c["kind"]][c["verdict"]] += 1
        rows.append({"chapter": chapter, "page": page, "title": title, "short": short, "claim": phrase,
                     "central": central,
                     "tested_at": here, "paper_scale": paper_scale, "others": counts,
                     "label": paper_label([c for c in recorded if c["kind"] == "paper"]),
                     "stale": study_status(chapter, directory) == "stale"})
    return rows


def _row_counts(counts: dict) -> str:
    """The other claims of a scoreboard row: the paper's, not the premise or sanity checks."""
    short = {NOT_TESTABLE: "not testable"}  # the row must stay one screen tall
    paper = ", ".join(f"{n} {short.get(v, v)}" for v, n in sorted(counts.get("paper", {}).items(),
                                                                key=lambda kv: VERDICTS.index(kv[0])))
    # premise checks are not counted here: a failed one shows as "not testable" in the paper's counts
    return paper or "none"


def scoreboard(directory: Path | None = None) -> str:
    """The reproduction scoreboard as Markdown, one row per paper (what ``python -m companion.results
    scoreboard`` prints; the first page shows the same rows with coloured badges, :func:`show_scoreboard`)."""
    lines = ["| paper | central claim | study verdict | estimate [95% interval], n | tested on (paper's data) | "
             "other paper claims | paper |", "|---|---|---|---|---|---|---|"]
    for r in scoreboard_rows(directory):
        c = r["central"]
        verdict_text = NOT_RUN if c is None else c["verdict"] + (" (stale)" if r["stale"] else "")
        est = "" if c is None else (f"{_num(c['estimate'], 1)} [{_num(c['ci95'][0], 1)}, "
                                    f"{_num(c['ci95'][1], 1)}], n={c['n']}")
        lines.append(f"| {{ref}}`{r['title']} <{r['chapter']}-claims>` | {r['claim']} | {verdict_text} | {est} | "
                     f"{r['tested_at']} ({r['paper_scale']}) | {_row_counts(r['others'])} | {r['label']} |")
    return "\n".join(lines)


def scoreboard_html(directory: Path | None = None) -> str:
    """The scoreboard as an HTML table with coloured verdict badges, each paper linking to its claims."""
    import html

    labels = {"reproduced": "#1b7837", "not reproduced": "#b2182b", "mixed": "#6a51a3", "undecided": "#8c8c8c"}

    def badge(text: str) -> str:
        colour = {**VERDICT_COLOURS, **labels}.get(text.replace(" (stale)", ""), "#555")
        shown = text.replace(NOT_TESTABLE, "not testable")  # the legend above gives the whole phrase
        return (f'<span class="verdict-badge" style="background:{colour};color:#fff;border-radius:3px;'
                f'padding:0 4px;white-space:nowrap" title="{html.escape(text)}">{html.escape(shown)}</span>')

    rows_html = []
    cell = "padding:3px 5px;vertical-align:top"
    grey = "color:#666;font-size:11.5px"
    for r in scoreboard_rows(directory):
        c = r["central"]
        link = f'<a href="{r["page"]}.html#{r["chapter"]}-claims">{html.escape(r["short"])}</a>'
        verdict_text = NOT_RUN if c is None else c["verdict"] + (" (stale)" if r["stale"] else "")
        est = "" if c is None else f"{_num(c['estimate'], 1)} [{_num(c['ci95'][0], 1)}, {_num(c['ci95'][1], 1)}]"
        n = "" if c is None else f"<br><span style='{grey}'>n = {c['n']}</span>"
        rows_html.append(
            f"<tr><td style='{cell}'>{link}<br>{badge(r['label'])}</td>"
            f"<td style='{cell}'>{html.escape(r['claim'])}<br><span style='{grey}'>{html.escape(r['tested_at'])} "
            f"(paper: {html.escape(r['paper_scale'])})</span></td>"
            f"<td style='{cell}'>{badge(verdict_text)}{n}</td><td style='{cell};white-space:nowrap'>{est}</td>"
            f"<td style='{cell}'>{html.escape(_row_counts(r['others']))}</td></tr>")
    head = "".join(f"<th style='{cell};text-align:left'>{h}</th>" for h in (
        "paper", "central claim, tested on (paper's data)", "study verdict", "estimate [95% CI]",
        "other paper claims"))
    return ('<table class="scoreboard" style="font-size:12.5px;line-height:1.3;border-collapse:collapse">'
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows_html)}</tbody></table>")


def show_scoreboard():
    """Display :func:`scoreboard_html` in a notebook (the first page of the book)."""
    from IPython.display import HTML, display

    display(HTML(scoreboard_html()))


def _forest_rows(directory: Path | None, tier: str, kinds) -> list[tuple[str, dict]]:
    rows = []
    for chapter, (page, title, _) in CHAPTERS.items():
        if chapter == "ssl_toolkit":
            continue
        rows.extend((title.split(": ")[0], c) for c in claims(chapter, tier, directory) if c["kind"] in kinds)
    return rows


def forest_alt(directory: Path | None = None, tier: str = "study", kinds=("premise", "paper")) -> str:
    """The forest plot's alt text, from the same records as the figure."""
    rows = _forest_rows(directory, tier, kinds)
    counts = {}
    for _, c in rows:
        counts[c["verdict"]] = counts.get(c["verdict"], 0) + 1
    papers = len({p for p, _ in rows})
    told = ", ".join(f"{n} {v}" for v, n in sorted(counts.items(), key=lambda kv: VERDICTS.index(kv[0])))
    return (f"Forest plot of {len(rows)} {tier} claims from {papers} papers, one horizontal bar per claim: "
            f"{told or 'none recorded'}.")


def forest_plot(directory: Path | None = None, tier: str = "study", kinds=("premise", "paper")):
    """One figure for every paper: each claim's estimate and 95% interval against its line (0, or
    the non-inferiority margin), grouped by paper, coloured by verdict. Claims of ``direction="less"``
    are mirrored so that right is always the paper's side."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    rows = _forest_rows(directory, tier, kinds)
    # one header row per paper (its name as a bold tick label), then its claims
    layout, previous = [], None
    for paper, c in rows:
        if paper != previous:
            layout.append((paper, None))
            previous = paper
        layout.append((paper, c))
    height = 1.4 + 0.2 * max(len(layout), 1)  # rows of 10-pt labels
    # no layout engine: the page crops to the drawn text (bbox_inches="tight"), labels included
    fig, ax = plt.subplots(figsize=(7.2, height))
    fig.subplots_adjust(left=0.36, right=0.98, top=1 - 0.9 / height, bottom=0.5 / height)
    labels = []
    for y, (paper, c) in enumerate(layout):
        if c is None:
            labels.append(paper)
            ax.axhline(y, color="#eee", lw=6, zorder=0)
            continue
        sign = -1.0 if c["direction"] == "less" else 1.0
        est, (low, high) = sign * c["estimate"], sorted((sign * c["ci95"][0], sign * c["ci95"][1]))
        colour = VERDICT_COLOURS[c["verdict"]]
        withheld = c["verdict"] == "inconclusive" and c.get("interval_verdict") in ("holds", "does not hold")
        ax.plot([low, high], [y, y], color=colour, lw=2, ls=(0, (2, 1)) if withheld else "-")
        ax.plot([est], [y], "o", color=colour, ms=4, mfc="white" if withheld else colour)
        line = c["threshold"] if c["threshold"] is not None else -c["margin"]
        if line:
            ax.plot([sign * line], [y], "|", color="k", ms=7)
        labels.append(c["id"].replace("_", " "))
    ax.axvline(0, color="k", lw=0.8)
    ax.set_yticks(range(len(layout)), labels, fontsize=9.5)
    for tick, (_, c) in zip(ax.get_yticklabels(), layout):
        if c is None:
            tick.set_fontweight("bold")
    ax.set_ylim(len(layout) - 0.5, -0.5)
    # short enough to stay inside the figure under every matplotlib from the declared lower bound on
    ax.set_xlabel("difference in points (right: the paper's side; |: margin)", fontsize=9.5)
    handles = [Line2D([], [], color=col, lw=2, label=v) for v, col in VERDICT_COLOURS.items()]
    handles.append(Line2D([], [], color=VERDICT_COLOURS["inconclusive"], lw=2, ls=(0, (2, 1)), marker="o", ms=4,
                          mfc="white", label="withheld by Holm"))
    fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(0.01, 0.995), ncols=3, fontsize=9.5, frameon=False)
    return fig


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
            if k not in a:  # a is the new run, b the committed file
                out.append(f"{where}.{k}: only in the committed file")
            elif k not in b:
                out.append(f"{where}.{k}: only in the new run")
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


def _committed_records(root: Path, folder: Path, ref: str) -> list[str]:
    """Names of the ``*.json`` records committed at ``ref`` in ``folder`` (relative to the repository)."""
    rel = folder.resolve().relative_to(root.resolve()).as_posix()
    listed = subprocess.run(["git", "ls-tree", "--name-only", f"{ref}:{rel}"], cwd=root, capture_output=True, text=True)
    if listed.returncode != 0:
        return []
    return sorted(n for n in listed.stdout.split() if n.endswith(".json"))


def check_drift(ref: str = "HEAD", directory: Path | None = None, tier: str = "quick") -> list[str]:
    """Every problem of the records in ``results/`` against git ``ref``: a committed record missing
    from the working tree, a record that does not verify itself (:func:`verify`), a record not
    committed, and every number of ``tier`` that differs from its committed version. An empty folder,
    a missing one, or one outside a git checkout is a problem too: a check with nothing to check fails."""
    folder = directory or results_dir()
    if not folder.is_dir():
        return [f"{folder}: no results folder (set COMPANION_RESULTS, or run from the project's checkout)"]
    root = find_project_root(folder)
    if root is None or not (root / ".git").exists():
        return [f"{folder}: not inside a git checkout of the project, so there is nothing committed to "
                "compare with; run `python -m companion.results check` from the project's folder"]
    problems = []
    try:
        rel_folder = folder.resolve().relative_to(root.resolve())
    except ValueError:
        return [f"{folder}: is outside the project at {root}"]
    committed = _committed_records(root, folder, ref)
    present = sorted(p.name for p in folder.glob("*.json"))
    if not committed and not present:
        return [f"{rel_folder}: holds no records, and none are committed at {ref}: nothing to check"]
    problems.extend(f"{rel_folder / name}: committed at {ref} but missing from the working tree"
                    for name in committed if name not in present)
    for name in present:
        path = folder / name
        rel = rel_folder / name
        problems.extend(verify(path.stem, folder))
        if name not in committed:
            problems.append(f"{rel}: not committed at {ref}")
            continue
        shown = subprocess.run(["git", "show", f"{ref}:{rel.as_posix()}"], cwd=root, capture_output=True, text=True)
        try:
            old = json.loads(shown.stdout)
            new = _load(path)
        except (json.JSONDecodeError, ValueError) as err:
            problems.append(f"{rel}: {err}")
            continue
        problems.extend(f"{rel}: {d}" for d in drift(new, old, tier))
    return problems


def main(argv=None) -> int:
    """``python -m companion.results check``: fail when a record does not verify itself or the quick
    results just produced differ from git; ``scoreboard``: print the scoreboard; ``status``: study freshness."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m companion.results", description=main.__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="verify results/*.json and compare them with their committed version")
    check.add_argument("--ref", default="HEAD")
    check.add_argument("--tier", default="quick", choices=TIERS)
    sub.add_parser("scoreboard", help="print the reproduction scoreboard (Markdown)")
    sub.add_parser("status", help="is each chapter's study record fresh?")
    args = parser.parse_args(argv)
    try:
        if args.command == "check":
            problems = check_drift(args.ref, tier=args.tier)
            if problems:
                print(f"results/ fails its check ({len(problems)} problems): re-run the book build (`make book`) "
                      "and commit results/, restore what is missing, or find why the run is not repeatable:")
                print("\n".join("  " + p for p in problems[:200]))
                return 1
            print(f"results/: every record verifies against its samples, and the {args.tier} records equal "
                  "the committed ones")
            return 0
        if args.command == "scoreboard":
            print(scoreboard())
            return 0
        bad = 0
        folder = results_dir()
        present = sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []
        for chapter in dict.fromkeys([*CHAPTERS, *present]):
            problems = verify(chapter)
            bad += bool(problems)
            print(f"{chapter:12s} {study_status(chapter)}" + (f"  INVALID: {problems[0]}" if problems else ""))
        return 1 if bad else 0
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
