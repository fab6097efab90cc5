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

import torch
from torch.utils.data import Dataset

from ..compress.classifier import Collate, encode_words, token_classification_step
from ..compress.words import split_words
from ..train import FitConfig, FitResult, fit


class SelectivePrependDataset(Dataset):
    """Examples whose instruction is prepended with probability ``p`` each time they are drawn.

    ``examples`` need ``words`` (prompt words), ``agnostic`` (labels without instruction),
    ``aware`` (labels given the instruction) and ``question`` (the instruction text). Both
    encodings are made once; the coin is drawn from torch's global generator, which
    :func:`companion.train.fit` seeds and checkpoints, so a resumed run draws the same coins.

    Book section: *EFPC* "Selective prepending".
    """

    def __init__(self, examples: Sequence, tokenizer, p: float = 0.5, max_length: int = 512):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p (the probability of prepending the instruction) must be in [0, 1], got {p}")
        if len(examples) == 0:
            raise ValueError("no training examples")
        self.p = float(p)
        self.plain = [encode_words(tokenizer, e.words, e.agnostic, max_length=max_length) if p < 1 else None
                      for e in examples]
        self.prepended = [encode_words(tokenizer, e.words, e.aware, instruction=split_words(e.question),
                                       max_length=max_length) if p > 0 else None for e in examples]

    def __len__(self) -> int:
        return len(self.plain)

    def __getitem__(self, i: int) -> dict:
        if self.p == 0.0:
            return self.plain[i]
        if self.p == 1.0:
            return self.prepended[i]
        return self.prepended[i] if torch.rand(()) < self.p else self.plain[i]


def train_compressor(model, tokenizer, examples: Sequence, p: float, config: FitConfig,
                     max_length: int = 512) -> FitResult:
    """Fine-tune ``model`` as an EFPC compressor (``p > 0``) or an LLMLingua-2 one (``p = 0``).

    All training goes through :func:`companion.train.fit` (progress, checkpoints, resume).

    Book section: *EFPC* "Selective prepending".
    """
    data = SelectivePrependDataset(examples, tokenizer, p, max_length)
    return fit(model, data, token_classification_step, config, collate_fn=Collate(tokenizer.pad_token_id or 0))
