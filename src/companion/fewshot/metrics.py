r"""Scores over episodes: the mean the literature reports and the worst cases a user meets.

With episode accuracies :math:`a_1, \dots, a_n` (in percent) sorted so that
:math:`a_{(1)} \le a_{(2)} \le \dots \le a_{(n)}`:

.. math::

    \text{mean} = \frac1n \sum_i a_i, \qquad
    \text{std} = \sqrt{\frac1n \sum_i (a_i - \text{mean})^2}, \qquad
    \text{CI}_{95} = 1.96\,\frac{\text{std}}{\sqrt n},

    \text{acc}_k = \frac1k \sum_{j=1}^{k} a_{(j)} \quad (k = 1, 10, 100).

``std`` is the population standard deviation (NumPy's default, as in the paper's code); ``CI95`` is
the half-width of the usual normal-approximation interval **of the mean**, not of one episode.
:math:`\text{acc}_1` is the single worst episode; :math:`\text{acc}_k` is defined only when there
are at least :math:`k` episodes (with exactly :math:`k` it equals the mean).

Book section: *Worst case* "Mean, spread and the worst episodes".
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..tensors import as_tensor


def _as_accuracies(accuracies) -> np.ndarray:
    a = np.asarray(accuracies.detach().cpu() if isinstance(accuracies, torch.Tensor) else accuracies, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"episode accuracies must be 1-D, got shape {a.shape}")
    if a.size == 0:
        raise ValueError("no episode accuracies given")
    if not np.all(np.isfinite(a)):
        raise ValueError("episode accuracies contain NaN or infinity")
    if a.min() < 0 or a.max() > 100:
        raise ValueError(f"episode accuracies must be percentages in [0, 100], got range [{a.min()}, {a.max()}]")
    return a


def episode_accuracy(probabilities: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-episode accuracy in percent: ``(E, Q, N)`` scores and ``(E, Q)`` labels -> ``(E,)``.

    Book section: *Worst case* "Mean, spread and the worst episodes".
    """
    # a NaN score would make argmax pick an arbitrary way: refused (as_tensor names "scores")
    probabilities = as_tensor(probabilities, "scores", dtype=None, ndim=3, shape_hint="(episodes, queries, ways)",
                              nonempty=False)
    labels = as_tensor(labels, "labels", dtype=None, nonempty=False)
    if labels.shape != probabilities.shape[:2]:
        raise ValueError(f"labels {tuple(labels.shape)} do not match scores {tuple(probabilities.shape)}")
    if probabilities.shape[1] < 1:
        raise ValueError("scores have no queries: an episode's accuracy needs at least one query")
    n_way = probabilities.shape[2]
    if labels.numel() and (labels.min() < 0 or labels.max() >= n_way):
        raise ValueError(f"labels must be in [0, {n_way}) for {n_way}-way scores, got "
                         f"[{int(labels.min())}, {int(labels.max())}]")
    return (probabilities.argmax(-1) == labels.to(probabilities.device)).double().mean(1).mul(100).cpu()


def worst_k_mean(accuracies, k: int) -> float:
    r""":math:`\text{acc}_k`: the mean of the ``k`` lowest episode accuracies.

    Book section: *Worst case* "Mean, spread and the worst episodes".
    """
    a = _as_accuracies(accuracies)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if k > a.size:
        raise ValueError(f"acc{k} needs at least {k} episodes, got {a.size}")
    return float(np.sort(a)[:k].mean())


def summarize(accuracies, worst: Sequence[int] = (1, 10, 100)) -> dict:
    """``{"n", "mean", "std", "ci95", "acc1", "acc10", "acc100"}`` of episode accuracies in percent.

    ``acc<k>`` is ``None`` when there are fewer than ``k`` episodes.

    Book section: *Worst case* "Mean, spread and the worst episodes".
    """
    a = _as_accuracies(accuracies)
    out = {"n": int(a.size), "mean": float(a.mean()), "std": float(a.std())}
    out["ci95"] = 1.96 * out["std"] / float(np.sqrt(a.size))
    for k in worst:
        out[f"acc{k}"] = worst_k_mean(a, k) if k <= a.size else None
    return out


def running_worst(accuracies, k: int = 1, start: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """How the estimate of :math:`\\text{acc}_k` moves as episodes are added in order.

    Returns ``(n, acc_k over the first n episodes)`` for ``n = max(k, start) .. len``. The worst
    case can only go down as more episodes are seen, while the mean settles: the estimated worst
    case depends on how many episodes were run.

    Book section: *Worst case* "How many episodes does the worst case need?".
    """
    a = _as_accuracies(accuracies)
    first = max(k, start or k)
    if first > a.size:
        raise ValueError(f"acc{k} needs at least {first} episodes, got {a.size}")
    ns = np.arange(first, a.size + 1)
    return ns, np.array([np.sort(a[:n])[:k].mean() for n in ns])
