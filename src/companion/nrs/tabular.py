"""Tabular benchmark: data sets, the four models and repeated stratified splits.

Quick mode uses the classification data sets that ship with scikit-learn (iris, wine,
breast_cancer, digits) and two synthetic ones built to be hard for random subspaces (redundant,
noisy). Full mode fetches the paper's LIBSVM/UCI data sets from OpenML (letter,
satimage, usps, mnist, gisette); without a network the error says what to fetch.

Book section: *NRS* "Quick run".
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

import numpy as np
from sklearn import datasets as skdatasets
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.tree import DecisionTreeClassifier
from sklearn.model_selection import StratifiedShuffleSplit
from threadpoolctl import threadpool_limits

from .estimator import MLPBaselineClassifier, NRSClassifier

BUNDLED = {
    "iris": skdatasets.load_iris,
    "wine": skdatasets.load_wine,
    "breast_cancer": skdatasets.load_breast_cancer,
    "digits": skdatasets.load_digits,
}

#: Synthetic data sets built to be hard for NRS: ``make_classification`` with redundant features
#: (linear combinations of the informative ones) and with many pure-noise features. A random
#: subspace of 9 features then often holds no informative feature at all, while a tree's split
#: search simply skips the useless ones. name -> ``make_classification`` keyword arguments.
SYNTHETIC = {
    "redundant": dict(n_samples=600, n_features=10, n_informative=5, n_redundant=5, random_state=0),
    "noisy": dict(n_samples=600, n_features=50, n_informative=4, n_redundant=0, random_state=0),
}

#: OpenML ids of the paper's data sets (the LIBSVM/UCI originals), and the rows of the official
#: test split where OpenML keeps the original order (MNIST: the last 10,000).
OPENML = {
    "letter": {"data_id": 6, "name": "letter"},
    "satimage": {"data_id": 182, "name": "satimage"},
    "usps": {"data_id": 41070, "name": "usps"},
    "mnist": {"data_id": 554, "name": "mnist_784", "test_last": 10000},
    "gisette": {"data_id": 41026, "name": "gisette"},
}

MODELS = ("nrs", "mlp", "rf", "hgb", "tree")


class OpenMLUnavailableError(RuntimeError):
    """An OpenML data set is neither cached nor downloadable."""


@dataclass
class Table:
    """A data set as arrays, with an optional fixed test split (``test_index``)."""

    name: str
    X: np.ndarray  # (n, d) float
    y: np.ndarray  # (n,) labels
    test_index: np.ndarray | None = None


def openml_parser() -> str:
    """The ``fetch_openml`` parser that reads this environment's OpenML files: ``"auto"`` (pandas, fast)
    where ``pandas.read_csv`` keeps a categorical column's categories as strings (pandas 2), else
    ``"liac-arff"``. Under pandas 3 numeric-looking categories come back as integers, scikit-learn's
    pandas ARFF parser (1.9 and before) fails on them while stripping quotes, and its retry deletes
    the cached download."""
    import io

    import pandas as pd

    probe = pd.read_csv(io.StringIO("1\n2\n"), header=None, dtype={0: "category"})[0]
    return "auto" if all(isinstance(c, str) for c in probe.cat.categories) else "liac-arff"


def target_labels(target) -> np.ndarray:
    """Class labels as a NumPy array of strings, the same whether OpenML's target came back as strings,
    as a categorical with string or integer categories (pandas 2 vs 3), or as numbers."""
    values = target.astype(str) if hasattr(target, "cat") else target  # categorical Series: its values, not codes
    out = np.asarray(values)
    if out.dtype.kind == "f" and np.all(out == np.round(out)):
        out = out.astype(np.int64)  # 3.0 and "3" name the same class
    return out.astype(str)


def load_table(name: str, data_home: str | None = None) -> Table:
    """A bundled scikit-learn data set, a :data:`SYNTHETIC` one, or one of the paper's data sets
    through ``fetch_openml``.

    Raises ``ValueError`` for an unknown name and :class:`OpenMLUnavailableError` (saying what to
    fetch) when an OpenML data set is not cached and cannot be downloaded.

    Book section: *NRS* "Quick run" and "Full run".
    """
    if name in BUNDLED:
        X, y = BUNDLED[name](return_X_y=True)
        return Table(name, X.astype(np.float64), y)
    if name in SYNTHETIC:
        X, y = skdatasets.make_classification(**SYNTHETIC[name])
        return Table(name, X.astype(np.float64), y)
    if name not in OPENML:
        raise ValueError(f"unknown data set {name!r}; bundled: {sorted(BUNDLED)}, synthetic: {sorted(SYNTHETIC)}, "
                         f"OpenML: {sorted(OPENML)}")
    spec = OPENML[name]
    from sklearn.datasets import fetch_openml

    try:
        bunch = fetch_openml(data_id=spec["data_id"], as_frame=False, parser=openml_parser(), data_home=data_home)
    except Exception as e:  # no network, HTTP error, broken cache: one clear message
        raise OpenMLUnavailableError(
            f"could not load {name!r} (OpenML data set {spec['data_id']}, {spec['name']!r}): {type(e).__name__}: {e}.\n"
            f"Full mode downloads it with sklearn.datasets.fetch_openml(data_id={spec['data_id']}) into "
            f"{data_home or '~/scikit_learn_data'}; run that once with a network connection (or copy the "
            "scikit_learn_data/openml cache folder from a machine that has it). Quick mode needs no download."
        ) from e
    X = np.asarray(bunch.data, dtype=np.float64)
    y = target_labels(bunch.target)
    test_index = None
    if "test_last" in spec:
        test_index = np.arange(len(y) - spec["test_last"], len(y))
    return Table(name, X, y, test_index)


def make_model(kind: str, params: dict | None = None, random_state: int = 0):
    """One of the compared models: ``nrs``, ``mlp``, ``rf`` (random forest), ``hgb`` (GBDT), or ``tree``
    (one decision tree: the known weaker learner of the real-table benchmark's positive control).

    Book section: *NRS* "Quick run".
    """
    params = dict(params or {})
    if kind == "nrs":
        return NRSClassifier(random_state=random_state, **params)
    if kind == "mlp":
        return MLPBaselineClassifier(random_state=random_state, **params)
    if kind == "rf":
        return RandomForestClassifier(random_state=random_state, **params)
    if kind == "hgb":
        return HistGradientBoostingClassifier(random_state=random_state, **params)
    if kind == "tree":
        return DecisionTreeClassifier(random_state=random_state, **params)
    raise ValueError(f"model kind must be one of {MODELS}, got {kind!r}")


def splits(table: Table, rounds: int, test_size: float, seed: int):
    """``rounds`` stratified train/test splits, or the data set's fixed split repeated (new seeds only)."""
    if not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"rounds must be a positive integer, got {rounds!r}")
    if table.test_index is not None:
        test = np.zeros(len(table.y), dtype=bool)
        test[table.test_index] = True
        return [(np.flatnonzero(~test), np.flatnonzero(test))] * rounds
    sss = StratifiedShuffleSplit(n_splits=rounds, test_size=test_size, random_state=seed)
    return list(sss.split(table.X, table.y))


