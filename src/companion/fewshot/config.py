"""Presets for the worst-case few-shot experiment: ``quick()`` (CPU, digits) and ``full()`` (GPU, CIFAR-FS).

Book section: *Worst case* "Quick run" and "Full run".
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .finetune import FineTune

#: The methods compared, in the order of the paper's story: two baselines, then SR, AC and the ensemble.
METHODS = ("prototypes", "finetune", "sr", "ac_sr", "ac_ensr")

METHOD_LABELS = {
    "prototypes": "prototypes (nearest class mean)",
    "finetune": "fine-tune",
    "sr": "fine-tune + SR",
    "ac_sr": "+ SR + AC",
    "ac_ensr": "+ SR + AC + ensemble (AC+EnSR)",
    "finetune_fixed_head": "fine-tune, fixed-norm cosine head",
}


@dataclass
class FewShotConfig:
    """Everything one run needs. Accuracies are recorded in percent."""

    preset: str
    dataset: str  # "digits" (scikit-learn, bundled) or "cifar_fs" (CIFAR-100, 64/16/20 classes)
    backbone: str  # "mlp" or "resnet12"
    widths: tuple[int, ...]
    dropout: float = 0.0
    # pre-training on the base classes (cross-entropy, label smoothing, random resized crops)
    pretrain_steps: int = 600
    pretrain_batch: int = 64
    pretrain_lr: float = 3e-3
    pretrain_optimizer: str = "adamw"
    pretrain_weight_decay: float = 5e-4
    pretrain_warmup: int = 0
    pretrain_crop: tuple[float, float] | None = (0.4, 1.0)
    pretrain_flip: bool = False
    # episodes
    n_way: int = 5
    shots: tuple[int, ...] = (1, 5)
    q_query: int = 15
    n_episodes: int = 100
    # per-episode fine-tuning, shared by every fine-tuning method
    finetune: FineTune = field(default_factory=FineTune)
    beta: float = 0.1  # SR weight
    tune_blocks: int = 1  # AC: the last block(s) and the head train
    members: int = 4  # ensemble size
    methods: tuple[str, ...] = METHODS
    ac_sweep: tuple[int, ...] = ()  # extra "+SR, tune the last t blocks" runs for the AC figure
    chunk: int = 100  # episodes fine-tuned in parallel
    seed: int = 0
    seeds: tuple[int, ...] = ()  # several pre-training/episode seeds (study); () = just ``seed``
    threads: int | None = 1  # CPU threads (fixed: bit-repeatable quick results); None = torch's default
    device: str | None = None
    checkpoint_dir: str | None = None  # full: pre-training checkpoints and finished episode chunks
    data_root: str | None = None
    download: bool = True
    progress: bool = False

    def __post_init__(self):
        unknown = [m for m in self.methods if m not in METHODS + ("finetune_fixed_head",)]
        if unknown:
            raise ValueError(f"unknown methods {unknown}; choose from {METHODS}")
        if self.n_episodes < 1 or self.chunk < 1:
            raise ValueError(f"n_episodes and chunk must be positive, got {self.n_episodes}, {self.chunk}")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be distinct, got {self.seeds}")
        if not self.shots or min(self.shots) < 1:
            raise ValueError(f"shots must be positive integers, got {self.shots}")

    def method(self, name: str, tune_blocks: int | None = None) -> FineTune | None:
        """The :class:`FineTune` settings of ``name`` (``None`` for prototypes, which does not train)."""
        if name == "prototypes":
            return None
        if name == "finetune":
            return replace(self.finetune, beta=0.0, tune_blocks=None, members=1)
        if name == "finetune_fixed_head":
            return replace(self.finetune, beta=0.0, tune_blocks=None, members=1, learnable_norm=False)
        if name == "sr":
            return replace(self.finetune, beta=self.beta, tune_blocks=tune_blocks, members=1)
        if name == "ac_sr":
            return replace(self.finetune, beta=self.beta, tune_blocks=self.tune_blocks, members=1)
        if name == "ac_ensr":
            return replace(self.finetune, beta=self.beta, tune_blocks=self.tune_blocks, members=self.members)
        raise ValueError(f"unknown method {name!r}; choose from {METHODS + ('finetune_fixed_head',)}")


def quick() -> FewShotConfig:
    """CPU, seconds: scikit-learn digits (base 0-4, novel 5-9), an MLP backbone, 100 episodes per shot.

    Fine-tuning is shortened (40 steps, 64 base images per step, head scale 10 so the head
    converges in 40 steps, milder crops and no flips, which would change what a digit is);
    everything else follows the paper's code, the head included (``distLinear``, a learnable norm
    per class). Plain fine-tuning with a fixed-norm cosine head runs beside it, to show what the head costs.
    """
    return FewShotConfig(
        preset="quick", dataset="digits", backbone="mlp", widths=(128, 128, 64),
        pretrain_steps=600, pretrain_batch=64, pretrain_lr=3e-3, pretrain_crop=(0.4, 1.0), pretrain_flip=False,
        n_episodes=100,
        finetune=FineTune(steps=40, aux_batch=64, head_scale=10.0, crop_scale=(0.4, 1.0), flip=False),
        beta=0.1, tune_blocks=1, members=4, ac_sweep=(), chunk=100,
        methods=METHODS + ("finetune_fixed_head",),
    )


def study() -> FewShotConfig:
    """The quick run with five seeds (pre-training, episodes, heads): 500 episodes per shot in all.

    The worst-case claims are paired over the seeds, the mean claims over the 500 episodes.
    """
    return replace(quick(), preset="study", seeds=(0, 1, 2, 3, 4), methods=METHODS)


def full() -> FewShotConfig:
    """GPU: CIFAR-FS (64 base / 16 validation / 20 novel CIFAR-100 classes), ResNet-12, 500 episodes per shot.

    Per-episode fine-tuning as in the paper's code: 100 SGD steps, lr 0.1, 256 base images per step,
    beta 0.1, head scale 2, crops of scale 0.2-1 with flips, 4 ensemble members, AC = last block.
    Pre-training: 90 epochs of cross-entropy on the 38,400 base images (the paper starts from S2M2_R
    weights instead, which are not public in a checked form).
    """
    return FewShotConfig(
        preset="full", dataset="cifar_fs", backbone="resnet12", widths=(64, 160, 320, 640), dropout=0.1,
        pretrain_steps=27_000, pretrain_batch=128, pretrain_lr=0.05, pretrain_optimizer="sgd",
        pretrain_weight_decay=5e-4, pretrain_warmup=500, pretrain_crop=(0.25, 1.0), pretrain_flip=True,
        n_episodes=500,
        finetune=FineTune(steps=100, aux_batch=256, head_scale=2.0, crop_scale=(0.2, 1.0), flip=True),
        beta=0.1, tune_blocks=1, members=4, ac_sweep=(), chunk=4, progress=True, threads=None,
    )


def preset(name: str) -> FewShotConfig:
    if name == "quick":
        return quick()
    if name == "study":
        return study()
    if name == "full":
        return full()
    raise ValueError(f"unknown preset {name!r}; choose 'quick', 'study' or 'full'")
