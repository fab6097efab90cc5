r"""LLMLingua-2-style compression: chunk, score every word, keep the most probable words at a rate.

1. **Chunking.** The prompt is cut into chunks that fit the model's window, each ending at a
   sentence end where possible, so no text is lost to truncation.
2. **Scoring.** One batched forward pass gives $p_j$ for every sub-token; a word's probability is
   the mean of its sub-tokens' (``"mean"``) or the first one's (``"first"``):
   $p(x_i) = \frac{1}{|T_i|}\sum_{j \in T_i} p_j$.
3. **Forcing.** Force tokens (e.g. ``"?"``) and, optionally, any word with a digit get $p = 1$.
4. **Selection, per chunk.** With a counter $c(x)$ (words, model tokens or GPT tokens), keep the
   set $K$ of most probable words whose cost fits the chunk's budget
   $\sum_{i \in K} c(x_i) \le \lfloor r \sum_i c(x_i) \rceil$ for the rate $r$ (the *kept* fraction:
   $r = 0.25$ is 4x compression). LLMLingua-2 instead thresholds at a percentile,
   $\tau = \mathrm{percentile}(\{p_i\}^{c(x_i)},\ 100(1 - r) + 1)$ and keeps $p_i > \tau$; both
   are here (``method="topk"`` is this book's default because it hits the rate exactly,
   ``method="percentile"`` is LLMLingua-2's).

An instruction, when given, is prepended to every chunk as a first segment and never scored or
returned: only prompt words can be kept.

Book section: *EFPC* "Compressing a prompt".
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .classifier import MODEL_INPUTS, encode_words, pad_batch
from ..tensors import check_batch_size
from .words import (
    SENTENCE_END_CHARS, TokenCounter, check_costs, count_words, join_kept, join_words, segment, split_words,
    tokenizer_counter, word_costs,
)

AGGREGATIONS = ("mean", "first")
METHODS = ("topk", "percentile")


def check_rate(rate) -> float:
    """``rate`` must be a number in (0, 1]: the fraction of the prompt that is kept."""
    if isinstance(rate, bool) or not isinstance(rate, (int, float, np.floating, np.integer)):
        raise TypeError(f"rate must be a number in (0, 1], got {type(rate).__name__}")
    if not (0 < float(rate) <= 1) or math.isnan(float(rate)):
        raise ValueError(f"rate must be in (0, 1] (the kept fraction; 0.25 is 4x compression), got {rate}")
    return float(rate)


def check_prompt(prompt) -> str:
    """A prompt must be a non-empty string with at least one word."""
    if not isinstance(prompt, str):
        raise TypeError(f"prompt must be a str, got {type(prompt).__name__}")
    if not prompt.strip():
        raise ValueError("prompt is empty: there is nothing to compress")
    return prompt


def chunk_words(token_lengths: Sequence[int], max_tokens: int, words: Sequence[str] | None = None,
                ends: Iterable[str] = SENTENCE_END_CHARS) -> list[tuple[int, int]]:
    """Cut word positions ``0..n`` into ``[start, end)`` chunks of at most ``max_tokens`` sub-tokens.

    A chunk ends after the last sentence end (a word ending with a character of ``ends``) that still fits; a sentence longer
    than the window is cut at a word boundary, and a single word longer than the window is a chunk
    of its own. Chunks cover every word exactly once, in order.

    Book section: *EFPC* "Compressing a prompt".
    """
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be at least 1, got {max_tokens} (is the instruction longer than the window?)")
    n = len(token_lengths)
    ends = tuple(ends)
    chunks, start = [], 0
    while start < n:
        used, stop, last_end = 0, start, None
        while stop < n and (used + token_lengths[stop] <= max_tokens or stop == start):
            used += token_lengths[stop]
            stop += 1
            if words is not None and words[stop - 1].endswith(ends):
                last_end = stop
        if stop < n and last_end is not None:
            stop = last_end
        chunks.append((start, stop))
        start = stop
    return chunks


def select_words(probs: np.ndarray, costs: np.ndarray, rate: float, forced: np.ndarray | None = None,
                 method: str = "topk") -> np.ndarray:
    """Boolean keep-mask for one chunk: the most probable words within ``rate`` of the chunk's cost.

    ``probs``, ``costs``, ``forced``: ``(n,)``. Forced words are always kept and count against the
    budget first. ``topk`` adds words by falling probability (ties: earlier first) while they fit;
    ``percentile`` is LLMLingua-2's threshold on cost-replicated probabilities.

    Book section: *EFPC* "Compressing a prompt".
    """
    rate = check_rate(rate)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 1:
        raise ValueError(f"probs must be 1-D (one per word), got shape {probs.shape}")
    if not np.all(np.isfinite(probs)):
        # a NaN would sort as the lowest probability and its word be dropped without a word
        raise ValueError(f"probs contain NaN or infinite values at words {np.flatnonzero(~np.isfinite(probs))[:5].tolist()}")
    costs = check_costs(costs)
    n = len(probs)
    forced = np.zeros(n, dtype=bool) if forced is None else np.asarray(forced, dtype=bool)
    if not (len(costs) == len(forced) == n):
        raise ValueError(f"probs, costs and forced must have the same length, got {n}, {len(costs)}, {len(forced)}")
    if n == 0:
        return np.zeros(0, dtype=bool)
    if rate == 1.0:
        return np.ones(n, dtype=bool)
    p = np.where(forced, 1.0, probs)
    if method == "percentile":
        replicated = np.repeat(p, np.maximum(costs, 1))
        tau = np.percentile(replicated, int(100 * (1 - rate) + 1))
        return (p > tau) | ((p == tau) & (tau == 1.0)) | forced
    budget = int(np.floor(rate * costs.sum() + 0.5))
    keep = forced.copy()
    spent = int(costs[forced].sum())
    for i in np.lexsort((np.arange(n), -p)):  # highest probability first, earlier word on ties
        if not keep[i] and spent + costs[i] <= budget:
            keep[i] = True
            spent += int(costs[i])
    return keep


def quantize_linear(model):
    r"""A copy of ``model`` with every ``nn.Linear`` dynamically quantized to int8 (CPU inference).

    Weights are stored as int8 with one scale per tensor; activations are quantized on the fly per
    batch (:func:`torch.ao.quantization.quantize_dynamic`). Linear layers are nearly all of a
    small encoder's work, so this is the cheapest CPU speed-up; its cost in accuracy is measured in
    the chapter. The input model is left as it is.

    Book section: *EFPC* "How fast is it?".
    """
    import warnings

    quantized = copy.deepcopy(model).cpu().eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao announces its move to torchao
        return torch.ao.quantization.quantize_dynamic(quantized, {torch.nn.Linear}, dtype=torch.qint8)


@dataclass
class Compression:
    """The result of compressing one prompt.

    ``words``/``probs``/``kept``: per prompt word; ``chunks``: ``[start, end)`` word ranges;
    ``original_tokens``/``compressed_tokens``: costs under the counter used; ``source`` and
    ``spans``: the prompt's text and each word's ``[start, end)`` in it (the output is ``source``
    with the dropped words deleted); ``keep_newlines``: line breaks survive (``"\\n"`` forced).
    """

    words: list[str]
    probs: np.ndarray
    kept: np.ndarray
    chunks: list[tuple[int, int]]
    original_tokens: int
    compressed_tokens: int
    source: str | None = None
    spans: list[tuple[int, int]] | None = None
    keep_newlines: bool = False

    def __post_init__(self):
        if self.source is None:  # words without a text: a text with one space between them
            self.source = join_words(self.words)
            starts = np.cumsum([0] + [len(w) + 1 for w in self.words[:-1]]) if self.words else []
            self.spans = [(int(s), int(s) + len(w)) for s, w in zip(starts, self.words)]

    @property
    def text(self) -> str:
        """The compressed prompt: the original text with the dropped words deleted."""
        return join_kept(self.source, self.spans, self.kept, self.keep_newlines)

    @property
    def kept_words(self) -> list[str]:
        return [w for w, k in zip(self.words, self.kept) if k]

    @property
    def rate(self) -> float:
        """Achieved kept fraction (compressed / original cost)."""
        return self.compressed_tokens / max(1, self.original_tokens)

    @property
    def ratio(self) -> float:
        """Achieved compression ratio ("4x"); infinite when nothing was kept."""
        return self.original_tokens / self.compressed_tokens if self.compressed_tokens else math.inf


class Compressor:
    """A trained token classifier used as a prompt compressor (LLMLingua-2's inference).

    ``model``: an ``AutoModelForTokenClassification`` with 2 labels (label 1 = keep);
    ``max_length``: the window in sub-tokens, special tokens included (default: the model's
    position limit, at most 512); ``aggregation``: ``"mean"`` or ``"first"``.

    Book section: *EFPC* "Compressing a prompt".
    """

    def __init__(self, model, tokenizer, max_length: int | None = None, aggregation: str = "mean",
                 batch_size: int = 32, device: str | torch.device | None = None):
        if aggregation not in AGGREGATIONS:
            raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")
        limit = min(512, getattr(model.config, "max_position_embeddings", 512))
        self.max_length = int(max_length or limit)
        if not 8 <= self.max_length <= limit:
            raise ValueError(f"max_length must be in [8, {limit}], got {self.max_length}")
        self.model, self.tokenizer = model, tokenizer
        self.aggregation, self.batch_size = aggregation, check_batch_size(batch_size)
        self.device = torch.device(device) if device else next(model.parameters()).device

    def _special_count(self, pair: bool) -> int:
        return self.tokenizer.num_special_tokens_to_add(pair=pair)

    def word_probabilities(self, words: Sequence[str], instruction: Sequence[str] | None = None
                           ) -> tuple[np.ndarray, list[tuple[int, int]]]:
        """Keep probability of every prompt word ``(n,)`` and the chunks it was scored in.

        The instruction (if any) is prepended to every chunk and takes room from the window.
        """
        return self.score_prompts([words], [instruction])[0]

    def score_prompts(self, prompts: Sequence[Sequence[str]],
                      instructions: Sequence[Sequence[str] | None] | None = None
                      ) -> list[tuple[np.ndarray, list[tuple[int, int]]]]:
        """:meth:`word_probabilities` for many prompts at once: all their chunks go through the
        model together, ``batch_size`` chunks per forward pass under ``torch.inference_mode``
        (chunks of similar length share a batch, so little is padding).
        """
        instructions = [None] * len(prompts) if instructions is None else list(instructions)
        if len(instructions) != len(prompts):
            raise ValueError(f"{len(prompts)} prompts but {len(instructions)} instructions")
        jobs = []  # (prompt index, start, end)
        results = []
        for k, (words, instruction) in enumerate(zip(prompts, instructions)):
            words = list(words)
            if not words:
                results.append((np.zeros(0), []))
                continue
            lengths = [len(ids) for ids in self.tokenizer(words, add_special_tokens=False)["input_ids"]]
            room = self.max_length - self._special_count(instruction is not None)
            if instruction is not None:
                room -= len(self.tokenizer(list(instruction), is_split_into_words=True, add_special_tokens=False)["input_ids"])
            chunks = chunk_words(lengths, room, words)
            jobs.extend((k, s, e, sum(lengths[s:e])) for s, e in chunks)
            results.append((np.zeros(len(words)), chunks))
        prompts = [list(w) for w in prompts]
        jobs.sort(key=lambda j: j[3])
        self.model.eval()
        pad_id = self.tokenizer.pad_token_id or 0
        for b in range(0, len(jobs), self.batch_size):
            part = jobs[b : b + self.batch_size]
            feats = [encode_words(self.tokenizer, prompts[k][s:e], instruction=instructions[k], max_length=self.max_length)
                     for k, s, e, _ in part]
            batch = pad_batch(feats, pad_id)
            with torch.inference_mode():
                inputs = {key: batch[key].to(self.device) for key in MODEL_INPUTS if key in batch}
                p = self.model(**inputs).logits.float().softmax(-1)[..., 1].cpu().numpy()  # (B, T)
            index = batch["word_index"].numpy()  # (B, T), -1 outside the prompt
            for row, (k, s, e, _) in enumerate(part):
                probs = results[k][0]
                valid = index[row] >= 0
                w = index[row][valid]  # word position inside the chunk, one per sub-token
                tok_p = p[row][valid]
                if self.aggregation == "mean":
                    sums = np.bincount(w, weights=tok_p, minlength=e - s)
                    counts = np.bincount(w, minlength=e - s)
                    probs[s:e] = np.where(counts > 0, sums / np.maximum(counts, 1), 0.0)
                else:
                    first = np.r_[True, w[1:] != w[:-1]] if len(w) else np.zeros(0, dtype=bool)
                    chunk = np.zeros(e - s)  # words the tokenizer maps to nothing (rare symbols) stay 0
                    chunk[w[first]] = tok_p[first]
                    probs[s:e] = chunk
        return results

    def compress(self, prompt: str, rate: float = 0.5, *, target_tokens: int | None = None,
                 instruction: str | None = None, force_tokens: Sequence[str] = (), force_digits: bool = False,
                 drop_consecutive: bool = False, counter: TokenCounter = count_words,
                 method: str = "topk") -> Compression:
        """Compress ``prompt`` to about ``rate`` of its cost (or to ``target_tokens``), chunk by chunk.

        ``instruction``: a question or task; when given, compression is task-aware (EFPC) and the
        instruction is not part of the output. ``force_tokens`` are cut out as words of their own
        and always kept (``"\\n"`` keeps line breaks); ``force_digits`` keeps every word with a
        digit; ``drop_consecutive`` drops a force token that repeats the last kept one with nothing
        kept in between (LLMLingua-2's option). Raises ``ValueError`` when nothing would be kept.

        Book section: *EFPC* "Compressing a prompt".
        """
        check_prompt(prompt)
        spans = segment(prompt, self.tokenizer, force_tokens)
        words = [prompt[s:e] for s, e in spans]
        costs = word_costs(words, counter)
        total = int(costs.sum())
        if target_tokens is not None:
            if isinstance(target_tokens, bool) or not isinstance(target_tokens, (int, np.integer)) or target_tokens < 1:
                raise ValueError(f"target_tokens must be a positive integer, got {target_tokens!r}")
            rate = min(1.0, target_tokens / max(1, total))
        rate = check_rate(rate)
        instruction_words = None
        if instruction is not None:
            if not isinstance(instruction, str):
                raise TypeError(f"instruction must be a str or None, got {type(instruction).__name__}")
            instruction_words = split_words(instruction, self.tokenizer) or None
        probs, chunks = self.word_probabilities(words, instruction_words)
        out = finish(words, probs, chunks, costs, rate, force_tokens, force_digits, method, drop_consecutive)
        out.source, out.spans, out.keep_newlines = prompt, spans, "\n" in force_tokens
        if not out.kept.any():
            raise ValueError(f"rate {rate:g} keeps nothing of this {total}-unit prompt "
                             "(every chunk's budget rounds to zero): raise rate or target_tokens")
        return out

    def compress_prompt(self, context: str | Sequence[str], rate: float = 0.5, target_token: int = -1,
                        force_tokens: Sequence[str] = (), drop_consecutive: bool = False,
                        force_reserve_digit: bool = False, question: str | None = None,
                        counter: TokenCounter | None = None) -> dict:
        """The shape of ``llmlingua.PromptCompressor.compress_prompt`` (LLMLingua-2 mode), for users
        coming from it: ``context`` (a string or a list joined with ``"\\n\\n"``), ``rate`` (kept
        fraction), ``target_token`` (> 0 overrides ``rate``), ``force_tokens``, ``drop_consecutive``,
        ``force_reserve_digit``; ``question`` makes it task-aware (EFPC). Costs are counted in this
        compressor's tokens unless ``counter`` is given. Returns ``compressed_prompt``,
        ``origin_tokens``, ``compressed_tokens``, ``ratio`` (``"4.0x"``), ``rate`` (``"25.0%"``)
        and the :class:`Compression` under ``"compression"``.

        Book section: *EFPC* "Compressing a prompt".
        """
        if not isinstance(context, str):
            if isinstance(context, Sequence) and all(isinstance(c, str) for c in context):
                context = "\n\n".join(context)
            else:
                raise TypeError(f"context must be a str or a list of str, got {type(context).__name__}")
        if isinstance(target_token, bool) or not isinstance(target_token, (int, np.integer)):
            raise TypeError(f"target_token must be an integer (-1: use rate), got {target_token!r}")
        out = self.compress(context, rate, target_tokens=int(target_token) if target_token > 0 else None,
                            instruction=question, force_tokens=force_tokens, force_digits=force_reserve_digit,
                            drop_consecutive=drop_consecutive, counter=counter or tokenizer_counter(self.tokenizer))
        return {
            "compressed_prompt": out.text, "origin_tokens": out.original_tokens,
            "compressed_tokens": out.compressed_tokens, "ratio": f"{out.ratio:.1f}x",
            "rate": f"{100 * out.rate:.1f}%", "compression": out,
        }


def forced_mask(words: Sequence[str], force_tokens: Sequence[str] = (), force_digits: bool = False) -> np.ndarray:
    """``(n,)`` True for words that must survive: force tokens and, optionally, words with a digit."""
    if isinstance(force_tokens, str):
        raise TypeError("force_tokens must be a list of strings, e.g. ['?', '.'], not one string")
    force = set(force_tokens)
    return np.array([(w in force) or (force_digits and any(c.isdigit() for c in w)) for w in words], dtype=bool)


def drop_repeated_forced(words: Sequence[str], kept: np.ndarray, force_tokens: Sequence[str]) -> np.ndarray:
    """LLMLingua-2's ``drop_consecutive``: a force token equal to the previous force token, with no
    other kept word since, is dropped (``". . ."`` left by deleted sentences becomes ``"."``)."""
    force = set(force_tokens)
    kept = kept.copy()
    prev, between = None, False
    for i, w in enumerate(words):
        if w in force:
            if kept[i] and not between and w == prev:
                kept[i] = False
            elif kept[i]:
                prev, between = w, False
        elif kept[i]:
            between = True
    return kept


def finish(words: Sequence[str], probs: np.ndarray, chunks: list[tuple[int, int]], costs: np.ndarray,
           rate: float, force_tokens: Sequence[str] = (), force_digits: bool = False,
           method: str = "topk", drop_consecutive: bool = False) -> Compression:
    """Select words chunk by chunk (every chunk at the same rate) and package the result."""
    forced = forced_mask(words, force_tokens, force_digits)
    kept = np.zeros(len(words), dtype=bool)
    for s, e in chunks:
        kept[s:e] = select_words(probs[s:e], costs[s:e], rate, forced[s:e], method)
    if drop_consecutive:
        kept = drop_repeated_forced(words, kept, force_tokens)
    return Compression(list(words), np.asarray(probs, dtype=np.float64), kept, list(chunks),
                       int(costs.sum()), int(costs[kept].sum()))


def compress_with_scores(words: Sequence[str], scores: Callable[[Sequence[str]], np.ndarray] | np.ndarray,
                         rate: float, counter: TokenCounter = count_words, method: str = "topk") -> Compression:
    """Compress pre-split ``words`` with given per-word scores (baselines, tests), as one chunk."""
    words = list(words)
    probs = np.asarray(scores(words) if callable(scores) else scores, dtype=np.float64)
    if probs.shape != (len(words),):
        raise ValueError(f"scores must have shape ({len(words)},), got {probs.shape}")
    costs = word_costs(words, counter)
    return finish(words, probs, [(0, len(words))], costs, check_rate(rate), method=method)
