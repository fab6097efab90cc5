"""Baselines a sceptical reader would ask for: drop words at random, or keep the first words.

Both return per-word scores, so they go through the same selection as the trained compressor
(:func:`~companion.compress.inference.compress_with_scores`) and hit the same rate.

Book section: *EFPC* "Quick run".
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def random_scores(words: Sequence[str], seed: int = 0) -> np.ndarray:
    """``(n,)`` uniform random scores: keeping the top ones is dropping words at random."""
    return np.random.default_rng(seed).random(len(words))


def first_words_scores(words: Sequence[str]) -> np.ndarray:
    """``(n,)`` scores falling with position: keeping the top ones keeps the prompt's beginning."""
    n = len(words)
    return np.linspace(1.0, 0.0, n) if n > 1 else np.ones(n)
