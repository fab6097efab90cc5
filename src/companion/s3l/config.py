"""Presets for the S3L experiment: ``quick()`` runs on a CPU in under a minute on the shared SSL benchmark
(digits, :mod:`companion.ssl.bench`) at 8 vs 16 px, ``study()`` is the same with ten seeds and the
multi-stage schedule, ``full()`` is MoCo v2 with ResNet-18 on CIFAR-100 at 16 vs 32 px on a GPU, and
``colab()`` the same shortened to a Colab session.

Book section: *S3L* "Quick run" and "Full run".
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

from .. import validation as v
from ..validation import check, invalid
from .architecture import ARCHS

BUDGETS = ("steps", "time", "flops", "epochs")
#: The contrastive and siamese methods S3L's code supports, from :mod:`companion.ssl`.
METHODS = ("moco", "simclr", "simsiam", "byol")


@dataclass
class S3LConfig:
    """One comparison: the same network pretrained along each schedule in ``arms``, then evaluated by kNN
    and fine-tuned at ``resolution``; an untrained network is the floor.

    ``arms`` maps a name to its stage resolutions (low to high); ``fractions`` to the share of the arm's
    budget each stage gets. ``budget`` says what the arms share:

    - ``"steps"``: ``budget_steps`` optimizer steps each (split by ``fractions``): equal work per step, so
      a lower resolution costs fewer FLOPs; bit-repeatable (the quick and study presets);
    - ``"time"``: ``budget_s`` wall-clock seconds each (not repeatable: kept for exploration). Steps per stage come from ``step_seconds``
      (seconds per step by resolution, measured once by ``benchmarks/s3l_speed.py`` on the reference
      machine and pinned so that the run repeats exactly) or, when it is ``None``, from timing a few
      steps on this machine first;
    - ``"flops"``: ``budget_gflops`` training GFLOPs each (counted, so the same on every machine);
    - ``"epochs"``: ``epochs`` passes over the data each, whatever they cost (the paper's tables).

    Book sections: *S3L* "Quick run" and "Full run".
    """

    dataset: str = "digits"  # "digits" or "glyphs" (the shared SSL benchmark's data), "scenes", "cifar100" (full)
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
    blur: bool = True  # Gaussian blur in pretraining, the same for every arm and stage (official aug-plus)
    arms: dict = field(default_factory=lambda: {"low": (16,), "full": (32,), "multistage": (8, 16, 32)})
    fractions: dict = field(default_factory=dict)  # arm -> share of the budget per stage (default: equal)
    budget: str = "steps"
    budget_steps: int | None = 200
    budget_s: float | None = None
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
    finetune_flip: float = 0.5  # probability of a horizontal flip while fine-tuning (0 for digits)
    linear_probe: bool = True  # also a linear probe on the frozen features (the sanity_linear claim)
    # premise_resolution: a network trained with labels at the full resolution beats it at the small one
    premise: bool = True
    premise_steps: int = 50  # supervised steps at each of the two resolutions (fine-tuning recipe)
    premise_seeds: tuple | None = None  # None: the run's seeds
    premise_margin: float = 3.0  # points; fixed before any result was seen
    knn_k: int = 20
    knn_temperature: float = 0.1
    seed: int = 0  # weights, augmentations and data order (one run)
    seeds: tuple = (0,)  # run() repeats the comparison for each
    tier: str = "quick"  # the results tier a run is recorded under: quick, study or full
    threads: int | None = 1  # CPU threads for the whole run (pinned: repeatable numbers)
    data_seed: int = 0  # which scenes are drawn
    device: str | None = None
    checkpoint_dir: str | None = None
    checkpoint_every: int = 0
    progress: bool = False
    download: bool = True

    def __post_init__(self):
        resolutions = v.sequence(v.positive_int)
        check(
            self, dataset=v.one_of("digits", "glyphs", "scenes", "cifar100"), n_train=v.positive_int,
            n_test=v.positive_int,
            classes=v.integer(2), object_scale=v.pair(v.number(0, 1, low_open=True)), clutter=v.non_negative_int,
            resolution=v.positive_int, arch=v.one_of(*ARCHS), width=v.positive_int, small_stem=v.flag(),
            method=v.one_of(*METHODS), method_kwargs=v.mapping(v.text()), queue=v.one_of("keep", "reset", "refill"),
            augment=v.mapping(v.text()), blur=v.flag(), arms=v.mapping(v.text(), resolutions),
            fractions=v.mapping(v.text(), v.sequence(v.number(0, 1, low_open=True))), budget=v.one_of(*BUDGETS),
            budget_steps=v.optional(v.positive_int), budget_s=v.optional(v.positive),
            step_seconds=v.optional(v.mapping(v.positive_int, v.positive)), budget_gflops=v.optional(v.positive),
            epochs=v.optional(v.positive_int), batch_size=v.positive_int, lr=v.positive, weight_decay=v.non_negative,
            finetune=v.flag(), warmup_steps=v.non_negative_int, warmup_epochs=v.optional(v.positive_int),
            finetune_steps=v.non_negative_int, finetune_epochs=v.optional(v.positive_int),
            finetune_batch_size=v.positive_int, finetune_lr=v.positive, finetune_weight_decay=v.non_negative,
            mixup_alpha=v.non_negative, finetune_flip=v.fraction, linear_probe=v.flag(), premise=v.flag(),
            premise_steps=v.positive_int, premise_seeds=v.optional(v.seeds), premise_margin=v.positive,
            knn_k=v.positive_int,
            knn_temperature=v.positive, seed=v.seed, seeds=v.seeds, tier=v.one_of("quick", "study", "full"),
            threads=v.threads, data_seed=v.seed, device=v.optional(v.device()), checkpoint_dir=v.optional(v.path()),
            checkpoint_every=v.non_negative_int, progress=v.flag(), download=v.flag(),
        )
        amount = {"steps": "budget_steps", "time": "budget_s", "flops": "budget_gflops",
                  "epochs": "epochs"}[self.budget]
        if getattr(self, amount) is None:
            invalid(self, amount, f"be given with budget={self.budget!r}, a positive number")
        if not self.arms:
            invalid(self, "arms", "name at least one pretraining schedule")
        if "blur" in self.augment:
            invalid(self, "augment", "leave blur to the config's own blur field (one setting for every arm)")
        for name, stages in self.arms.items():
            if "." in name or name == "untrained":
                invalid(self, "arms", f"not use the reserved name 'untrained' or a name with a dot (arm name {name!r})")
            if any(b <= a for a, b in zip(stages, stages[1:])):
                invalid(self, "arms", f"list each arm's stage resolutions increasing strictly (arm {name!r}: {stages})")
        for name, shares in self.fractions.items():
            # the arms share one budget: fractions that miss an arm, do not add up or round to no step break it
            if name not in self.arms:
                invalid(self, "fractions", f"name only arms in {tuple(self.arms)} (unknown arm {name!r})")
            stages = self.arms[name]
            if len(shares) != len(stages):
                invalid(self, "fractions", f"give one share per stage: arm {name!r} has {len(stages)} stages "
                                          f"but {len(shares)} budget fractions")
            if not math.isclose(math.fsum(shares), 1.0, abs_tol=1e-9):
                invalid(self, "fractions", f"sum to 1 for each arm (arm {name!r} sums to {math.fsum(shares):g})")
            units = {"steps": self.budget_steps, "epochs": self.epochs}.get(self.budget)
            if units is not None and any(round(f * units) < 1 for f in shares):
                invalid(self, "fractions", f"give every stage at least one of the {units} budget {self.budget} "
                                          f"(arm {name!r}: {tuple(shares)})")
        if self.finetune:
            if self.warmup_epochs is None and self.warmup_steps < 1:
                invalid(self, "warmup_steps", "be >= 1 when warmup_epochs is None and finetune is True")
            if self.finetune_epochs is None and self.finetune_steps < 1:
                invalid(self, "finetune_steps", "be >= 1 when finetune_epochs is None and finetune is True")

    def stage_fractions(self, arm: str) -> tuple[float, ...]:
        """The share of the budget each stage of ``arm`` gets (equal shares unless ``fractions`` says)."""
        n = len(self.arms[arm])
        return tuple(self.fractions.get(arm, (1.0 / n,) * n))

    @property
    def mode(self) -> str:
        return self.tier

    def replace(self, **changes) -> "S3LConfig":
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return asdict(self)


#: Supervised steps per premise network in the study: at 50 (the fine-tuning length) a 16 px network had
#: not yet caught up with an 8 px one (40 against 48%, 3 seeds), at 100 they were level (72.6 and 72.9%).
PREMISE_STEPS = 200

#: Seconds per pretraining step (SimCLR, batch 64, ResNet-10 of width 8 on 32 px scenes) by resolution,
#: measured once with ``python benchmarks/s3l_speed.py --threads 1``: for ``budget="time"`` explorations.
QUICK_STEP_SECONDS = {8: 0.013, 16: 0.023, 32: 0.066}


def quick(**overrides) -> S3LConfig:
    """The shared SSL benchmark's glyphs (:func:`companion.data.make_glyphs`: 12 classes that differ in a
    small stroke, drawn at 32 px; 1,200 to pretrain and fine-tune on, 600 held out) at 16 px as the full
    resolution and 8 px as the small one (on the 8 px digits a 16 px "full" resolution adds no detail, so
    the chapter's question could not be asked there; 32 px cost too much for ten seeds on a CPU); a
    ResNet-10 of width 8 with the small stem and without its last stage; MoCo v2 with the benchmark's
    recipe (:data:`companion.ssl.bench.RECIPES`) and blur at every resolution, as S3L's aug-plus; 300
    steps of batch 64 per schedule (so the 8 px schedule costs a little over a quarter of the FLOPs: the
    heads do not shrink with the image); then 10 warm-up and 40 fine-tuning steps at 16 px without flips;
    2 seeds, one CPU thread. The premise's supervised networks get 3 seeds of only 30 steps here (the
    study's 200 would double the run), so the quick premise is a smoke test, not a verdict.
    Book section: *S3L* "Quick run"."""
    from ..ssl import bench

    return S3LConfig(
        dataset="glyphs", resolution=16, arch="resnet10", width=8, small_stem=True, method="moco",
        method_kwargs=dict(bench.RECIPES["moco"]["method_kwargs"]), lr=bench.RECIPES["moco"]["lr"],
        augment=bench.bench_augment(8), blur=True, arms={"low": (8,), "full": (16,)}, budget="steps",
        budget_steps=300, batch_size=bench.BATCH_SIZE, warmup_steps=10, finetune_steps=40, finetune_flip=0.0,
        premise_steps=30, premise_seeds=(0, 1, 2), knn_k=bench.KNN_K, seeds=(0, 1), tier="quick",
    ).replace(**overrides)


def study(**overrides) -> S3LConfig:
    """:func:`quick` with ten seeds (the premise's too, :data:`PREMISE_STEPS` steps each) and a third
    schedule, 8 -> 16 px (150 + 150 steps, the queue kept): the claims' intervals.
    Book section: *S3L* "Claims, intervals and verdicts"."""
    return quick(seeds=tuple(range(10)), tier="study", premise_steps=PREMISE_STEPS, premise_seeds=None,
                 arms={"low": (8,), "full": (16,), "multistage": (8, 16)}).replace(**overrides)


def full(**overrides) -> S3LConfig:
    """CIFAR-100 on a GPU: ResNet-18 (small stem) without ``layer4``, MoCo v2 as S3L runs it (K = 4096,
    tau = 0.2, m = 0.999, SGD lr 0.03 per 128 images, weight decay 1e-4), 200 epochs per schedule: 16 px,
    32 px and 16 -> 32 px (150 + 50 epochs, the queue kept), blur in every arm (aug-plus); then 10 warm-up
    epochs of ``layer4`` + ``fc`` (trunk frozen, its batch-norm statistics re-estimated, as
    ``main_freeze.py``) and 120 fine-tuning epochs at 32 px (SGD lr 0.1, batch 64, the official square crop
    of 7/8 of the side and flips) with mixup (alpha 1); the premise's supervised networks at 32 and 16 px
    get 20 epochs (781 steps of batch 64 each); checkpoints every 500
    steps (in :func:`companion.runtime.checkpoint_root`, on Google Drive when it is mounted on Colab).
    Book section: *S3L* "Full run"."""
    from ..runtime import checkpoint_root

    return S3LConfig(
        dataset="cifar100", resolution=32, arch="resnet18", width=64, small_stem=True, method="moco",
        method_kwargs={"dim": 128, "queue_size": 4096, "temperature": 0.2, "momentum": 0.999},
        augment={}, blur=True, arms={"low": (16,), "full": (32,), "multistage": (16, 32)},
        fractions={"multistage": (0.75, 0.25)}, budget="epochs", epochs=200, batch_size=256, lr=0.06,
        weight_decay=1e-4, warmup_steps=0, warmup_epochs=10, finetune_steps=0, finetune_epochs=120,
        finetune_batch_size=64, premise_steps=20 * 781,
        finetune_lr=0.1, finetune_weight_decay=5e-4, mixup_alpha=1.0, knn_k=200,
        budget_steps=None, tier="full", threads=None, linear_probe=False,
        progress=True, checkpoint_dir=str(checkpoint_root("s3l")), checkpoint_every=500,
    ).replace(**overrides)


def colab(**overrides) -> S3LConfig:
    """:func:`full` shortened to a Colab session (estimated under an hour on a T4, :func:`companion.s3l.run_hours`):
    the same data, network, MoCo v2 and fine-tuning recipe, the chapter's comparison of 16 px against 32 px
    pretraining (the multi-stage arm is left out) with 25 pretraining epochs per schedule, 2 warm-up and 8
    fine-tuning epochs, and 2 seeds, so that the claims get an interval. Checkpoints go to their own folder
    (``<checkpoint_root>/s3l/colab``): a full run never resumes a colab run's checkpoints.
    Book section: *S3L* "Full run"."""
    from ..runtime import checkpoint_root

    return full(
        arms={"low": (16,), "full": (32,)}, fractions={}, epochs=25, warmup_epochs=2, finetune_epochs=8,
        premise_steps=10 * 781,
        seeds=(0, 1), checkpoint_dir=str(checkpoint_root("s3l") / "colab"),
    ).replace(**overrides)


PRESETS = {"quick": quick, "study": study, "colab": colab, "full": full}
