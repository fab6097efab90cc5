r"""How good a compression is, without an LLM: word-level F1, achieved rate, answer retention.

For kept words $K$ and reference keep-labels $R$ (the words the reference compression keeps):

$$P = \frac{|K \cap R|}{|K|}, \quad R_{\text{ec}} = \frac{|K \cap R|}{|R|}, \quad
F_1 = \frac{2 P R_{\text{ec}}}{P + R_{\text{ec}}}.$$

*Answer retention* asks whether the answer's words survive as a contiguous run in the compressed
word sequence: a proxy for "could an LLM still answer from this prompt".

Book section: *EFPC* "Quick run".
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .words import core, split_words


def keep_prf(kept: Sequence[bool], reference: Sequence[int | bool]) -> tuple[float, float, float]:
    """``(precision, recall, F1)`` of kept words against reference labels (both ``(n,)``).

    Empty sets: when both are empty all three are 1; otherwise keeping nothing gives precision 0,
    and an empty reference gives recall 1 (and F1 0, since every kept word is wrong).
    """
    k = np.asarray(kept, dtype=bool)
    r = np.asarray(reference).astype(bool)
    if k.shape != r.shape or k.ndim != 1:
        raise ValueError(f"kept and reference must be 1-D and the same length, got {k.shape} and {r.shape}")
    tp = int((k & r).sum())
    if not k.any() and not r.any():
        return 1.0, 1.0, 1.0
    precision = tp / k.sum() if k.any() else 0.0
    recall = tp / r.sum() if r.any() else 1.0
    f1 = 2 * tp / (k.sum() + r.sum())
    return float(precision), float(recall), float(f1)


def answer_retained(kept_words: Sequence[str], answer: str) -> bool:
    """True when the answer's words appear, in order and adjacent, among the kept words.

    Words are compared by :func:`~companion.compress.words.core` (case and surrounding
    punctuation ignored: ``"Finch."`` matches the answer ``"Finch"``).
    """
    if not isinstance(answer, str):
        raise TypeError(f"answer must be a str, got {type(answer).__name__}")
    target = [core(w) for w in split_words(answer)]
    if not target:
        raise ValueError("answer is empty")
    words = [core(w) for w in kept_words]
    m = len(target)
    return any(words[i : i + m] == target for i in range(len(words) - m + 1))


def achieved_rate(kept: Sequence[bool], costs: Sequence[int] | None = None) -> float:
    """Kept share of the prompt's cost (of its words when ``costs`` is None)."""
    k = np.asarray(kept, dtype=bool)
    c = np.ones(len(k)) if costs is None else np.asarray(costs, dtype=np.float64)
    return float(c[k].sum() / max(c.sum(), 1e-12))


def answer_recall(kept_words: Sequence[str], answer: str) -> float:
    """Share of the answer's words (by :func:`~companion.compress.words.core`, with repeats) that are
    among the kept words: partial credit where :func:`answer_retained` is all or nothing."""
    if not isinstance(answer, str):
        raise TypeError(f"answer must be a str, got {type(answer).__name__}")
    target = [core(w) for w in split_words(answer)]
    if not target:
        raise ValueError("answer is empty")
    pool: dict[str, int] = {}
    for w in kept_words:
        pool[core(w)] = pool.get(core(w), 0) + 1
    hit = 0
    for w in target:
        if pool.get(w, 0) > 0:
            pool[w] -= 1
            hit += 1
    return hit / len(target)
