"""Presets of the SSQL experiment: ``quick()`` (CPU seconds, scikit-learn digits), ``full()`` (CIFAR-10,
ResNet-18, 200 epochs), ``colab()`` (the full recipe in one Colab session) and ``paper()`` (the paper's
400 epochs).

Book section: *SSQL* "Quick run" and "Full run".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from .. import validation as v
from ..quant import check_bits, check_weight_bits
from ..quant.fake_quant import CONVENTIONS
from ..ssl.encoders import ENCODERS
from ..validation import check, invalid

#: "random" is the reference without pretraining: the same initial encoder, evaluated as it is
METHODS = ("simsiam", "ssql", "random")


@dataclass
class SSQLConfig:
    """Everything :func:`companion.ssql.run` needs.

    Pretraining (both methods get the same budget: the same steps, batch and schedule):
    ``encoder``/``encoder_kwargs`` (a :func:`companion.ssl.build_encoder` name), ``proj_dim``,
    ``pred_dim``, ``proj_layers``, ``steps`` or ``epochs``, ``batch_size``, ``lr``, ``weight_decay``,
    ``resolution``, ``blur`` (the toolkit's augmentation otherwise), ``w_range``/``a_range``
    (SSQL's per-step bit ranges, inclusive).
    Evaluation: every ``(w, a)`` in ``grid_w x grid_a`` with a kNN probe; the pairs in ``linear_pairs``
    also with a linear probe (the SSQL code's recipe, :func:`companion.ssql.sgd_linear_probe`, for
    ``linear_epochs``); 0 means full precision. ``calibration_images`` images calibrate PTQ;
    the first ``eval_train`` training images are the probes' training set.
    Claims: ``claim_pairs``, the quantized ``(w, a)`` pairs at which SSQL is compared with SimSiam
    (each also in the grid or ``linear_pairs``); at each, the premise that SimSiam's features
    collapse there: SimSiam in full precision beats SimSiam at the pair by at least
    ``collapse_margin`` points (fixed before the results were seen).
    """

    mode: str = "quick"
    dataset: str = "digits"  # "digits" (quick) or "cifar10" (full)
    seeds: tuple[int, ...] = (0, 1)
    methods: tuple[str, ...] = ("simsiam", "ssql", "random")
    n_train: int | None = 1200  # digits: the rest is the test split
    eval_train: int | None = None  # training images in the kNN bank / linear-probe set (None: all)
    resolution: int = 8
    encoder: str = "tiny"  # digits: the shared benchmark's encoder (companion.ssl.bench)
    encoder_kwargs: dict = field(default_factory=lambda: {"width": 8})
    proj_dim: int = 512  # the benchmark's SimSiam recipe: wide heads and lr 0.2
    pred_dim: int = 128
    proj_layers: int = 2
    steps: int | None = 100
    epochs: int | None = None
    batch_size: int = 64
    lr: float = 0.2
    weight_decay: float = 5e-4
    blur: bool = False
    augment: dict = field(default_factory=lambda: {"scale": (0.5, 1.0), "p_flip": 0.0})  # digits: no mirror
    w_range: tuple[int, int] = (2, 8)
    a_range: tuple[int, int] = (4, 8)
    grid_w: tuple[int, ...] = (2, 4, 8, 0)
    grid_a: tuple[int, ...] = (2, 4, 0)
    linear_pairs: tuple[tuple[int, int], ...] = ((2, 4), (4, 4), (2, 2), (0, 0))
    calibration_images: int = 256
    knn_k: int = 200
    linear_epochs: int = 100  # the SSQL code's 100 epochs (lr steps at 60 and 80)
    # the paper's 2w4f and 4w4f, and 2w2f, where the digits' SimSiam features lose the most (kNN)
    claim_pairs: tuple[tuple[int, int], ...] = ((2, 4), (4, 4), (2, 2))
    collapse_margin: float = 5.0  # points: a "clear" loss, fixed before the premise was measured
    convention: str = "ssql"
    amp: bool | None = None
    device: str | None = "cpu"
    threads: int | None = 1  # CPU threads during the run (None: leave torch's setting); tiny tensors gain nothing from more
    checkpoint_dir: str | None = None
    checkpoint_every: int = 0
    progress: bool = False
    num_workers: int = 0
    workers: int = 1  # processes the seeds run in (each with ``threads`` threads); results do not depend on it
    record: bool = True

    def __post_init__(self):
        w_bits = v.satisfies(lambda b: check_weight_bits(b, "weight bits"), "be a weight bit-width")
        a_bits = v.satisfies(lambda b: check_bits(b, "activation bits"), "be an activation bit-width")
        bits_pair = v.all_of(v.sequence(length=2), v.satisfies(
            lambda p: (check_weight_bits(p[0], "weight bits"), check_bits(p[1], "activation bits")),
            "be (w, a) bit-widths"))
        check(
            self, mode=v.one_of("quick", "study", "full"), dataset=v.one_of("digits", "cifar10"), seeds=v.seeds,
            methods=v.sequence(v.text(), distinct=True), n_train=v.optional(v.positive_int),
            eval_train=v.optional(v.positive_int), resolution=v.positive_int, encoder=v.one_of(*ENCODERS),
            encoder_kwargs=v.mapping(v.text()), proj_dim=v.positive_int, pred_dim=v.positive_int,
            proj_layers=v.positive_int, steps=v.optional(v.positive_int), epochs=v.optional(v.positive_int),
            batch_size=v.positive_int, lr=v.positive, weight_decay=v.non_negative, blur=v.flag(),
            augment=v.mapping(v.text()), w_range=v.pair(w_bits), a_range=v.pair(a_bits),
            grid_w=v.sequence(w_bits, distinct=True), grid_a=v.sequence(a_bits, distinct=True),
            linear_pairs=v.sequence(bits_pair, non_empty=False), calibration_images=v.positive_int,
            knn_k=v.positive_int, linear_epochs=v.positive_int, claim_pairs=v.sequence(bits_pair, distinct=True),
            collapse_margin=v.positive, convention=v.one_of(*CONVENTIONS),
            amp=v.optional(v.flag()), device=v.optional(v.device()), threads=v.threads,
            checkpoint_dir=v.optional(v.path()), checkpoint_every=v.non_negative_int, progress=v.flag(),
            num_workers=v.non_negative_int, workers=v.positive_int, record=v.flag(),
        )
        if (self.steps is None) == (self.epochs is None):
            invalid(self, "epochs", f"be given exactly when steps is None (give exactly one of steps or epochs; "
                                    f"steps={self.steps!r})")
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown:
            invalid(self, "methods", f"be a non-empty subset of {METHODS} (unknown: {unknown})")
        if self.dataset == "digits" and (self.n_train is None or self.n_train >= 1797):
            invalid(self, "n_train", "be an integer in [1, 1796] for digits (the rest of the 1,797 is the test split)")
        if self.eval_train is not None and self.n_train is not None and self.eval_train > self.n_train:
            invalid(self, "eval_train", f"be <= n_train = {self.n_train}")
        missing = [p for p in self.claim_pairs if tuple(p) not in self.pairs() or tuple(p) == (0, 0)]
        if missing:
            invalid(self, "claim_pairs", f"hold quantized (w, a) pairs of the grid or linear_pairs (not in them, "
                                         f"or full precision: {missing})")
        if 0 in self.w_range or 0 in self.a_range:
            invalid(self, "w_range" if 0 in self.w_range else "a_range",
                    "hold bit-widths, not 0 (full precision is not a training bit-width)")

    def pairs(self) -> list[tuple[int, int]]:
        """Every ``(w, a)`` evaluated: the grid, then the linear-probe pairs not already in it."""
        grid = [(w, a) for w in self.grid_w for a in self.grid_a]
        return grid + [p for p in self.linear_pairs if p not in grid]

    def to_dict(self) -> dict:
        return asdict(self)

    def replace(self, **changes) -> "SSQLConfig":
        return replace(self, **changes)


def quick(**overrides) -> SSQLConfig:
    """CPU seconds, on the shared benchmark (:mod:`companion.ssl.bench`): scikit-learn's 8x8 digits
    (1,200 pretraining images, 597 test), its four-layer CNN (width 8) and SimSiam recipe (lr 0.2,
    512/128 heads, crops of 50-100%, no flip), 300 steps of batch 64 per method and seed, three seeds
    (in three processes, one thread each), plus the same encoders without pretraining; kNN (k = 200,
    bank: the 1,200 training images) over a 4 x 3 (w, a) grid, the SSQL code's linear probe (SGD,
    lr 30, 100 epochs) at 2w4f, 4w4f, 2w2f and FP. At 300 steps SSQL's encoder beats the untrained one
    on the mean (at 100 it did not); the study tier's 600 steps and ten seeds decide the claims.
    """
    base = dict(seeds=(0, 1, 2), steps=300, workers=3)  # three seeds: the fewest an interval takes
    base.update(overrides)
    return SSQLConfig(**base)


def full(**overrides) -> SSQLConfig:
    """CIFAR-10, ResNet-18 with the small-image stem, batch 512, 200 epochs, SGD lr 0.05 momentum 0.9,
    weight decay 5e-4, cosine schedule (the SSQL code's CIFAR recipe, at half its epochs), 2048-d
    projector and predictor hidden width, checkpoints every 500 steps; PTQ at w, a in
    {2, 3, 4, 5, 6, 8, FP} with kNN, and a linear probe at 2w4f, 4w4f, 8w8f and FP. One seed.
    """
    from ..runtime import checkpoint_root

    base = dict(
        mode="full", dataset="cifar10", seeds=(0,), methods=("simsiam", "ssql"), n_train=None, resolution=32, encoder="resnet18_small",
        encoder_kwargs={}, proj_dim=2048, pred_dim=2048, proj_layers=3, steps=None, epochs=200, batch_size=512,
        lr=0.05, weight_decay=5e-4, blur=False,
        grid_w=(2, 3, 4, 5, 6, 8, 0), grid_a=(4, 8, 0), linear_pairs=((2, 4), (4, 4), (8, 8), (0, 0)),
        claim_pairs=((2, 4), (4, 4)),
        calibration_images=1024, eval_train=None, augment={}, knn_k=200, linear_epochs=100, device=None,
        checkpoint_dir=str(checkpoint_root("ssql")), checkpoint_every=500, progress=True,
        num_workers=4, threads=None,
    )
    base.update(overrides)
    return SSQLConfig(**base)


def paper(**overrides) -> SSQLConfig:
    """:func:`full` with the paper's 400 pretraining epochs (checkpoints in their own folder)."""
    from ..runtime import checkpoint_root

    base = dict(epochs=400, checkpoint_dir=str(checkpoint_root("ssql-400")))
    base.update(overrides)
    return full(**base)


#: Pretraining epochs of each method in :func:`colab`.
COLAB_EPOCHS = 20


def colab(**overrides) -> SSQLConfig:
    """:func:`full` shortened to one Colab session (under an hour on a T4 by :func:`companion.ssql.run_hours`):
    the same data, network, recipe, methods, PTQ grid and probes, 20 pretraining epochs per method
    instead of 200, checkpoints in their own folder."""
    from ..runtime import checkpoint_root

    base = dict(epochs=COLAB_EPOCHS, checkpoint_dir=str(checkpoint_root("ssql-colab")))
    base.update(overrides)
    return full(**base)


def study(**overrides) -> SSQLConfig:
    """:func:`quick`'s data and code with ten seeds and the benchmark's 600 steps (at five, every
    SSQL-vs-SimSiam interval straddled zero); the seeds run in five processes (one thread each)."""
    base = dict(mode="study", seeds=tuple(range(10)), steps=600, workers=5)
    base.update(overrides)
    return SSQLConfig(**base)


PRESETS = {"quick": quick, "study": study, "colab": colab, "full": full, "paper": paper}
