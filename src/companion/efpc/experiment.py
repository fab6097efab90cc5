"""The EFPC experiment: train an EFPC and an LLMLingua-2 compressor, compare them and two baselines.

Quick run (CPU, seconds): the packaged MiniLM on the generated corpus; scores are word-level F1
against the task-aware labels and answer retention, on held-out towns. Full run (GPU): see
:mod:`companion.efpc.full`.

Book section: *EFPC* "Quick run".
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import results
from ..compress.baselines import first_words_scores, random_scores
from ..compress.classifier import load_token_classifier
from ..compress.inference import Compressor, compress_with_scores
from ..compress.metrics import answer_retained, keep_prf
from ..compress.words import split_words
from ..runtime import seed_everything
from ..train import FitConfig
from .config import EFPCConfig
from .corpus import Corpus, make_corpus
from .method import encode_examples, train_compressor

CHAPTER = "efpc"

#: Methods in the quick table, with the words the chapter uses for them.
METHODS = {
    "efpc_task_aware": "EFPC, question prepended",
    "efpc_task_agnostic": "EFPC, no question",
    "llmlingua2": "LLMLingua-2-style (trained without questions)",
    "random": "random word dropping",
    "first_words": "keep the first words",
}


def rate_label(rate: float) -> str:
    """``0.25`` -> ``"4x"`` (the compression ratio of a kept fraction)."""
    return f"{1 / rate:.3g}x"


@dataclass
class QuickOutcome:
    """What the quick run measured (``metrics``, in percent) and what the chapter keeps exploring."""

    metrics: dict
    corpus: Corpus
    efpc: Compressor
    llmlingua2: Compressor
    rates: list[str] = field(default_factory=list)  # the metrics' rate keys, e.g. ["2x", "4x"]
    history: dict = field(default_factory=dict)

    def table(self) -> str:
        """The measured table as Markdown: one row per method, F1 and retention per rate."""
        rates = self.rates
        head = "| method | " + " | ".join(f"F1 task-aware @ {r} | answer kept @ {r}" for r in rates) + " |"
        lines = [head, "|---|" + "---|---|" * len(rates)]
        for key, name in METHODS.items():
            cells = []
            for r in rates:
                m = self.metrics[r][key]
                cells += [f"{m['f1_aware']:.1f}", f"{m['answer_retention']:.1f}"]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        return "\n".join(lines)


def fit_config(config: EFPCConfig, name: str) -> FitConfig:
    """The :class:`~companion.train.FitConfig` for one of the two compressors (``name`` picks its checkpoint folder)."""
    ckpt = str(Path(config.checkpoint_dir) / name) if config.checkpoint_dir is not None else None
    return FitConfig(
        steps=config.steps, batch_size=config.batch_size, lr=config.lr,
        warmup_steps=min(config.warmup_steps, config.steps),  # a shortened run keeps a valid warm-up
        weight_decay=config.weight_decay, seed=config.seed, checkpoint_dir=ckpt,
        checkpoint_every=config.checkpoint_every, progress=config.progress, log_every=5, device=config.device,
    )


def evaluate_quick(corpus: Corpus, efpc: Compressor, llmlingua2: Compressor, rates, random_draws: int = 5,
                   seed: int = 0) -> dict:
    """Score every method on the held-out passages at every rate (all numbers in percent).

    For each method and rate: ``f1_aware`` (kept words vs the task-aware labels), ``f1_agnostic``
    (vs the task-agnostic labels), ``answer_retention`` and the achieved ``rate``. Random dropping is
    averaged over ``random_draws`` draws per passage.

    Book section: *EFPC* "Quick run".
    """
    test = corpus.test
    words = [e.words for e in test]
    questions = [split_words(e.question) for e in test]
    scores = {
        "efpc_task_aware": [p for p, _ in efpc.score_prompts(words, questions)],
        "efpc_task_agnostic": [p for p, _ in efpc.score_prompts(words)],
        "llmlingua2": [p for p, _ in llmlingua2.score_prompts(words)],
        "first_words": [first_words_scores(w) for w in words],
    }
    out = {}
    for rate in rates:
        table = {}
        for method in METHODS:
            if method == "random":
                draws = [[random_scores(e.words, seed=seed * 100_003 + 1000 * i + d) for d in range(random_draws)]
                         for i, e in enumerate(test)]
            else:
                draws = [[s] for s in scores[method]]
            f1_aware, f1_agnostic, kept, achieved = [], [], [], []
            for e, per_example in zip(test, draws):
                for s in per_example:
                    c = compress_with_scores(e.words, s, rate)
                    f1_aware.append(keep_prf(c.kept, e.aware)[2])
                    f1_agnostic.append(keep_prf(c.kept, e.agnostic)[2])
                    kept.append(answer_retained(c.kept_words, e.answer))
                    achieved.append(c.rate)
            table[method] = {
                "f1_aware": 100 * float(np.mean(f1_aware)), "f1_agnostic": 100 * float(np.mean(f1_agnostic)),
                "answer_retention": 100 * float(np.mean(kept)), "rate": 100 * float(np.mean(achieved)),
            }
        out[rate_label(rate)] = table
    return out


def run_quick(config: EFPCConfig) -> QuickOutcome:
    """Train both compressors on the quick corpus, evaluate, record ``results/efpc.json``.

    Book section: *EFPC* "Quick run".
    """
    seed_everything(config.seed)
    corpus = make_corpus(config.n_train, config.n_test, config.seed, config.n_facts, config.n_fillers)
    tokenizer, base = load_token_classifier(config.model, trainable_layers=config.trainable_layers,
                                            num_layers=config.num_layers, seed=config.seed)
    if config.device:
        base.to(config.device)
    began = time.perf_counter()
    # frozen blocks run once here; both models share them (same pretrained weights)
    encoded = encode_examples(corpus.train, tokenizer, config.max_length, model=base)
    efpc_model, ll2_model = copy.deepcopy(base), base
    fits = {
        "efpc": train_compressor(efpc_model, tokenizer, encoded, config.p_prepend, fit_config(config, "efpc")),
        "llmlingua2": train_compressor(ll2_model, tokenizer, encoded, 0.0, fit_config(config, "llmlingua2")),
    }
    train_seconds = time.perf_counter() - began
    efpc = Compressor(efpc_model, tokenizer, config.max_length, config.aggregation, device=config.device)
    ll2 = Compressor(ll2_model, tokenizer, config.max_length, config.aggregation, device=config.device)
    metrics = evaluate_quick(corpus, efpc, ll2, config.rates, config.random_draws, config.seed)
    for r in metrics:
        base_f1 = metrics[r]["llmlingua2"]["f1_aware"]
        metrics[r]["relative_f1_gain"] = 100 * (metrics[r]["efpc_task_aware"]["f1_aware"] - base_f1) / max(base_f1, 1e-9)
    metrics.update({
        "train_seconds": train_seconds, "n_train": len(corpus.train), "n_test": len(corpus.test),
        "p_prepend": config.p_prepend, "steps": config.steps,
        "final_loss": {k: f.last("loss") for k, f in fits.items()},
    })
    layers = f"{config.num_layers} blocks" if config.num_layers else "all blocks"
    scale = (f"quick: all-MiniLM-L6-v2 cut to {layers}, top {config.trainable_layers} trained, "
             f"{config.steps} steps x {config.batch_size}; {len(corpus.train)} generated passages, "
             f"{len(corpus.test)} held-out; word-label F1 and answer retention, no LLM; CPU")
    results.write(CHAPTER, config.mode, metrics, scale)
    return QuickOutcome(metrics, corpus, efpc, ll2, [rate_label(r) for r in config.rates],
                        {k: f.history for k, f in fits.items()})


def run(config: EFPCConfig | None = None):
    """Run the preset: the quick experiment, or the full one (:func:`companion.efpc.full.run_full`).

    Book sections: *EFPC* "Quick run" and "Full run".
    """
    from .config import quick

    config = config or quick()
    if config.mode == "full":
        from .full import run_full

        return run_full(config)
    return run_quick(config)
