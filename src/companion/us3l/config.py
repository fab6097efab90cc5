"""Presets for the US3L experiment: ``quick()`` runs on CPU in seconds, ``study()`` has the seeds
to decide the claims in minutes, ``full()`` is the paper's CIFAR-100 setting and ``colab()`` the same
shortened to a Colab session.

Book section: *US3L* "Quick run" and "Full run".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from .. import validation as v
from ..validation import check, invalid
from .schedule import check_group_alpha

#: what :func:`companion.us3l.run` can train: US3L, US3L whose teacher is the online network itself
#: (no momentum teacher), the naive slimmable baseline as released (sub-widths distil the full width,
#: no dynamic sampling), naive slimmable SimCLR at every width (this book's earlier baseline), one
#: network per width trained alone for all ``steps`` (as many as the released baseline gives 0.25 and
#: 1.0), and one trained alone for as many steps as US3L's schedule trains that width
MODES = ("us3l", "us3l_online", "naive", "naive_simclr", "fixed", "fixed_us3l")
TIERS = ("quick", "study", "full")


@dataclass
class US3LConfig:
    """Everything :func:`companion.us3l.run` needs.

    ``reg_lambda``: the per-width penalty every mode gets (5e-5: the released code's weight decay
    1e-4); ``reg_alpha``: US3L's grouping of it. ``calibration_batches``: batches of the training set
    that recalibrate batch norm per width (``None``: one pass over all of it); ``official_bn`` also
    measures US3L with the released code's calibration (3 passes, momentum 0.1).
    ``augment``: keyword arguments of the batched augmentation (crop scale, flip, ...).
    ``projector_layers``: linear layers of the projector (3, the released code's).
    ``premise_margin``: the premise's "clear margin" (kNN points), fixed before the released naive
    baseline was measured: a network trained alone at width 0.25 must beat the naive baseline there
    by at least this much, with as many optimizer steps at that width, for the US3L-vs-naive claims
    at small widths to be testable.
    """

    tier: str = "quick"
    dataset: str = "digits"  # "digits" (quick, study) or "cifar100" (full)
    resolution: int = 8
    base_width: int = 8
    blocks: tuple = (1, 1, 1)
    divisor: int = 4
    small_stem: bool = True
    steps: int | None = 60
    epochs: int | None = None
    batch_size: int = 64
    lr: float = 0.1
    optimizer: str = "sgd"
    augment: dict = field(default_factory=lambda: {"scale": (0.5, 1.0), "p_flip": 0.0})
    dim: int = 64
    hidden: int = 256
    projector_layers: int = 3
    temperature: float = 0.5
    momentum: float = 0.99
    n_widths: int = 3
    dynamic: bool = True
    reg_lambda: float = 5e-5
    reg_alpha: float = 0.05
    reg_bins: int = 8
    eval_widths: tuple = (0.25, 0.5, 0.75, 1.0)
    separate_widths: tuple = (0.25,)  # networks trained alone at these widths (the reference)
    premise_margin: float = 2.0
    knn_k: int = 20
    knn_temperature: float = 0.1
    linear_epochs: int = 30
    calibration_batches: int | None = None
    official_bn: bool = True
    seeds: tuple = (0, 1, 2)
    device: str | None = "cpu"
    threads: int | None = 1  # CPU threads during the run (None: leave torch's setting)
    checkpoint_dir: str | None = None
    checkpoint_every: int = 0
    progress: bool = False
    modes: tuple = ("us3l", "naive", "fixed")
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        from ..slimmable import check_width

        width = v.satisfies(check_width, "be a width")
        check(
            self, tier=v.one_of(*TIERS), dataset=v.one_of("digits", "scenes", "cifar100"), resolution=v.positive_int,
            base_width=v.positive_int, blocks=v.sequence(v.positive_int), divisor=v.positive_int, small_stem=v.flag(),
            steps=v.optional(v.positive_int), epochs=v.optional(v.positive_int), batch_size=v.positive_int,
            lr=v.positive, optimizer=v.one_of("sgd", "adamw"), augment=v.mapping(v.text()), dim=v.positive_int,
            hidden=v.positive_int, projector_layers=v.positive_int, premise_margin=v.positive,
            temperature=v.positive, momentum=v.number(0, 1, high_open=True),
            n_widths=v.positive_int, dynamic=v.flag(), reg_lambda=v.non_negative,
            reg_alpha=v.non_negative,
            reg_bins=v.positive_int, eval_widths=v.sequence(width, distinct=True),
            separate_widths=v.sequence(width, non_empty=False, distinct=True), knn_k=v.positive_int,
            knn_temperature=v.positive, linear_epochs=v.positive_int, calibration_batches=v.optional(v.positive_int),
            official_bn=v.flag(), seeds=v.seeds, device=v.optional(v.device()), threads=v.threads,
            checkpoint_dir=v.optional(v.path()), checkpoint_every=v.non_negative_int, progress=v.flag(),
            modes=v.sequence(v.one_of(*MODES), distinct=True), extra=v.mapping(v.text()),
        )
        if self.projector_layers < 2:
            invalid(self, "projector_layers", "be at least 2 (a slimmable first layer and an output layer)")
        if (self.steps is None) == (self.epochs is None):
            invalid(self, "epochs", f"be given exactly when steps is None (give exactly one of steps or epochs, got "
                                    f"steps={self.steps!r}, epochs={self.epochs!r})")
        try:
            check_group_alpha(self.reg_alpha, self.reg_bins)
        except ValueError as e:
            invalid(self, "reg_alpha", f"fit reg_bins={self.reg_bins} ({e})")
        if 1.0 not in self.eval_widths:
            invalid(self, "eval_widths", "include 1.0 (the sanity claims compare full widths)")

    def replace(self, **changes) -> "US3LConfig":
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return asdict(self)


def quick(**overrides) -> US3LConfig:
    """CPU seconds: digits at their native 8 px (the shared benchmark's split and crops), a 3-stage
    slimmable ResNet of base width 8, 60 SGD steps of 64 images per model, three seeds (the fewest an
    interval needs); US3L, the naive slimmable baseline as released and a network trained alone at
    width 0.25 (the premise), each beside the same network untrained."""
    return US3LConfig().replace(**overrides)


def study(**overrides) -> US3LConfig:
    """:func:`quick`'s data, code and steps with ten seeds, plus networks trained alone at widths 0.25
    and 1.0 (for all steps, and for as many steps as US3L trains 0.25), naive slimmable SimCLR at every
    width and US3L without its momentum teacher (at five seeds the narrow widths' intervals were about
    10 points wide either side); CPU minutes."""
    base = dict(tier="study", steps=60, seeds=tuple(range(10)), separate_widths=(0.25, 1.0),
                modes=("us3l", "us3l_online", "naive", "naive_simclr", "fixed", "fixed_us3l"))
    base.update(overrides)
    return US3LConfig(**base)


def full(**overrides) -> US3LConfig:
    """CIFAR-100, slimmable ResNet-18 (base width 64, small stem) at 32 px, 400 epochs, batch 512, SGD lr 0.5
    with momentum 0.9, SimCLR temperature 0.5, teacher momentum 0.99, group regularization (lambda 5e-5, alpha
    0.05, 8 bins), dynamic sampling with 4 phases, the released augmentation (no blur at 32 px), a 3-layer
    projector; kNN over widths 0.25-1.0 after BN recalibration; beside the naive baseline as released
    and networks trained alone per width (for all epochs, and for US3L's steps at that width);
    checkpoints every 500 steps in :func:`companion.runtime.checkpoint_root` (on Google Drive when it is
    mounted on Colab). Book section: *US3L* "Full run"."""
    from ..runtime import checkpoint_root

    base = dict(
        tier="full", dataset="cifar100", resolution=32, base_width=64, blocks=(2, 2, 2, 2), divisor=8, steps=None,
        epochs=400, batch_size=512, lr=0.5, dim=256, hidden=2048, knn_k=200, calibration_batches=None,
        augment={}, seeds=(0,), separate_widths=(0.25, 0.5, 0.75, 1.0), linear_epochs=100, device=None, threads=None,
        checkpoint_dir=str(checkpoint_root("us3l")), checkpoint_every=500, progress=True,
        modes=("us3l", "naive", "fixed", "fixed_us3l"),
    )
    base.update(overrides)
    return US3LConfig(**base)


def colab(**overrides) -> US3LConfig:
    """:func:`full` shortened to a Colab session (estimated under an hour on a T4,
    :func:`companion.us3l.run_hours`): the same data, network, recipe and evaluation, the chapter's main
    comparison (US3L against the naive baseline as released at every width) and its premise (a network
    alone at width 0.25; the others are left out), 8 epochs instead of 400 and 2 seeds, so that the
    claims get an interval. Checkpoints go to their own
    folder (``<checkpoint_root>/us3l/colab``): a full run never resumes a colab run's checkpoints.
    Book section: *US3L* "Full run"."""
    from ..runtime import checkpoint_root

    base = dict(epochs=8, seeds=(0, 1), modes=("us3l", "naive", "fixed"), separate_widths=(0.25,),
                checkpoint_dir=str(checkpoint_root("us3l") / "colab"))
    base.update(overrides)
    return full(**base)


PRESETS = {"quick": quick, "study": study, "colab": colab, "full": full}