@contextlib.contextmanager
def _timer(kind: str, out: dict):
    """CPU seconds (``process_time``) or wall seconds, written to ``out["s"]``."""
    clock = time.process_time if kind == "cpu" else time.perf_counter
    start = clock()
    yield
    out["s"] = clock() - start


def compare(table: Table, model_params: dict[str, dict], rounds: int = 5, test_size: float = 0.3, seed: int = 0,
            threads: int | None = 1, timer: str = "cpu", progress=None) -> dict:
    """Accuracy (%) mean and std, and mean fit and predict seconds, of each model over the splits.

    Every model sees the same splits; round ``r`` seeds every model with ``seed + r``. With
    ``threads=1`` all models run on one CPU thread and ``timer="cpu"`` counts CPU seconds, so fit
    times compare like with like on a busy machine.

    Book section: *NRS* "Quick run".
    """
    if timer not in ("cpu", "wall"):
        raise ValueError(f"timer must be 'cpu' or 'wall', got {timer!r}")
    unknown = set(model_params) - set(MODELS)
    if unknown:
        raise ValueError(f"unknown model kinds {sorted(unknown)}; choose from {MODELS}")
    accs = {k: [] for k in model_params}
    fit_s = {k: [] for k in model_params}
    pred_s = {k: [] for k in model_params}
    limit = threadpool_limits(threads) if threads is not None else contextlib.nullcontext()
    with limit:
        for r, (tr, te) in enumerate(splits(table, rounds, test_size, seed)):
            for kind, params in model_params.items():
                model = make_model(kind, params, random_state=seed + r)
                if kind in ("nrs", "mlp") and threads is not None:
                    model.set_params(n_threads=threads)
                t_fit, t_pred = {}, {}
                with _timer(timer, t_fit):
                    model.fit(table.X[tr], table.y[tr])
                with _timer(timer, t_pred):
                    pred = model.predict(table.X[te])
                accs[kind].append(100.0 * float(np.mean(pred == table.y[te])))
                fit_s[kind].append(t_fit["s"])
                pred_s[kind].append(t_pred["s"])
                if progress is not None:
                    progress(table.name, r, kind, accs[kind][-1])
    return {
        kind: {
            "acc_mean": float(np.mean(accs[kind])), "acc_std": float(np.std(accs[kind])),
            "fit_s": float(np.mean(fit_s[kind])), "predict_s": float(np.mean(pred_s[kind])),
            "accs": accs[kind],
        }
        for kind in model_params
    }


