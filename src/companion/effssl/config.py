"""Presets for the efficient single-branch SSL experiment: ``quick()`` runs on the CPU in seconds on
scikit-learn's digits, ``study()`` is the same setting with ten seeds (a few minutes), ``full()`` is
CIFAR-10/100 with ResNet-18 against SimSiam at equal GPU time, ``colab()`` the same on CIFAR-10 in one
Colab session.

Book section: *Efficient SSL* "Quick run" and "Full run".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from .. import validation as v
from ..ssl.encoders import ENCODERS
from ..validation import check, invalid

#: The ablation ladder, cumulative from the top: each rung adds one piece to the rung before it
#: (feature calibration, then the corrected bank update, then SqrtKL); the last rung is the full method.
VARIANTS = {
    "npid": {"calibrate": False, "update": "momentum", "sqrt": False},
    "calibrated": {"calibrate": True, "update": "momentum", "sqrt": False},
    "corrected": {"calibrate": True, "update": "gradient", "sqrt": False},
    "sqrtkl": {"calibrate": True, "update": "gradient", "sqrt": True},
}
#: The full method: the last rung.
FULL_METHOD = "sqrtkl"
#: Two-view baselines from :mod:`companion.ssl`: SimSiam with its own recipe fields below, the others
#: with the shared benchmark's recipe (``companion.ssl.bench.RECIPES``: learning rate and heads).
BASELINES = ("simsiam", "moco", "byol", "simclr")
METHODS = (*VARIANTS, *BASELINES)
#: How many training steps a two-view baseline gets: its own ``baseline_steps`` (enough to learn),
#: half the single-branch steps (the same encoder passes) or the full method's wall time.
BUDGETS = ("steps", "passes", "time")


@dataclass
class EffSSLConfig:
    datasets: tuple = ("digits",)  # "digits" or "scenes" (quick), "cifar10", "cifar100" (full)
    n_train: int = 1200  # digits and scenes: training images (bank rows)
    n_test: int = 597
    classes: int = 4  # scenes only
    scale: tuple = (0.2, 0.55)  # scenes only: object radius range (fraction of half the side)
    clutter: int = 6  # scenes only
    background_styles: int = 4  # scenes only
    resolution: int = 8  # digits: native 8 px, the shared SSL benchmark (companion.ssl.bench)
    crop_scale: tuple = (0.5, 1.0)  # RandomResizedCrop area range of the augmentation (every method)
    blur: bool = False  # Gaussian blur in the augmentation (the CIFAR recipes of both papers have none)
    flip: float = 0.0  # horizontal-flip probability: digits are not mirror-invariant (CIFAR: 0.5)
    encoder: str = "tiny"
    encoder_kwargs: dict = field(default_factory=lambda: {"width": 8, "stem_stride": 1})
    dim: int = 64
    hidden: int = 128
    head_layers: int = 2
    steps: int | None = 60  # single-branch optimizer steps (None: use epochs)
    epochs: int | None = None
    batch_size: int = 64
    lr: float = 0.1
    optimizer: str = "sgd"
    weight_decay: float = 5e-4
    temperature: float = 0.2
    negatives: int | None = None  # None: every other bank row
    bank_momentum: float = 0.5
    bank_step: float | None = None  # None: (1 - m) / m
    sqrt_weight: float = 20.0
    sqrt_temperature: float = 1.0
    cutmix_alpha: float = 0.5
    methods: tuple = (*VARIANTS, "simsiam", "moco")  # the ladder and two-view baselines (BASELINES)
    baseline_budget: str = "steps"  # BUDGETS: "steps" (baseline_steps), "passes" or "time"
    baseline_steps: int = 150  # two-view steps of each baseline when baseline_budget == "steps"
    premise_margin: float = 1.0  # a baseline "learns": kNN above the untrained network's by this many points
    efficiency_margin: float = 1.0  # the full method vs a baseline: non-inferior within this many kNN points
    simsiam_lr: float | None = 0.2  # the benchmark's SimSiam recipe (None: the single branch's lr)
    simsiam_weight_decay: float | None = None  # None: the same weight decay
    simsiam_kwargs: dict = field(default_factory=lambda: {"proj_dim": 512, "pred_dim": 128, "proj_layers": 2})
    eval_points: int = 3  # kNN evaluations along each run (the last at the end)
    linear_epochs: int = 100  # linear probe on the frozen encoder at the end of each run
    knn_k: int = 200  # the benchmark's kNN: k = 200, tau = 0.1 (InstDisc defaults)
    knn_temperature: float = 0.1
    seed: int = 0  # the training seed of one run; run() sets it from seeds
    seeds: tuple = (0, 1, 2)
    data_seed: int = 0  # scenes: which scenes are drawn (digits: the benchmark's fixed split)
    device: str | None = None
    threads: int | None = 1  # CPU threads inside run() (fixed, so quick numbers repeat bit for bit)
    tier: str = "quick"  # the results tier run() records under: quick, study or full
    checkpoint_dir: str | None = None
    checkpoint_every: int = 0
    progress: bool = False

    def __post_init__(self):
        check(
            self, datasets=v.sequence(v.one_of("digits", "scenes", "cifar10", "cifar100"), distinct=True),
            n_train=v.non_negative_int, n_test=v.non_negative_int, classes=v.integer(2),
            scale=v.pair(v.number(0, 1, low_open=True)), clutter=v.non_negative_int, background_styles=v.positive_int,
            resolution=v.positive_int, crop_scale=v.pair(v.number(0, 1, low_open=True)), blur=v.flag(), flip=v.fraction,
            encoder=v.one_of(*ENCODERS), encoder_kwargs=v.mapping(v.text()), dim=v.positive_int, hidden=v.positive_int,
            head_layers=v.positive_int, steps=v.optional(v.positive_int), epochs=v.optional(v.positive_int),
            batch_size=v.positive_int, lr=v.positive, optimizer=v.one_of("sgd", "adamw"), weight_decay=v.non_negative,
            temperature=v.positive, negatives=v.optional(v.positive_int), bank_momentum=v.number(0, 1, high_open=True),
            bank_step=v.optional(v.non_negative), sqrt_weight=v.non_negative, sqrt_temperature=v.positive,
            cutmix_alpha=v.non_negative, methods=v.sequence(v.text(), distinct=True),
            baseline_budget=v.one_of(*BUDGETS), baseline_steps=v.positive_int, premise_margin=v.positive,
            efficiency_margin=v.positive, simsiam_lr=v.optional(v.positive),
            simsiam_weight_decay=v.optional(v.non_negative), simsiam_kwargs=v.mapping(v.text()),
            eval_points=v.positive_int, linear_epochs=v.positive_int, knn_k=v.positive_int,
            knn_temperature=v.positive, seed=v.seed, seeds=v.seeds, data_seed=v.seed, device=v.optional(v.device()),
            threads=v.threads, tier=v.one_of("quick", "study", "full"), checkpoint_dir=v.optional(v.path()),
            checkpoint_every=v.non_negative_int, progress=v.flag(),
        )
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown:
            invalid(self, "methods", f"name known methods, not {unknown} (unknown methods); choose from {METHODS}")
        if (self.steps is None) == (self.epochs is None):
            invalid(self, "epochs", f"be given exactly when steps is None (give exactly one of steps or epochs; "
                                    f"steps={self.steps!r})")
        small = [d for d in self.datasets if d in ("digits", "scenes")]
        if small and self.n_train < 1:
            invalid(self, "n_train", f"be >= 1 for {small[0]} (the training images)")
        if "digits" in self.datasets and self.n_train + self.n_test > 1797:
            invalid(self, "n_test", f"be <= {1797 - self.n_train}: digits has 1,797 images and n_train={self.n_train}")
        if "scenes" in self.datasets and self.n_test < 1:
            invalid(self, "n_test", "be >= 1 for scenes (the test images)")

    @property
    def mode(self) -> str:
        return "full" if any(d.startswith("cifar") for d in self.datasets) else "quick"

    def replace(self, **changes) -> "EffSSLConfig":
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return asdict(self)


def quick(**overrides) -> EffSSLConfig:
    """The shared SSL benchmark (:mod:`companion.ssl.bench`): scikit-learn's digits at their native 8 px
    (1,200 to pretrain on, 597 held out), crops of 50-100% without flips, a tiny CNN (width 8), 60
    single-branch steps of 64 images (about 3 epochs) for each rung of the ladder, two seeds, one CPU
    thread, three seeds; SimSiam and MoCo v2 (the benchmark's recipes) get 150 two-view steps, too few
    for SimSiam to learn reliably (their premises may fail here; the study gives them 600).
    ``datasets=("scenes",)`` (with ``resolution=32``) runs the synthetic scenes."""
    return EffSSLConfig().replace(**overrides)


def study(**overrides) -> EffSSLConfig:
    """The quick setting with ten seeds and 150 single-branch steps (8 epochs); SimSiam and MoCo v2 get
    the shared benchmark's 600 two-view steps (``companion.ssl.bench.STEPS``), what they need to learn on
    the digits, so the full method is compared with baselines that learn, at their cost. A few minutes on
    one CPU thread."""
    return EffSSLConfig(steps=150, eval_points=5, seeds=tuple(range(10)), baseline_steps=600,
                        tier="study").replace(**overrides)


def full(**overrides) -> EffSSLConfig:
    """CIFAR-10 and CIFAR-100, ResNet-18 (small stem) at 32 px, 200 epochs of batch 512, one seed. The released
    code's recipe for the single branch: a 3-layer head 512-2048-2048-2048 (d = 2048), tau = 0.2, 10,000
    sampled negatives, bank momentum 0.5, SqrtKL weight 20 on the raw cosines, CutMix alpha 0.5, SGD lr 1.0
    (momentum 0.9, weight decay 1e-4), crops of area 0.2-1, no blur. SimSiam keeps the toolkit's CIFAR
    recipe (lr 0.1, weight decay 5e-4, projector 2048, predictor 512) and gets the same GPU time as the
    full method's run: its step count is what fits in that time, so its learning-rate schedule completes."""
    from ..runtime import checkpoint_root

    return EffSSLConfig(
        datasets=("cifar10", "cifar100"), n_train=0, n_test=0, resolution=32, crop_scale=(0.2, 1.0), encoder="resnet18_small",
        encoder_kwargs={}, dim=2048, hidden=2048, head_layers=3, steps=None, epochs=200, batch_size=512, lr=1.0,
        weight_decay=1e-4, negatives=10_000, methods=("npid", "sqrtkl", "simsiam"), baseline_budget="time",
        simsiam_lr=0.1, simsiam_weight_decay=5e-4, simsiam_kwargs={"proj_dim": 2048, "pred_dim": 512, "proj_layers": 2},
        eval_points=8, knn_k=200, seeds=(0,), checkpoint_dir=str(checkpoint_root("effssl")),
        checkpoint_every=500, progress=True, flip=0.5, threads=None, tier="full",
    ).replace(**overrides)


#: Epochs of each run in :func:`colab`.
COLAB_EPOCHS = 40


def colab(**overrides) -> EffSSLConfig:
    """:func:`full` shortened to one Colab session (under an hour on a T4 by
    :func:`companion.effssl.run_hours`): CIFAR-10 only, the same recipe and methods (NPID, the full method,
    SimSiam at the same GPU time), 40 epochs instead of 200, checkpoints in their own folder."""
    from ..runtime import checkpoint_root

    return full(datasets=("cifar10",), epochs=COLAB_EPOCHS, checkpoint_dir=str(checkpoint_root("effssl-colab"))
                ).replace(**overrides)


#: ``python -m companion.effssl --preset NAME``.
PRESETS = {"quick": quick, "study": study, "colab": colab, "full": full}
