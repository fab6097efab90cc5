"""LLMLingua-2-style prompt compression as token classification (the toolkit EFPC builds on).

- :mod:`.words`: what a word is, joining kept words, pluggable token counters.
- :mod:`.align`: keep/discard labels from (original, compressed) pairs, with quality filters.
- :mod:`.classifier`: encoder + 2-way head, labels spread to sub-tokens, masked loss.
- :mod:`.inference`: chunking, word probabilities, forcing, selection to a rate or budget.
- :mod:`.metrics` and :mod:`.baselines`: F1 against reference labels, answer retention, simple baselines.

Book section: *EFPC* "Compression as token classification".
"""

from .align import Alignment, align_words, quality_filter
from .baselines import first_words_scores, random_scores
from .classifier import (
    IGNORE, Collate, HubUnreachableError, TopLayers, encode_words, hub_advice, hub_errors, load_token_classifier,
    minilm_path, model_training_memory, pad_batch, token_classification_step, training_memory,
)
from .inference import (
    Compression, Compressor, check_rate, chunk_words, compress_with_scores, drop_repeated_forced, forced_mask,
    quantize_linear, select_words,
)
from .metrics import achieved_rate, answer_recall, answer_retained, keep_prf
from .words import (
    SENTENCE_END_CHARS, SENTENCE_ENDS, STOPWORDS, check_costs, core, count_tokens, count_words, is_content_word,
    join_kept, join_words, segment, split_words, tokenizer_counter, word_costs,
)

__all__ = [
    "Alignment", "align_words", "quality_filter", "first_words_scores", "random_scores", "IGNORE", "Collate",
    "TopLayers", "encode_words", "load_token_classifier", "minilm_path", "pad_batch", "token_classification_step",
    "Compression", "Compressor", "check_rate", "chunk_words", "compress_with_scores", "drop_repeated_forced",
    "forced_mask", "quantize_linear", "select_words", "achieved_rate", "answer_recall", "answer_retained", "keep_prf",
    "SENTENCE_END_CHARS", "SENTENCE_ENDS", "STOPWORDS", "core", "count_tokens", "count_words", "is_content_word",
    "join_kept", "join_words", "segment", "split_words", "tokenizer_counter", "check_costs", "word_costs",
    "training_memory", "model_training_memory", "HubUnreachableError", "hub_advice", "hub_errors",
]