def summarize(per_dataset: dict[str, dict]) -> dict:
    """Mean accuracy of each model over the data sets, and how many data sets NRS wins against each.

    A "win" is a higher mean accuracy; a tie (equal means) counts for neither.
    """
    kinds = sorted({k for res in per_dataset.values() for k in res}, key=MODELS.index)
    out = {f"{k}_mean_acc": float(np.mean([res[k]["acc_mean"] for res in per_dataset.values()])) for k in kinds}
    if "nrs" in kinds:
        for k in kinds:
            if k == "nrs":
                continue
            out[f"nrs_wins_vs_{k}"] = sum(res["nrs"]["acc_mean"] > res[k]["acc_mean"] for res in per_dataset.values())
            out[f"nrs_losses_vs_{k}"] = sum(res["nrs"]["acc_mean"] < res[k]["acc_mean"] for res in per_dataset.values())
    out["n_datasets"] = len(per_dataset)
    return out



def fit_time_ratios(per_dataset: dict[str, dict]) -> dict[str, dict]:
    """Per data set, each model's mean fit time divided by NRS's (above 1: slower than NRS).

    Times vary between runs, so these belong in a record's ``timings``, not its metrics.

    Book section: *NRS* "Quick run".
    """
    out = {}
    for name, res in per_dataset.items():
        if "nrs" not in res or not res["nrs"]["fit_s"] > 0:
            continue
        out[name] = {f"{k}_over_nrs": res[k]["fit_s"] / res["nrs"]["fit_s"] for k in res if k != "nrs"}
    return out


def split_times(per_dataset: dict[str, dict]) -> tuple[dict, dict]:
    """``(accuracy part, time part)`` of :func:`compare`'s results: the times (which vary between
    identical runs) moved out, so the accuracies can be compared bit for bit.
    """
    accs, times = {}, {}
    for name, res in per_dataset.items():
        accs[name] = {k: {f: v for f, v in r.items() if not f.endswith("_s")} for k, r in res.items()}
        times[name] = {k: {f: v for f, v in r.items() if f.endswith("_s")} for k, r in res.items()}
    return accs, times


