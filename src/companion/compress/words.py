"""Words: how a prompt is split into the units that are kept or dropped, and how they are counted.

LLMLingua-2 keeps or drops *words*, not sub-word tokens: a word is kept when the classifier's
probability for it (averaged over its sub-tokens) is high enough. This module fixes what a word is,
how kept words are joined back into text, and how the length of a prompt is counted. The counter is
pluggable because LLMLingua-2 measures rates in GPT-3.5 tokens (``tiktoken``, which needs a
download), while the quick runs of this book count words.

Book section: *EFPC* "Compression as token classification".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

#: A number (with inner "." or ","), a word (with inner apostrophes or hyphens), or one mark.
WORD_PATTERN = re.compile(r"\d+(?:[.,]\d+)*|\w+(?:['’-]\w+)*|[^\w\s]")

#: Words that end a sentence: chunks are cut after them (LLMLingua-2's ``chunk_end_tokens``).
SENTENCE_ENDS = frozenset({".", "!", "?"})

_NO_SPACE_BEFORE = frozenset(".,;:!?)]}%")
_NO_SPACE_AFTER = frozenset("([{$")

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


def split_words(text: str) -> list[str]:
    """Split ``text`` into words and single punctuation marks (whitespace, newlines included, is dropped).

    ``"It opened in 1893."`` -> ``["It", "opened", "in", "1893", "."]``.
    Book section: *EFPC* "Compression as token classification".
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return WORD_PATTERN.findall(text)


def join_words(words: Sequence[str]) -> str:
    """Join words back into text: a space between words, none before closing punctuation."""
    out: list[str] = []
    for w in words:
        if out and w not in _NO_SPACE_BEFORE and out[-1] not in _NO_SPACE_AFTER:
            out.append(" ")
        out.append(w)
    return "".join(out)


def is_content_word(word: str) -> bool:
    """True for a word that is not punctuation and not a stop word (the quick corpus's agnostic rule)."""
    return any(c.isalnum() for c in word) and word.lower() not in STOPWORDS


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


def count_tokens(words: Sequence[str], counter: TokenCounter = count_words) -> int:
    """Total cost of ``words`` under ``counter``."""
    return int(sum(counter(w) for w in words))
