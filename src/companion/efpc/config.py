"""Presets for the EFPC experiment: ``quick()`` (CPU, packaged MiniLM, one seed), ``study()`` (the same
with ten seeds) and ``full()`` (GPU, the paper's data).

Book sections: *EFPC* "Quick run" and "Full run".
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace


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
    checkpoint_dir: str | None = None  # full mode: default data_root().parent / "checkpoints" / "efpc"
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
    meetingbank: str = "microsoft/MeetingBank-LLMCompressed"
    qa_dataset: str = "rajpurkar/squad"
    aware_fraction: float = 0.1  # task-aware examples added, as a share of MeetingBank's (the paper's 1% / 10%)
    alignment_window: int = 400
    longbench_tasks: tuple[str, ...] = ("narrativeqa", "qasper", "multifieldqa_en")
    eval_per_task: int | None = 100  # None: every example (200/200/150)
    llm: str = "Qwen/Qwen2.5-1.5B-Instruct"
    max_new_tokens: int = 64
    force_tokens: tuple[str, ...] = (".", "?", "!")
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.mode not in ("quick", "study", "full"):
            raise ValueError(f"mode must be 'quick', 'study' or 'full', got {self.mode!r}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be distinct and at least one, got {self.seeds!r}")
        if self.claim_rate not in self.rates:
            raise ValueError(f"claim_rate {self.claim_rate} must be one of the rates {self.rates}")
        if not 0.0 <= self.p_prepend <= 1.0:
            raise ValueError(f"p_prepend must be in [0, 1], got {self.p_prepend}")
        for r in self.rates:
            if not 0 < r <= 1:
                raise ValueError(f"every rate must be in (0, 1] (the kept fraction), got {r}")


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
    """
    base = EFPCConfig(
        mode="full", model="FacebookAI/xlm-roberta-large", num_layers=None, trainable_layers=None,
        steps=2000, batch_size=16, lr=1e-5, warmup_steps=100, weight_decay=0.01, checkpoint_every=200,
        rates=(0.25,), p_prepend=0.5,
    )
    return replace(base, **overrides)
