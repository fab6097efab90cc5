"""Presets for the worst-case few-shot experiment: ``quick()`` (CPU, digits), ``full()`` (GPU, CIFAR-FS)
and ``colab()`` (the full preset shortened to a Colab session).

Book section: *Worst case* "Quick run" and "Full run".
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .. import validation as v
from ..validation import check, invalid
from .finetune import FineTune

#: Novel classes of each data set: an episode draws ``n_way`` of them.
NOVEL_CLASSES = {"digits": 5, "cifar_fs": 20}

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
        known = METHODS + ("finetune_fixed_head",)
        check(
            self, preset=v.one_of("quick", "study", "full"), dataset=v.one_of(*NOVEL_CLASSES),
            backbone=v.one_of("mlp", "resnet12"), widths=v.sequence(v.positive_int),
            dropout=v.number(0, 1, high_open=True), pretrain_steps=v.positive_int, pretrain_batch=v.positive_int,
            pretrain_lr=v.positive, pretrain_optimizer=v.one_of("adamw", "sgd"), pretrain_weight_decay=v.non_negative,
            pretrain_warmup=v.non_negative_int, pretrain_crop=v.optional(v.pair(v.number(0, 1, low_open=True))),
            pretrain_flip=v.flag(), n_way=v.integer(2), shots=v.sequence(v.positive_int, distinct=True),
            q_query=v.positive_int, n_episodes=v.positive_int, finetune=v.instance(FineTune), beta=v.non_negative,
            tune_blocks=v.positive_int, members=v.positive_int, methods=v.sequence(v.text(), distinct=True),
            ac_sweep=v.sequence(v.positive_int, non_empty=False, distinct=True), chunk=v.positive_int, seed=v.seed,
            seeds=v.seeds_or_empty, threads=v.threads,
            device=v.optional(v.device()), checkpoint_dir=v.optional(v.path()), data_root=v.optional(v.path()),
            download=v.flag(), progress=v.flag(),
        )
        unknown = [m for m in self.methods if m not in known]
        if unknown:
            invalid(self, "methods", f"name known methods, not {unknown} (unknown methods); choose from {known}")
        if self.n_way > NOVEL_CLASSES[self.dataset]:
            invalid(self, "n_way", f"be <= {NOVEL_CLASSES[self.dataset]}, the novel classes of {self.dataset}")
        blocks = len(self.widths)  # the backbone has one block per width
        for name, most in (("tune_blocks", self.tune_blocks), ("ac_sweep", max(self.ac_sweep, default=0))):
            if most > blocks:
                invalid(self, name, f"tune at most the {blocks} blocks of widths={tuple(self.widths)}")
        if self.pretrain_warmup > self.pretrain_steps:
            invalid(self, "pretrain_warmup", f"be <= pretrain_steps = {self.pretrain_steps}")

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

    Every claim is paired over the five seeds (each seed the mean over its episodes or blocks).
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


def colab() -> FewShotConfig:
    """The full preset shortened to one Colab session (under an hour by :func:`companion.fewshot.run_hours`):
    the same data, backbone, fine-tuning and methods, but 9,000 pre-training steps (30 epochs of the base
    images instead of 90) and 80 fixed 5-way 5-shot episodes (4 blocks of 20 for the worst case) instead of
    500 episodes of each shot. Recorded under the full tier, as a customised run.
    """
    return replace(full(), pretrain_steps=9_000, shots=(5,), n_episodes=80)


#: Preset name -> factory (``python -m companion.fewshot --preset NAME``).
PRESETS = {"quick": quick, "study": study, "colab": colab, "full": full}


def preset(name: str) -> FewShotConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {tuple(PRESETS)}")
    return PRESETS[name]()
