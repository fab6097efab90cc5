"""N-way K-shot episodes: a fixed, seeded list drawn from the novel classes, so every method is
scored on exactly the same episodes.

Book section: *Worst case* "One episode is what a user gets".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Episode:
    """One few-shot task.

    ``classes[c]`` is the dataset class that gets episode label ``c``. ``support`` and ``query``
    hold dataset indices in class-major order: the first ``k_shot`` support items are class 0,
    the next ``k_shot`` class 1, and so on (the same for the ``q_query`` queries).
    """

    classes: tuple[int, ...]
    support: np.ndarray  # (n_way * k_shot,) dataset indices
    query: np.ndarray  # (n_way * q_query,) dataset indices

    @property
    def n_way(self) -> int:
        return len(self.classes)

    @property
    def k_shot(self) -> int:
        return len(self.support) // self.n_way

    @property
    def q_query(self) -> int:
        return len(self.query) // self.n_way

    def support_labels(self) -> torch.Tensor:
        """``(n_way * k_shot,)`` episode labels 0..N-1, class-major."""
        return torch.arange(self.n_way).repeat_interleave(self.k_shot)

    def query_labels(self) -> torch.Tensor:
        """``(n_way * q_query,)`` episode labels 0..N-1, class-major."""
        return torch.arange(self.n_way).repeat_interleave(self.q_query)


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def split_classes(labels, base: Sequence[int], novel: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the base-class and novel-class items of ``labels``; the two class sets must not overlap.

    Book section: *Worst case* "Base and novel classes".
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {labels.shape}")
    overlap = set(base) & set(novel)
    if overlap:
        raise ValueError(f"base and novel classes overlap: {sorted(overlap)}")
    if not len(base) or not len(novel):
        raise ValueError("base and novel classes must both be non-empty")
    return np.flatnonzero(np.isin(labels, list(base))), np.flatnonzero(np.isin(labels, list(novel)))


def sample_episodes(
    labels,
    classes: Sequence[int],
    n_way: int,
    k_shot: int,
    q_query: int,
    n_episodes: int,
    seed: int = 0,
) -> list[Episode]:
    """``n_episodes`` seeded N-way K-shot Q-query episodes drawn only from ``classes``.

    Each episode picks ``n_way`` of ``classes`` at random, then ``k_shot + q_query`` distinct items
    of each, the first ``k_shot`` as support and the rest as queries, so support and query never
    share an item. The same arguments always give the same episodes (a NumPy generator seeded by
    ``seed``), which is how every method is scored on identical tasks, as the paper's fixed,
    pre-sampled episode files do.

    Book section: *Worst case* "One episode is what a user gets".
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"labels must be integers, got dtype {labels.dtype}")
    n_way, k_shot = _positive_int("n_way", n_way), _positive_int("k_shot", k_shot)
    q_query, n_episodes = _positive_int("q_query", q_query), _positive_int("n_episodes", n_episodes)
    classes = [int(c) for c in dict.fromkeys(classes)]
    if n_way > len(classes):
        raise ValueError(f"asked for {n_way} ways but only {len(classes)} classes are available: {classes}")
    pools = {c: np.flatnonzero(labels == c) for c in classes}
    need = k_shot + q_query
    short = {c: len(p) for c, p in pools.items() if len(p) < need}
    if short:
        raise ValueError(
            f"{k_shot} shots + {q_query} queries need {need} items per class, but these classes have fewer: {short}"
        )
    rng = np.random.default_rng(seed)
    episodes = []
    for _ in range(n_episodes):
        chosen = rng.choice(classes, size=n_way, replace=False)
        support, query = [], []
        for c in chosen:
            picked = rng.choice(pools[int(c)], size=need, replace=False)
            support.append(picked[:k_shot])
            query.append(picked[k_shot:])
        episodes.append(Episode(tuple(int(c) for c in chosen), np.concatenate(support), np.concatenate(query)))
    return episodes


def stack_episodes(episodes: Sequence[Episode]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Support indices ``(E, N*K)``, support labels ``(E, N*K)``, query indices ``(E, N*Q)``, query labels."""
    if not episodes:
        raise ValueError("no episodes to stack")
    shapes = {(e.n_way, e.k_shot, e.q_query) for e in episodes}
    if len(shapes) != 1:
        raise ValueError(f"episodes must share n_way, k_shot and q_query, got {sorted(shapes)}")
    s = torch.as_tensor(np.stack([e.support for e in episodes]), dtype=torch.long)
    q = torch.as_tensor(np.stack([e.query for e in episodes]), dtype=torch.long)
    sy = torch.stack([e.support_labels() for e in episodes])
    qy = torch.stack([e.query_labels() for e in episodes])
    return s, sy, q, qy
