r"""Labels from (original, compressed) pairs: LLMLingua-2's word alignment and its quality filters.

GPT-4 was asked to compress by *deleting* words only, so every word of the compressed text should
be found, in order, in the original. Aligning the two marks each original word keep (1) or
discard (0); those marks are the token classifier's training labels. GPT-4 does not always obey
(it paraphrases, reorders, repeats), so two statistics flag bad pairs:

$$\text{variation rate} = 1 - \frac{|\{w \in c : w \in o\}|}{|c|}, \qquad
\text{alignment gap} = \underbrace{\frac{|\{w \in c : w \in o\}|}{|o|}}_{\text{hitting rate}}
 - \underbrace{\frac{\sum_i y_i}{|o|}}_{\text{matching rate}}$$

for original words $o$, compressed words $c$ and labels $y$. Pairs in the top decile of either are
dropped before training.

Book section: *EFPC* "Where the labels come from".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .words import core


@dataclass(frozen=True)
class Alignment:
    """Keep/discard labels for the original words, and the pair's quality statistics."""

    labels: list[int]  # (n_original,) 1 = keep
    compression_rate: float  # |c| / |o|
    find_rate: float  # share of compressed words found anywhere in the original
    hitting_rate: float  # words found / |o|
    matching_rate: float  # labels marked keep / |o|

    @property
    def variation_rate(self) -> float:
        """Share of compressed words that are not in the original (paraphrases, new words)."""
        return 1.0 - self.find_rate

    @property
    def alignment_gap(self) -> float:
        """Found somewhere but not aligned in order: large when GPT-4 reordered or repeated words."""
        return self.hitting_rate - self.matching_rate


def align_words(original: Sequence[str], compressed: Sequence[str], window: int = 150) -> Alignment:
    """Mark each original word keep (1) or discard (0) by finding the compressed words in order.

    For each compressed word, look around a pointer into the original: at offset ``i = 0, 1, ...,
    window - 1`` try ``pointer + i`` then ``pointer - i``; the first unused original word that is
    equal (by :func:`~companion.compress.words.core`: case and surrounding punctuation ignored)
    is marked keep. The pointer moves to the match, but forward by at most
    half a window, so a stray common word ("the") far ahead cannot drag it away. This is LLMLingua-2's
    labelling rule (``window=400`` in its data scripts); this book matches raw words, not lemmas.

    Book section: *EFPC* "Where the labels come from".
    """
    for name, seq in (("original", original), ("compressed", compressed)):
        if isinstance(seq, str) or not all(isinstance(w, str) for w in seq):
            raise TypeError(f"{name} must be a sequence of word strings (use split_words), got {type(seq).__name__}")
    if not isinstance(window, int) or window < 1:
        raise ValueError(f"window must be a positive integer, got {window!r}")
    orig = [core(w) for w in original]
    comp = [core(w) for w in compressed]
    n, m = len(orig), len(comp)
    labels = [0] * n
    used = [False] * n
    pointer = 0
    for word in comp:
        for i in range(window):
            hit = None
            for j in (pointer + i, pointer - i) if i else (pointer,):
                if 0 <= j < n and not used[j] and orig[j] == word:
                    hit = j
                    break
            if hit is not None:
                used[hit] = True
                labels[hit] = 1
                pointer = hit if hit <= pointer else min(hit, pointer + window // 2)
                break
    vocabulary = set(orig)
    found = sum(w in vocabulary for w in comp)
    return Alignment(
        labels=labels,
        compression_rate=m / n if n else 0.0,
        find_rate=found / m if m else 1.0,
        hitting_rate=found / n if n else 0.0,
        matching_rate=sum(labels) / n if n else 0.0,
    )


def quality_filter(alignments: Sequence[Alignment], quantile: float = 90.0) -> np.ndarray:
    """Indices of the pairs kept by LLMLingua-2's two-pass filter.

    Pass 1 drops pairs whose variation rate is above the ``quantile``-th percentile; pass 2 drops,
    among the rest, those whose alignment gap is above the percentile of the remaining gaps. "Above"
    is strict (this book's choice), so when most pairs are perfect (a rate of 0) none is dropped for
    sharing that value.

    Book section: *EFPC* "Where the labels come from".
    """
    if not 0 < quantile <= 100:
        raise ValueError(f"quantile must be in (0, 100], got {quantile}")
    if len(alignments) == 0:
        return np.zeros(0, dtype=np.int64)
    variation = np.array([a.variation_rate for a in alignments])
    keep = np.flatnonzero(variation <= np.percentile(variation, quantile))
    gap = np.array([alignments[i].alignment_gap for i in keep])
    return keep[gap <= np.percentile(gap, quantile)]
