r"""Words: the units a prompt is cut into, kept or dropped, and how they are counted.

LLMLingua-2 keeps or drops *words*, not sub-word tokens: a word is kept when the classifier's
probability for it (averaged over its sub-tokens) is high enough. Here a word is a **span of the
prompt's own text**:

- a run of non-space characters, as LLMLingua-2's words (sub-tokens merged up to the next one
  that starts after a space): ``docs/usage.md``, ``e.g.``, ``v1.2.3``, ``--unzip`` and URLs stay
  whole, and punctuation stays on the word it is written on (``1893.``);
- a force token (``force_tokens``, e.g. ``"?"``) is cut out of the run as a word of its own, as
  LLMLingua-2 does, so it can be kept while its neighbours go;
- where a script writes no spaces (Chinese, Japanese), a run of such characters is cut at the
  tokenizer's tokens (one character each without a tokenizer), so a clause is never one word.

Compression only ever **deletes** words: the output is the input with some spans removed, and at
rate 1 it *is* the input, byte for byte (whitespace, newlines, speaker turns). Between two kept
words the output keeps one stretch of the original whitespace; with ``"\n"`` among the force
tokens, that stretch is one holding a line break whenever a line break was deleted there.

The counter is pluggable because LLMLingua-2 measures rates in GPT-3.5 tokens (``tiktoken``,
which needs a download), while the quick runs of this book count words.

Book section: *EFPC* "Compression as token classification".
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Callable, Sequence

import numpy as np

#: Characters that end a sentence when a word ends with them: chunks are cut after such words
#: (LLMLingua-2's ``chunk_end_tokens``).
SENTENCE_END_CHARS = ".!?。！？"
SENTENCE_ENDS = frozenset(SENTENCE_END_CHARS)

#: Scripts written without spaces between words: CJK ideographs, kana, CJK punctuation, full-width forms.
_NO_SPACE = "\u3000-\u303f\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef"
_NO_SPACE_RUN = re.compile(f"[{_NO_SPACE}]+")
_RUN = re.compile(r"\S+")
_PUNCT = string.punctuation + "“”‘’«»…–—、。，！？；：（）「」『』"

#: Function words; the quick corpus's task-agnostic rule drops them (a stand-in for GPT-4's choices).
STOPWORDS = frozenset(
    """a an the and or but if then than so as of at by for from in into on onto to with without
    about over under after before during between through is are was were be been being am do does
    did has have had having it its it's this that these those there here which who whom whose what
    when where why how all any both each few more most other some such no nor not only own same
    too very can will just should would could may might must shall also quite rather indeed really
    i me my we our you your he him his she her they them their one many much often said say says
    yet still even""".split()
)

#: ``counter(word) -> int``: how many units a word costs against the budget.
TokenCounter = Callable[[str], int]


def _check_text(text) -> str:
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return text


def _force_pattern(force_tokens: Sequence[str]):
    if isinstance(force_tokens, str):
        raise TypeError("force_tokens must be a list of strings, e.g. ['?', '\\n'], not one string")
    tokens = sorted({t for t in force_tokens if isinstance(t, str) and t.strip()}, key=len, reverse=True)
    bad = [t for t in force_tokens if not isinstance(t, str) or not t]
    if bad:
        raise TypeError(f"force_tokens must be non-empty strings, got {bad!r}")
    inner = [t for t in tokens if any(c.isspace() for c in t)]
    if inner:
        raise ValueError(f"a force token cannot contain spaces (only '\\n' alone is allowed), got {inner!r}")
    return re.compile("|".join(re.escape(t) for t in tokens)) if tokens else None


def _cut_no_space(text: str, start: int, end: int, tokenizer) -> list[tuple[int, int]]:
    """Spans of ``text[start:end]``: no-space script runs cut at tokens (or characters), the rest whole."""
    out, pos = [], start
    for m in _NO_SPACE_RUN.finditer(text, start, end):
        if m.start() > pos:
            out.append((pos, m.start()))
        s, e = m.span()
        cuts = None
        if tokenizer is not None:
            enc = tokenizer(text[s:e], add_special_tokens=False, return_offsets_mapping=True)
            cuts = sorted({a for a, b in enc["offset_mapping"] if b > a} | {0})
        if not cuts:
            cuts = list(range(e - s))
        bounds = [c for c in cuts if 0 <= c < e - s] + [e - s]
        out.extend((s + a, s + b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a)
        pos = e
    if pos < end:
        out.append((pos, end))
    return out


def segment(text: str, tokenizer=None, force_tokens: Sequence[str] = ()) -> list[tuple[int, int]]:
    """``[start, end)`` character spans of the words of ``text``, in order, never overlapping.

    ``"See docs/usage.md, e.g. v1.2.3?"`` gives the spans of ``See``, ``docs/usage.md,``,
    ``e.g.`` and ``v1.2.3?``; with ``force_tokens=["?"]`` the last is ``v1.2.3`` and ``?``.
    ``tokenizer``: a Hugging Face fast tokenizer that cuts runs of Chinese or Japanese
    characters at its tokens (each character is a word without one).

    Book section: *EFPC* "Compression as token classification".
    """
    _check_text(text)
    force = _force_pattern(force_tokens)
    spans = []
    for run in _RUN.finditer(text):
        s, e = run.span()
        pieces, pos = [], s
        if force is not None:
            for m in force.finditer(text, s, e):
                if m.start() > pos:
                    pieces.append((pos, m.start(), False))
                pieces.append((m.start(), m.end(), True))
                pos = m.end()
        if pos < e:
            pieces.append((pos, e, False))
        for a, b, forced in pieces:
            spans.extend([(a, b)] if forced else _cut_no_space(text, a, b, tokenizer))
    return spans


def split_words(text: str, tokenizer=None, force_tokens: Sequence[str] = ()) -> list[str]:
    """The words of ``text`` (see :func:`segment`) as strings; whitespace is between words, never in one.

    ``"It opened in 1893."`` -> ``["It", "opened", "in", "1893."]``.
    Book section: *EFPC* "Compression as token classification".
    """
    return [text[s:e] for s, e in segment(text, tokenizer, force_tokens)]


def join_kept(text: str, spans: Sequence[tuple[int, int]], kept: Sequence[bool], keep_newlines: bool = False) -> str:
    """``text`` with the words not ``kept`` deleted (with the whitespace that goes with them).

    Text before the first and after the last word is kept as it is. Between two kept words the
    gap is the original whitespace just before the second one; with ``keep_newlines`` it is the
    stretch of deleted whitespace with the most line breaks when any was deleted. So the output is
    always the input with some spans removed, and with every word kept it is the input.

    Book section: *EFPC* "Compressing a prompt".
    """
    _check_text(text)
    if len(spans) != len(kept):
        raise ValueError(f"{len(spans)} word spans but {len(kept)} keep flags")
    if not spans:
        return text
    out = [text[: spans[0][0]]]
    prev_end = None  # end of the last kept word
    best = None  # the gap with the most line breaks since the last kept word
    for i, ((s, e), k) in enumerate(zip(spans, kept)):
        gap = (spans[i - 1][1], s) if i else None
        if gap is not None and prev_end is not None:
            n = text.count("\n", *gap)
            if best is None or n > best[0]:
                best = (n, gap)
        if not k:
            continue
        if prev_end is not None:
            a, b = gap
            if keep_newlines and best is not None and best[0] > text.count("\n", a, b):
                a, b = best[1]
            out.append(text[a:b])
        out.append(text[s:e])
        prev_end, best = e, None
    out.append(text[spans[-1][1]:])
    return "".join(out)


def join_words(words: Sequence[str]) -> str:
    """Join words that have no source text (labels, examples) with single spaces."""
    return " ".join(words)


def core(word: str) -> str:
    """``word`` lower-cased, without the punctuation around it (``"Finch."`` -> ``"finch"``)."""
    stripped = word.strip(_PUNCT)
    return (stripped or word).lower()


def is_content_word(word: str) -> bool:
    """True for a word with a letter or digit that is not a stop word (the quick corpus's agnostic rule)."""
    return any(c.isalnum() for c in word) and core(word) not in STOPWORDS


def count_words(word: str) -> int:
    """The default counter: every word costs one unit."""
    return 1


def tokenizer_counter(tokenizer) -> TokenCounter:
    """A counter that costs each word its number of sub-tokens under a Hugging Face ``tokenizer``.

    For LLMLingua-2's own unit, pass a ``tiktoken`` encoding instead:
    ``lambda w: len(enc.encode(" " + w))`` (``tiktoken`` downloads its table on first use).
    """
    cache: dict[str, int] = {}

    def count(word: str) -> int:
        if word not in cache:
            # with a leading space, as the word sits inside a text (matters for byte-level BPE)
            cache[word] = max(1, len(tokenizer.tokenize(" " + word)))
        return cache[word]

    return count


def check_costs(costs, name: str = "costs") -> np.ndarray:
    """``costs`` as an int64 array, refusing anything but whole numbers >= 1.

    Every word takes at least one unit of the budget: a cost of 0 (or a fraction truncated to 0) would
    report a rate of 0 and an infinite ratio while keeping every word, and a negative cost would buy
    room for other words.
    """
    raw = np.asarray(costs)
    if raw.dtype == bool or not (np.issubdtype(raw.dtype, np.integer) or np.issubdtype(raw.dtype, np.floating)):
        raise TypeError(f"{name} must be whole numbers >= 1, got an array of dtype {raw.dtype}")
    if raw.size and not (np.all(np.isfinite(raw)) and np.all(raw == np.round(raw)) and raw.min() >= 1):
        bad = raw[~(np.isfinite(raw) & (raw == np.round(raw)) & (raw >= 1))][:5] if raw.ndim else raw
        raise ValueError(f"{name} must be whole numbers >= 1 (every word costs at least one unit), got {bad.tolist()}")
    return raw.astype(np.int64)


def word_costs(words: Sequence[str], counter: TokenCounter = count_words) -> np.ndarray:
    """``(n,)`` int64 cost of each word under ``counter``; a counter returning anything but an integer
    >= 1 for a word is an error naming the word."""
    out = np.empty(len(words), dtype=np.int64)
    for i, w in enumerate(words):
        c = counter(w)
        if isinstance(c, bool) or not isinstance(c, (int, np.integer, float, np.floating)) or not (
                math.isfinite(c) and c == int(c) and c >= 1):
            raise ValueError(f"the token counter returned {c!r} for the word {w!r}: a counter must return a whole "
                             "number >= 1 (every word costs at least one unit)")
        out[i] = int(c)
    return out


def count_tokens(words: Sequence[str], counter: TokenCounter = count_words) -> int:
    """Total cost of ``words`` under ``counter`` (see :func:`word_costs`)."""
    return int(word_costs(list(words), counter).sum())
