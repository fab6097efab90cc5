"""Presets for the EFPC experiment: ``quick()`` (CPU, packaged MiniLM, one seed), ``study()`` (the same
with ten seeds), ``full()`` (GPU, the paper's data) and ``colab()`` (the full run shortened to a Colab session).

Book sections: *EFPC* "Quick run" and "Full run".
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .. import validation as v
from ..validation import check, invalid


@dataclass
class EFPCConfig:
    """Everything the experiment needs; ``quick()`` and ``full()`` fill it in."""

    mode: str = "quick"  # the tier recorded: "quick", "study" or "full"
    seed: int = 0
    seeds: tuple[int, ...] = (0,)  # quick/study: one compressor pair per seed
    threads: int = 1  # CPU threads while training and scoring (fixed: bit-repeatable results)
    claim_rate: float = 0.25  # the rate the claims are measured at (4x)
    # the compressor
    model: str = "minilm"  # "minilm" (packaged) or a Hugging Face name
    num_layers: int | None = 4  # keep only the first blocks (None: all)
    trainable_layers: int | None = 1  # train only the top blocks (None: all, embeddings included)
    max_length: int = 512
    aggregation: str = "mean"
    # training: EFPC (instruction prepended with probability p) and LLMLingua-2 (p = 0)
    p_prepend: float = 0.5
    steps: int = 80
    batch_size: int = 8
    lr: float = 1e-3
    warmup_steps: int = 8
    weight_decay: float = 0.0
    accumulate: int = 1  # micro-batches per batch (the same step with less GPU memory; full: a T4's 15 GB)
    gradient_checkpointing: bool = False  # recompute activations in backward (less memory, about 30% slower)
    checkpoint_dir: str | None = None  # full mode: default runtime.checkpoint_root("efpc")
    checkpoint_every: int = 0
    device: str | None = None
    progress: bool = True
    # evaluation
    rates: tuple[float, ...] = (0.5, 0.25)  # kept fractions: 2x and 4x
    random_draws: int = 3
    # quick corpus
    n_train: int = 160
    n_test: int = 48
    n_facts: int = 3
    n_fillers: int = 1
    # full run only
    meetingbank: str = "microsoft/MeetingBank-LLMCompressed"  # or a local JSON-lines copy of its records
    qa_dataset: str = "rajpurkar/squad"  # or a local JSON-lines copy
    longbench: str = "THUDM/LongBench"  # the hub dataset, or a local copy of its data.zip
    aware_fraction: float = 0.1  # task-aware examples added, as a share of MeetingBank's (the paper's 1% / 10%)
    alignment_window: int = 400
    longbench_tasks: tuple[str, ...] = ("narrativeqa", "qasper", "multifieldqa_en")
    eval_per_task: int | None = 100  # None: every example (200/200/150)
    llm: str = "Qwen/Qwen2.5-1.5B-Instruct"
    max_new_tokens: int = 64
    force_tokens: tuple[str, ...] = (".", "?", "!")
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        from ..compress.inference import AGGREGATIONS
        from .corpus import _FACTS, FILLERS

        check(
            self, mode=v.one_of("quick", "study", "full"), seed=v.seed, seeds=v.seeds, threads=v.positive_int,
            claim_rate=v.number(0, 1, low_open=True), model=v.text(), num_layers=v.optional(v.positive_int),
            trainable_layers=v.optional(v.positive_int), max_length=v.integer(8, 512),
            aggregation=v.one_of(*AGGREGATIONS), p_prepend=v.fraction, steps=v.positive_int, batch_size=v.positive_int,
            lr=v.positive, warmup_steps=v.non_negative_int, weight_decay=v.non_negative,
            checkpoint_dir=v.optional(v.path()), checkpoint_every=v.non_negative_int, device=v.optional(v.device()),
            progress=v.flag(), rates=v.sequence(v.number(0, 1, low_open=True), distinct=True),
            random_draws=v.positive_int, n_train=v.positive_int, n_test=v.positive_int,
            n_facts=v.integer(1, len(_FACTS)),
            n_fillers=v.integer(0, len(FILLERS)), meetingbank=v.text(), qa_dataset=v.text(), longbench=v.text(),
            aware_fraction=v.fraction,
            alignment_window=v.positive_int, longbench_tasks=v.sequence(v.text(), distinct=True),
            eval_per_task=v.optional(v.positive_int), llm=v.text(), max_new_tokens=v.positive_int,
            force_tokens=v.sequence(v.text(), non_empty=False, distinct=True), extra=v.mapping(v.text()),
            accumulate=v.positive_int, gradient_checkpointing=v.flag(),
        )
        if self.batch_size % self.accumulate:
            invalid(self, "accumulate", f"divide batch_size = {self.batch_size} (equal micro-batches)")
        if self.claim_rate not in self.rates:
            invalid(self, "claim_rate", f"be one of the rates {tuple(self.rates)}")
        if self.warmup_steps > self.steps:
            invalid(self, "warmup_steps", f"be <= steps = {self.steps}")
        if None not in (self.num_layers, self.trainable_layers) and self.trainable_layers > self.num_layers:
            invalid(self, "trainable_layers", f"be <= num_layers = {self.num_layers}")

    @property
    def tier(self) -> str:
        """The results tier this run records (the preset's name)."""
        return self.mode


def quick(**overrides) -> EFPCConfig:
    """CPU preset: MiniLM cut to 4 blocks, top block trained for 80 steps of 8 passages, twice
    (EFPC and LLMLingua-2-style), one seed; well under a minute on one thread.
    """
    return replace(EFPCConfig(), **overrides)


def study(**overrides) -> EFPCConfig:
    """The quick run with ten seeds (corpus, head and training order): claims paired over seeds."""
    return replace(EFPCConfig(mode="study", seeds=tuple(range(10))), **overrides)


def full(**overrides) -> EFPCConfig:
    """GPU preset: XLM-RoBERTa-large on MeetingBank-LLMCompressed (+10% SQuAD task-aware data),
    evaluated on LongBench single-document QA at 4x with a small instruction-tuned LLM answering.

    Batch 16 runs as 4 micro-batches of 4 (``accumulate=4``, the same steps), so training fits a Colab
    T4's 15 GB: about 13 GB by :func:`companion.compress.training_memory` against about 23 GB for 16 at once.
    """
    base = EFPCConfig(
        mode="full", model="FacebookAI/xlm-roberta-large", num_layers=None, trainable_layers=None,
        steps=2000, batch_size=16, accumulate=4, lr=1e-5, warmup_steps=100, weight_decay=0.01, checkpoint_every=200,
        rates=(0.25,), p_prepend=0.5,
    )
    return replace(base, **overrides)


def colab(**overrides) -> EFPCConfig:
    """The full run shortened to a Colab T4 session (under an hour by :func:`companion.efpc.run_hours`):
    the same two compressors, data, rate and answering LLM, with LLMLingua-2-small's encoder
    (multilingual BERT-base, a third of XLM-R-large's depth and width) trained 1,000 steps instead of
    2,000, judged on 30 questions per LongBench task instead of 100. Tier ``full``.
    """
    return full(**{"model": "google-bert/bert-base-multilingual-cased", "steps": 1000, "warmup_steps": 50,
                   "checkpoint_every": 100, "eval_per_task": 30, **overrides})


#: Every preset by name (``python -m companion.efpc --preset NAME``).
PRESETS = {"quick": quick, "study": study, "colab": colab, "full": full}
