r"""EFPC's addition to LLMLingua-2: selective instruction prepending, one model for both modes.

Training mixes task-agnostic pairs (prompt, labels) with task-aware triples (instruction, prompt,
labels given the instruction). For each training example the instruction is prepended with
probability $p$:

$$\tilde x = \begin{cases} [\,q \,;\, x\,] \text{ with task-aware labels } y^{q} & \text{with prob. } p\\
x \text{ with task-agnostic labels } y & \text{with prob. } 1-p \end{cases}
\qquad \mathcal L = \mathrm{CE}\big(f_\theta(\tilde x)_{x},\ \cdot\big),$$

the loss counting only the prompt's tokens (the instruction's labels are $-100$). At inference the
instruction is prepended whenever a task is given, and the same weights compress task-agnostically
when none is. $p = 0$ is LLMLingua-2's training.

What is the paper's and what is this book's: the selective prepending, the mixing of the two kinds
of data and top-$k$ selection at a rate are EFPC's (abstract); the value of $p$, masking the
instruction out of the loss, the ``[CLS] q [SEP] x [SEP]`` pair encoding and leaving the
instruction out of the rate are this book's choices (no code was released).

Book section: *EFPC* "Selective prepending".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.utils.data import Dataset

from ..compress.classifier import (
    Collate, TopLayers, encode_words, frozen_features, frozen_layer_count, pad_hidden_batch,
    token_classification_step, top_layers_step,
)
from ..compress.words import split_words
from ..train import FitConfig, FitResult, fit


@dataclass
class LabelledPrompt:
    """One training prompt: its words, and labels without (``agnostic``) and with (``aware``) its question.

    Either label list may be None: LLMLingua-2's data has no question, added QA data may have
    only task-aware labels. (The quick corpus's examples carry both.)
    """

    words: list[str]
    agnostic: list[int] | None = None
    aware: list[int] | None = None
    question: str | None = None


@dataclass
class EncodedExamples:
    """Each example encoded twice: ``plain`` (prompt, task-agnostic labels) and ``prepended``
    (instruction + prompt, task-aware labels). With ``start > 0`` every item also holds ``hidden``,
    the output of the frozen bottom ``start`` encoder blocks, so training runs only the blocks above.
    """

    plain: list[dict]
    prepended: list[dict]
    start: int = 0


def encode_examples(examples: Sequence, tokenizer, max_length: int = 512, model=None,
                    batch_size: int = 32) -> EncodedExamples:
    """Encode ``examples`` (``words``, ``agnostic``, ``aware``, ``question``) both ways.

    An example whose ``agnostic`` labels are None has only the prepended form (task-aware data, as
    in the full run's QA examples); one whose ``aware`` labels or question are None has only the
    plain form (LLMLingua-2's data). Pass ``model`` to cache the output of its frozen bottom blocks (:func:`frozen_layer_count`);
    the cache is valid for any model with the same frozen weights (e.g. a copy of it).

    Book section: *EFPC* "Selective prepending".
    """
    if len(examples) == 0:
        raise ValueError("no training examples")
    plain = [encode_words(tokenizer, e.words, e.agnostic, max_length=max_length) if e.agnostic is not None else None
             for e in examples]
    prepended = [encode_words(tokenizer, e.words, e.aware, instruction=split_words(e.question), max_length=max_length)
                 if e.aware is not None and e.question else None for e in examples]
    if any(a is None and b is None for a, b in zip(plain, prepended)):
        raise ValueError("every example needs agnostic labels, or aware labels with a question")
    start = frozen_layer_count(model) if model is not None else 0
    if start > 0:
        pad_id = tokenizer.pad_token_id or 0
        for items in (plain, prepended):
            present = [item for item in items if item is not None]
            for item, hidden in zip(present, frozen_features(model, present, start, batch_size, pad_id)):
                item["hidden"] = hidden  # (T, H)
    return EncodedExamples(plain, prepended, start)


class SelectivePrependDataset(Dataset):
    """Encoded examples whose instruction is prepended with probability ``p`` each time one is drawn.

    The coin comes from torch's global generator, which :func:`companion.train.fit` seeds and saves
    in its checkpoints, so a resumed run draws the same coins. ``p = 0`` gives LLMLingua-2's data.
    An example with only one form always gives that form; with ``p = 0`` (``p = 1``) examples that
    have no plain (prepended) form are left out.

    Book section: *EFPC* "Selective prepending".
    """

    def __init__(self, encoded: EncodedExamples, p: float = 0.5):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p (the probability of prepending the instruction) must be in [0, 1], got {p}")
        self.encoded, self.p = encoded, float(p)
        pairs = list(zip(encoded.plain, encoded.prepended))
        if self.p == 0.0:
            self.index = [i for i, (a, _) in enumerate(pairs) if a is not None]
        elif self.p == 1.0:
            self.index = [i for i, (_, b) in enumerate(pairs) if b is not None]
        else:
            self.index = list(range(len(pairs)))
        if not self.index:
            raise ValueError(f"no example can be used with p={p}")

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict:
        plain, prepended = self.encoded.plain[self.index[i]], self.encoded.prepended[self.index[i]]
        if plain is None:
            return prepended
        if prepended is None:
            return plain
        return prepended if self.p == 1.0 or (self.p > 0.0 and torch.rand(()) < self.p) else plain


def _hidden_item(item: dict) -> dict:
    return {"hidden": item["hidden"], "labels": item["labels"]}


def train_compressor(model, tokenizer, examples: Sequence | EncodedExamples, p: float, config: FitConfig,
                     max_length: int = 512) -> FitResult:
    """Fine-tune ``model`` as an EFPC compressor (``p > 0``) or an LLMLingua-2 one (``p = 0``).

    ``examples``: raw examples or :func:`encode_examples` output. When the encoding carries cached
    frozen features, only the blocks above them train (through :class:`TopLayers`, which shares
    ``model``'s weights). Either way training goes through :func:`companion.train.fit` (progress,
    checkpoints, resume).

    Book section: *EFPC* "Selective prepending".
    """
    encoded = examples if isinstance(examples, EncodedExamples) else encode_examples(examples, tokenizer, max_length)
    data = SelectivePrependDataset(encoded, p)
    if encoded.start == 0:
        return fit(model, data, token_classification_step, config, collate_fn=Collate(tokenizer.pad_token_id or 0))
    if frozen_layer_count(model) != encoded.start:
        raise ValueError(f"the cached features come from {encoded.start} frozen blocks but this model freezes "
                         f"{frozen_layer_count(model)}; encode the examples with this model")
    top = TopLayers(model, encoded.start)
    return fit(top, data, top_layers_step, config, collate_fn=lambda items: pad_hidden_batch([_hidden_item(i) for i in items]))