LABELS = {"nrs": "NRS", "mlp": "MLP", "rf": "random forest", "hgb": "gradient boosting"}


def markdown_table(per_dataset: dict[str, dict], times: dict[str, dict] | None = None) -> str:
    """Accuracy (mean ± std over the splits, best mean in bold) and, given ``times`` (the
    ``fit_s`` of each model per data set), fit time relative to NRS, as Markdown.

    Book section: *NRS* "Quick run".
    """
    kinds = [k for k in MODELS if any(k in res for res in per_dataset.values())]
    others = [k for k in kinds if k != "nrs"] if times else []
    head = "| data set | " + " | ".join(f"{LABELS[k]} acc. (%)" for k in kinds) + " |" + \
        "".join(f" {LABELS[k]} fit time / NRS's |" for k in others)
    lines = [head, "|---" * (1 + len(kinds) + len(others)) + "|"]
    for name, res in per_dataset.items():
        best = max(res[k]["acc_mean"] for k in kinds)
        accs = []
        for k in kinds:
            cell = f"{res[k]['acc_mean']:.1f} ± {res[k]['acc_std']:.1f}"
            accs.append(f"**{cell}**" if res[k]["acc_mean"] == best else cell)
        ratios = [f"{times[name][k]['fit_s'] / times[name]['nrs']['fit_s']:.2f}" for k in others]
        lines.append(f"| {name} | " + " | ".join(accs) + " |" + "".join(f" {r} |" for r in ratios))
    return "\n".join(lines)


def comparison_alt(per_dataset: dict[str, dict]) -> str:
    """Alt text of :func:`plot_comparison`, written from the same numbers the bars show."""
    kinds = [k for k in MODELS if any(k in res for res in per_dataset.values())]
    parts = []
    for name, res in per_dataset.items():
        shown = {k: round(res[k]["acc_mean"], 1) for k in kinds if k in res}
        best = " and ".join(LABELS[k] for k, v in shown.items() if v == max(shown.values()))
        cells = ", ".join(f"{LABELS[k]} {v:.1f}" for k, v in shown.items())
        parts.append(f"{name}: {cells} (highest: {best})")
    return (f"Grouped bars of mean test accuracy (%) per data set for {len(kinds)} models, with the spread over "
            "the splits. " + "; ".join(parts) + ".")


def plot_comparison(per_dataset: dict[str, dict]):
    """Grouped bars: accuracy of each model per data set, with the spread over the splits.

    Book section: *NRS* "Quick run".
    """
    import matplotlib.pyplot as plt

    from ..viz import PALETTE

    colors = {"nrs": PALETTE["method"], "mlp": PALETTE["baseline"], "rf": PALETTE["truth"], "hgb": PALETTE["pseudo"]}
    kinds = [k for k in MODELS if any(k in res for res in per_dataset.values())]
    names = list(per_dataset)
    fig, ax = plt.subplots(figsize=(6.4, 2.6))
    width = 0.8 / len(kinds)
    for j, k in enumerate(kinds):
        means = [per_dataset[n][k]["acc_mean"] for n in names]
        stds = [per_dataset[n][k]["acc_std"] for n in names]
        ax.bar(np.arange(len(names)) + (j - (len(kinds) - 1) / 2) * width, means, width, yerr=stds, capsize=2,
               color=colors[k], label=LABELS[k])
    low = min(per_dataset[n][k]["acc_mean"] - per_dataset[n][k]["acc_std"] for n in names for k in kinds)
    ax.set_ylim(max(0.0, np.floor(low) - 2), 100.5)
    ax.set_xticks(np.arange(len(names)), names)
    ax.set_ylabel("test accuracy (%)")
    ax.legend(ncol=len(kinds), fontsize=8, loc="lower center", frameon=False, bbox_to_anchor=(0.5, 1.0))
    fig.tight_layout()
    return fig
