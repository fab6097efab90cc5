"""Properties of prompt compression that must hold for any text: it only ever deletes words.

Varied text: prose, code, paths, URLs, version numbers, flags, numbers, speaker turns, Chinese.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from companion.compress import (
    Compression, compress_with_scores, drop_repeated_forced, join_kept, segment, select_words, split_words,
)

PIECES = [
    "docs/usage.md", "e.g.", "v1.2.3", "--unzip", "https://example.com/a?b=1&c=2", "3.50,", "1,200", "(old)",
    "Speaker A:", "Speaker B:", "It", "opened", "in", "1893.", "Dr.", "Smith's", "co-op", "?", "!", "x = f(a, b)",
    "def run():", "return 0", "中文分词很重要", "。", "東京は大きい", "naïve", "C++", "#42", "@user", "—", "\t",
]
SEPARATORS = [" ", "  ", "\n", "\n\n", " \n ", "\t", ""]


@st.composite
def texts(draw):
    parts = draw(st.lists(st.tuples(st.sampled_from(PIECES), st.sampled_from(SEPARATORS)), min_size=1, max_size=25))
    lead = draw(st.sampled_from(["", " ", "\n"]))
    return lead + "".join(p + s for p, s in parts)


def is_subsequence(small: str, big: str) -> bool:
    it = iter(big)
    return all(c in it for c in small)


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(texts(), st.sampled_from([[], ["?"], ["\n"], ["\n", "?", "."]]))
def test_words_are_spans_in_order_and_cover_all_non_space(text, force):
    spans = segment(text, force_tokens=force)
    assert all(0 <= s < e <= len(text) for s, e in spans)
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))
    covered = np.zeros(len(text), dtype=bool)
    for s, e in spans:
        assert not any(c.isspace() for c in text[s:e])
        covered[s:e] = True
    assert all(covered[i] or c.isspace() for i, c in enumerate(text))


@SETTINGS
@given(texts(), st.booleans())
def test_keeping_everything_gives_the_input_back(text, newlines):
    spans = segment(text)
    assert join_kept(text, spans, [True] * len(spans), newlines) == text


@SETTINGS
@given(texts(), st.data(), st.booleans())
def test_output_is_the_input_with_words_deleted(text, data, newlines):
    spans = segment(text, force_tokens=["\n"] if newlines else [])
    kept = data.draw(st.lists(st.booleans(), min_size=len(spans), max_size=len(spans)))
    out = join_kept(text, spans, kept, newlines)
    assert is_subsequence(out, text)
    # every kept word is there, whole and in order; no dropped word's text is added
    pos = 0
    for (s, e), k in zip(spans, kept):
        if k:
            found = out.find(text[s:e], pos)
            assert found >= 0
            pos = found + (e - s)
    assert len(out) <= len(text)


@SETTINGS
@given(texts(), st.floats(0.05, 1.0), st.integers(0, 2**31 - 1))
def test_selection_at_any_rate_only_deletes(text, rate, seed):
    words = split_words(text)
    if not words:
        return
    c = compress_with_scores(words, np.random.default_rng(seed).random(len(words)), rate)
    assert is_subsequence(c.text, c.source)
    if rate == 1.0:
        assert c.text == c.source
    assert c.compressed_tokens == int(c.kept.sum())
    assert c.compressed_tokens <= int(np.floor(rate * len(words) + 0.5))


@SETTINGS
@given(st.lists(st.sampled_from(["a", "b", ".", "?"]), min_size=1, max_size=30), st.data())
def test_drop_consecutive_only_removes_repeated_force_tokens(words, data):
    kept = np.array(data.draw(st.lists(st.booleans(), min_size=len(words), max_size=len(words))))
    after = drop_repeated_forced(words, kept, [".", "?"])
    assert not (after & ~kept).any()  # never adds a word
    removed = np.flatnonzero(kept & ~after)
    assert all(words[i] in (".", "?") for i in removed)
    kept_seq = [w for w, k in zip(words, after) if k]
    assert all(not (a == b and a in (".", "?")) for a, b in zip(kept_seq, kept_seq[1:]))


def test_examples_from_the_chapter():
    text = "See docs/usage.md, e.g. v1.2.3 --unzip https://x.org/a.b?c=1\nA: hi\nB: yo"
    assert split_words(text) == ["See", "docs/usage.md,", "e.g.", "v1.2.3", "--unzip", "https://x.org/a.b?c=1",
                                 "A:", "hi", "B:", "yo"]
    spans = segment(text)
    keep = [w not in ("hi",) for w in split_words(text)]
    assert join_kept(text, spans, keep) == "See docs/usage.md, e.g. v1.2.3 --unzip https://x.org/a.b?c=1\nA:\nB: yo"
    # the first word of a line dropped: its line break goes unless "\n" is forced
    keep = [w != "B:" for w in split_words(text)]
    assert join_kept(text, spans, keep).endswith("A: hi yo")
    assert join_kept(text, spans, keep, keep_newlines=True).endswith("A: hi\nyo")
    # force tokens are cut out of words
    assert split_words("Why? Because.", force_tokens=["?"]) == ["Why", "?", "Because."]
    # Chinese without a tokenizer: one word per character
    assert split_words("中文 ok") == ["中", "文", "ok"]


def test_select_words_never_exceeds_the_budget_with_forced_words():
    keep = select_words(np.array([0.9, 0.1, 0.5, 0.2]), np.ones(4, dtype=int), 0.5, np.array([False, True, False, False]))
    assert keep.tolist() == [True, True, False, False]


def test_empty_compression_reports_an_infinite_ratio_not_a_number():
    c = Compression(["a", "b"], np.zeros(2), np.zeros(2, dtype=bool), [(0, 2)], 2, 0)
    assert c.text == "" and c.ratio == float("inf") and c.rate == 0.0
    with pytest.raises(ValueError, match="2 word spans but 1 keep flags"):
        join_kept("a b", [(0, 1), (2, 3)], [True])
