"""Decision boundaries of NRS, a random forest and gradient boosting on 2-D toy data.

On two features a subspace can hold at most two distinct features, so the figure uses 1x1
subspaces (``k = 1``): each NRS channel is then a soft threshold on one feature,
$\\mathrm{ReLU}(\\mathrm{BN}(w_c x_{j_c} + b_c))$, the differentiable cousin of a tree's axis-aligned
split. "Subspaces" is the number of such channels ($C = 2\\,n_{mul}$) and the number of trees of
the forest and of boosting rounds; "depth" is a tree's maximum depth, and for NRS the number of
non-linear layers (the NRS layer plus ``depth - 1`` hidden layers of the aggregating MLP).

Book section: *NRS* "Decision boundaries you can explore".
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from sklearn.datasets import make_circles, make_moons
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from threadpoolctl import threadpool_limits

from ..viz import PALETTE
from .estimator import NRSClassifier

TOY = ("moons", "circles")


def toy_data(name: str, n: int = 240, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``make_moons`` or ``make_circles`` with some label noise: ``X (n, 2)``, ``y (n,)``."""
    if name == "moons":
        return make_moons(n, noise=0.25, random_state=seed)
    if name == "circles":
        return make_circles(n, noise=0.12, factor=0.5, random_state=seed)
    raise ValueError(f"toy data set must be one of {TOY}, got {name!r}")


def toy_models(subspaces: int, depth: int, seed: int = 0, epochs: int = 30) -> dict:
    """The three models of one figure frame, unfitted: NRS (k = 1), random forest, gradient boosting."""
    if not isinstance(subspaces, int) or subspaces < 2 or subspaces % 2:
        raise ValueError(f"subspaces must be an even integer >= 2 (2 features x n_mul), got {subspaces!r}")
    if not isinstance(depth, int) or depth < 1:
        raise ValueError(f"depth must be a positive integer, got {depth!r}")
    return {
        "NRS": NRSClassifier(n_mul=subspaces // 2, subspace_size=1, hidden_size=32, n_hidden=depth - 1,
                             max_epochs=epochs, batch_size=64, lr=1e-2, random_state=seed, device="cpu"),
        "random forest": RandomForestClassifier(n_estimators=subspaces, max_depth=depth, random_state=seed),
        "gradient boosting": HistGradientBoostingClassifier(max_iter=subspaces, max_depth=depth, learning_rate=0.3,
                                                            early_stopping=False, random_state=seed),
    }


@lru_cache(maxsize=64)
def _fitted(name: str, subspaces: int, depth: int, seed: int, grid: int):
    X, y = toy_data(name, seed=seed)
    X_test, y_test = toy_data(name, n=1000, seed=seed + 1)
    lo, hi = X.min(0) - 0.4, X.max(0) + 0.4
    xx, yy = np.meshgrid(np.linspace(lo[0], hi[0], grid), np.linspace(lo[1], hi[1], grid))
    points = np.c_[xx.ravel(), yy.ravel()]
    panels = {}
    with threadpool_limits(1):  # a few hundred points: threads only add overhead
        for label, model in toy_models(subspaces, depth, seed).items():
            model.fit(X, y)
            prob = model.predict_proba(points)[:, 1].reshape(xx.shape)
            panels[label] = (prob, 100.0 * model.score(X_test, y_test))
    return X, y, xx, yy, panels


def decision_boundaries(dataset: str = "moons", subspaces: int = 16, depth: int = 2, seed: int = 0, grid: int = 60):
    """A figure with the probability maps of NRS, a random forest and gradient boosting.

    Each panel shows p(class 1) on a grid, the training points, and the accuracy on 1,000 fresh
    points from the same distribution. Fitted models are cached, so moving back to a setting is
    instant.

    Book section: *NRS* "Decision boundaries you can explore".
    """
    import matplotlib.pyplot as plt

    X, y, xx, yy, panels = _fitted(dataset, int(subspaces), int(depth), int(seed), int(grid))
    fig, axes = plt.subplots(1, 3, figsize=(7.2, 2.5), sharex=True, sharey=True)
    for ax, (label, (prob, acc)) in zip(axes, panels.items()):
        ax.contourf(xx, yy, prob, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.6)
        ax.contour(xx, yy, prob, levels=[0.5], colors="k", linewidths=0.8)
        ax.scatter(X[:, 0], X[:, 1], c=np.where(y == 1, PALETTE["method"], PALETTE["pseudo"]), s=7,
                   edgecolors="black", linewidths=0.3)
        ax.set_title(f"{label}: {acc:.1f}% test", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"{dataset}: {subspaces} subspaces / trees, depth {depth}", fontsize=9)
    fig.tight_layout()
    return fig
