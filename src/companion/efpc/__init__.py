"""EFPC (Cao et al., 2025): one prompt compressor for task-aware and task-agnostic compression.

It builds on the LLMLingua-2 toolkit in :mod:`companion.compress` and adds selective instruction
prepending (:mod:`.method`), the quick corpus (:mod:`.corpus`), the experiment (:mod:`.experiment`,
:mod:`.full`) and the chapter's figures (:mod:`.figures`).

Book chapter: *EFPC*.
"""

from . import config
from .corpus import Corpus, Example, make_corpus
from .experiment import (
    HANDWRITTEN, METHODS, QuickOutcome, TrainedPair, evaluate_generated, evaluate_handwritten, handwritten_passages,
    rate_label, run, run_quick, train_pair,
)
from .full import full_run_hours, run_hours
from .method import EncodedExamples, LabelledPrompt, SelectivePrependDataset, encode_examples, train_compressor

__all__ = [
    "config", "Corpus", "Example", "make_corpus", "HANDWRITTEN", "METHODS", "QuickOutcome", "TrainedPair",
    "evaluate_generated", "evaluate_handwritten", "handwritten_passages", "rate_label", "run", "run_quick",
    "train_pair", "EncodedExamples", "LabelledPrompt", "SelectivePrependDataset", "encode_examples",
    "train_compressor", "run_hours", "full_run_hours",
]
