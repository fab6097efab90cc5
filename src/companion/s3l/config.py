"""Presets for the S3L experiment: ``quick()`` runs on a CPU in well under a minute on synthetic scenes,
``full()`` is MoCo v2 with ResNet-18 on CIFAR-100 at 16 vs 32 px on a GPU.

Book section: *S3L* "Quick run" and "Full run".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

BUDGETS = ("time", "flops", "epochs")
#: The contrastive and siamese methods S3L's code supports, from :mod:`companion.ssl`.
METHODS = ("moco", "simclr", "simsiam", "byol")


@dataclass
class S3LConfig:
    """One comparison: the same network pretrained along each schedule in ``arms``, then evaluated by kNN
    and fine-tuned at ``resolution``; an untrained network is the floor.

    ``arms`` maps a name to its stage resolutions (low to high); ``fractions`` to the share of the arm's
    budget each stage gets. ``budget`` says what the arms share:

    - ``"time"``: ``budget_s`` wall-clock seconds each. Steps per stage come from ``step_seconds``
      (seconds per step by resolution, measured once by ``benchmarks/s3l_speed.py`` on the reference
      machine and pinned so that the run repeats exactly) or, when it is ``None``, from timing a few
      steps on this machine first;
    - ``"flops"``: ``budget_gflops`` training GFLOPs each (counted, so the same on every machine);
    - ``"epochs"``: ``epochs`` passes over the data each, whatever they cost (the paper's tables).

    Book sections: *S3L* "Quick run" and "Full run".
    """

    dataset: str = "scenes"  # "scenes" (quick) or "cifar100" (full)
    n_train: int = 1000  # scenes only
    n_test: int = 400
    classes: int = 4
    object_scale: tuple = (0.5, 0.85)  # scenes: object radius as a fraction of half the side
    clutter: int = 0
    resolution: int = 32  # the full (target) resolution: data, kNN and fine-tuning
    arch: str = "resnet10"
    width: int = 8
    small_stem: bool = True
    method: str = "moco"
    method_kwargs: dict = field(default_factory=lambda: {"dim": 64, "queue_size": 512, "temperature": 0.2, "momentum": 0.99})
    queue: str = "keep"  # MoCo's queue between stages: "keep" (S3L), "reset" or "refill"
    augment: dict = field(default_factory=lambda: {"jitter": (0.4, 0.4, 0.8, 0.5), "p_gray": 0.5})
    arms: dict = field(default_factory=lambda: {"low": (16,), "full": (32,), "multistage": (8, 16, 32)})
    fractions: dict = field(default_factory=dict)  # arm -> share of the budget per stage (default: equal)
    budget: str = "time"
    budget_s: float = 5.0
    step_seconds: dict | None = None
    budget_gflops: float | None = None
    epochs: int | None = None
    batch_size: int = 64
    lr: float = 0.06
    weight_decay: float = 5e-4
    # fine-tuning (at ``resolution``, every arm and the untrained floor alike); False: kNN only
    finetune: bool = True
    warmup_steps: int = 20
    warmup_epochs: int | None = None
    finetune_steps: int = 60
    finetune_epochs: int | None = None
    finetune_batch_size: int = 64
    finetune_lr: float = 0.05
    finetune_weight_decay: float = 5e-4
    mixup_alpha: float = 0.0
    knn_k: int = 20
    knn_temperature: float = 0.1
    seed: int = 0  # weights, augmentations and data order
    data_seed: int = 0  # which scenes are drawn
    device: str | None = None
    checkpoint_dir: str | None = None
    checkpoint_every: int = 0
    progress: bool = False
    download: bool = True

    def __post_init__(self):
        if self.budget not in BUDGETS:
            raise ValueError(f"budget must be one of {BUDGETS}, got {self.budget!r}")
        if self.budget == "time" and not (self.budget_s and self.budget_s > 0):
            raise ValueError(f"budget='time' needs a positive budget_s, got {self.budget_s!r}")
        if self.budget == "flops" and not (self.budget_gflops and self.budget_gflops > 0):
            raise ValueError(f"budget='flops' needs a positive budget_gflops, got {self.budget_gflops!r}")
        if self.budget == "epochs" and not (self.epochs and self.epochs > 0):
            raise ValueError(f"budget='epochs' needs a positive number of epochs, got {self.epochs!r}")
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if not self.arms:
            raise ValueError("arms is empty: give at least one pretraining schedule")
        for name, stages in self.arms.items():
            if "." in name or name == "untrained":
                raise ValueError(f"arm name {name!r} is reserved or contains a dot")
            shares = self.fractions.get(name)
            if shares is not None and len(shares) != len(stages):
                raise ValueError(f"arm {name!r} has {len(stages)} stages but {len(shares)} budget fractions")

    def stage_fractions(self, arm: str) -> tuple[float, ...]:
        """The share of the budget each stage of ``arm`` gets (equal shares unless ``fractions`` says)."""
        n = len(self.arms[arm])
        return tuple(self.fractions.get(arm, (1.0 / n,) * n))

    @property
    def mode(self) -> str:
        return "quick" if self.dataset == "scenes" else "full"

    def replace(self, **changes) -> "S3LConfig":
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return asdict(self)


#: Seconds per pretraining step of the quick preset (SimCLR, batch 64, the quick network) by resolution, measured with
#: ``python benchmarks/s3l_speed.py --threads 1`` (CPU time of one core): what "equal wall-clock" means
#: in the quick preset. Pinned so that the quick run gives the same numbers every time.
QUICK_STEP_SECONDS = {8: 0.013, 16: 0.023, 32: 0.066}


def quick(**overrides) -> S3LConfig:
    """Synthetic scenes at 32 px (1,000 to pretrain and fine-tune on, 400 held out; large objects, no
    clutter), a ResNet-10 of width 8 with the small stem and without its last stage, SimCLR (the contrastive
    method that learns fastest in a few hundred CPU steps; MoCo's momentum encoder and queue barely move in
    that time), 5 s of one CPU core per schedule: 16 px, 32 px, and 8 -> 16 -> 32 px with a third of the
    budget each; then 20 warm-up and 60 fine-tuning steps at 32 px. Book section: *S3L* "Quick run"."""
    return S3LConfig(
        method="simclr", method_kwargs={"dim": 64, "temperature": 0.5}, step_seconds=dict(QUICK_STEP_SECONDS),
    ).replace(**overrides)


def full(**overrides) -> S3LConfig:
    """CIFAR-100 on a GPU: ResNet-18 (small stem) without ``layer4``, MoCo v2 as S3L runs it (K = 4096,
    tau = 0.2, m = 0.999, SGD lr 0.03 per 128 images, weight decay 1e-4), 200 epochs per schedule: 16 px,
    32 px and 16 -> 32 px (150 + 50 epochs, the queue kept); then 10 warm-up epochs of ``layer4`` + ``fc``
    and 60 fine-tuning epochs at 32 px (SGD lr 0.1, batch 128) with mixup (alpha 1); checkpoints every 500
    steps. Book section: *S3L* "Full run"."""
    from ..data import data_root

    return S3LConfig(
        dataset="cifar100", resolution=32, arch="resnet18", width=64, small_stem=True, method="moco",
        method_kwargs={"dim": 128, "queue_size": 4096, "temperature": 0.2, "momentum": 0.999},
        augment={}, arms={"low": (16,), "full": (32,), "multistage": (16, 32)},
        fractions={"multistage": (0.75, 0.25)}, budget="epochs", epochs=200, batch_size=256, lr=0.06,
        weight_decay=1e-4, warmup_steps=0, warmup_epochs=10, finetune_steps=0, finetune_epochs=60,
        finetune_batch_size=128, finetune_lr=0.1, finetune_weight_decay=5e-4, mixup_alpha=1.0, knn_k=200,
        progress=True, checkpoint_dir=str(data_root().parent / "checkpoints" / "s3l"), checkpoint_every=500,
    ).replace(**overrides)
