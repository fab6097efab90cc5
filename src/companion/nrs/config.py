"""Presets for the NRS experiment: ``quick()`` (CPU, bundled and synthetic data, seconds),
``study()`` (the same over more splits, minutes), ``full()`` (the paper's data) and ``colab()`` (the
full preset shortened to a Colab session).

Book section: *NRS* "Quick run" and "Full run".
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import validation as v
from ..validation import check


@dataclass
class CUBConfig:
    """ResNet + NRS head on CUB-200-2011 (full mode only)."""

    arch: str = "resnet50"
    pretrained: bool = True
    image_size: int = 448
    epochs: int = 65
    batch_size: int = 30
    lr: float = 2e-3
    weight_decay: float = 1e-4
    n_mul: int = 2
    n_per_group: int = 64
    heads: tuple[str, ...] = ("nrs", "linear")
    num_workers: int = 4
    max_steps: int | None = None  # cut training short (smoke tests)

    def __post_init__(self):
        check(
            self, arch=v.one_of("resnet18", "resnet34", "resnet50", "resnet101"), pretrained=v.flag(),
            image_size=v.positive_int, epochs=v.positive_int, batch_size=v.positive_int, lr=v.positive,
            weight_decay=v.non_negative, n_mul=v.positive_int, n_per_group=v.positive_int,
            heads=v.sequence(v.one_of("nrs", "linear"), distinct=True), num_workers=v.non_negative_int,
            max_steps=v.optional(v.positive_int),
        )


@dataclass
class Config:
    """What :func:`companion.nrs.experiment.run` runs.

    ``nrs`` and ``mlp`` are keyword arguments of :class:`~companion.nrs.NRSClassifier` and
    :class:`~companion.nrs.MLPBaselineClassifier`; ``per_dataset`` overrides them for one data set
    (the paper tunes ``n_mul``, width, batch and epochs per data set). ``rf`` and ``hgb`` are keyword
    arguments of scikit-learn's ``RandomForestClassifier`` and ``HistGradientBoostingClassifier``.
    """

    mode: str
    datasets: tuple[str, ...]
    rounds: int = 5
    test_size: float = 0.3
    seed: int = 0
    nrs: dict = field(default_factory=dict)
    mlp: dict = field(default_factory=dict)
    per_dataset: dict = field(default_factory=dict)
    rf: dict = field(default_factory=dict)
    hgb: dict = field(default_factory=dict)
    threads: int | None = 1  # CPU threads for every model while timing; None: the libraries' defaults
    timer: str = "cpu"  # "cpu": process CPU seconds; "wall": elapsed seconds (GPU runs)
    device: str | None = None
    cub: CUBConfig | None = None
    checkpoint_dir: str | None = None  # default: runtime.checkpoint_root("nrs")
    data_home: str | None = None  # fetch_openml cache; default: scikit-learn's
    # the paper's form of evidence on real tables (companion.nrs.benchmark): splits per table, 0 = not run
    real_tables: int = 0
    real_table_names: tuple[str, ...] | None = None  # None: every table the benchmark's rule selects
    # the premise: the tables resolve a known gap (random forest over one decision tree) of at least this
    # many points on average; fixed before any result, at the size of the NRS intervals' half-width
    control_margin: float = 1.0
    workers: int = 2  # processes the real tables run in, one per core, each on one thread (the same numbers)

    def __post_init__(self):
        from .tabular import BUNDLED, OPENML, SYNTHETIC

        known = v.one_of(*BUNDLED, *SYNTHETIC, *OPENML)
        kwargs = v.mapping(v.text())
        check(
            self, mode=v.one_of("quick", "study", "full"), datasets=v.sequence(known, distinct=True),
            rounds=v.positive_int, test_size=v.number(0, 1, low_open=True, high_open=True), seed=v.seed,
            nrs=kwargs, mlp=kwargs,
            per_dataset=v.mapping(known, v.mapping(v.one_of("nrs", "mlp", "rf", "hgb"), kwargs)),
            rf=kwargs, hgb=kwargs, threads=v.threads, timer=v.one_of("cpu", "wall"), device=v.optional(v.device()),
            cub=v.optional(v.instance(CUBConfig)), checkpoint_dir=v.optional(v.path()), data_home=v.optional(v.path()),
            real_tables=v.non_negative_int, real_table_names=v.optional(v.sequence(v.text(), distinct=True)),
            control_margin=v.positive, workers=v.positive_int,
        )
        if self.real_tables == 1:
            raise ValueError("real_tables must be 0 (not run) or at least 2 splits per table (a paired interval "
                             "needs two), got 1")
        if self.cub is not None:  # the command line may have edited it in place
            self.cub.__post_init__()

    def model_params(self, dataset: str) -> dict[str, dict]:
        """The keyword arguments of each of the four models on ``dataset``."""
        extra = self.per_dataset.get(dataset, {})
        return {
            "nrs": {"device": self.device, **self.nrs, **extra.get("nrs", {})},
            "mlp": {"device": self.device, **self.mlp, **extra.get("mlp", {})},
            "rf": {**self.rf, **extra.get("rf", {})},
            "hgb": {**self.hgb, **extra.get("hgb", {})},
        }


#: The quick and study data sets: scikit-learn's bundled ones, then the synthetic ones of
#: :data:`companion.nrs.tabular.SYNTHETIC` (redundant features; many noise features).
QUICK_DATASETS = ("iris", "wine", "breast_cancer", "digits", "redundant", "noisy")


def quick() -> Config:
    """Four bundled data sets and two synthetic ones (redundant and noisy features), 2 stratified
    70/30 splits (the study preset has 5), small networks trained for 20 epochs.

    NRS: about 256 subspaces of 3x3 features (``n_mul="auto"``), a 2 x 128 aggregating MLP. The MLP
    baseline has 3 x 128 hidden units and the same training. Random forest: 100 trees;
    gradient boosting: scikit-learn's defaults. Everything on one CPU thread, timed in CPU seconds.
    """
    training = {"max_epochs": 20, "batch_size": 128, "lr": 1e-3, "hidden_size": 128}
    return Config(
        mode="quick",
        datasets=QUICK_DATASETS,
        rounds=2,
        nrs={"n_mul": "auto", "subspace_size": 3, "n_hidden": 2, **training},
        mlp={"n_hidden": 3, **training},
        rf={"n_estimators": 100},
        hgb={},
        device="cpu",
    )


def study() -> Config:
    """The quick preset (same data sets, models and training) over 5 splits instead of 2, so each
    per-data-set claim (NRS minus RF, NRS minus gradient boosting) has a usable interval; and the
    paper's own form of evidence on the real tables of :mod:`companion.nrs.benchmark` (5 splits each):
    wins, ties and losses with a sign test, and the mean difference over the tables as a claim.
    """
    cfg = quick()
    cfg.mode, cfg.rounds, cfg.real_tables = "study", 5, 5
    return cfg


def full() -> Config:
    """The paper's five data sets with its settings, 5 rounds, and ResNet-50 + NRS on CUB-200.

    Adam at lr 1e-4, no schedule, no weight decay, k = 3, n_per_group = 1; batch, epochs, n_mul and
    the MLP width per data set as in the official configs. Random forest with 500 trees on all cores;
    gradient boosting with scikit-learn's defaults. Times are wall seconds.
    """
    paper = {  # batch, epochs, n_mul, n_fc
        "letter": (128, 100, 100, 256),
        "satimage": (128, 50, 20, 256),
        "usps": (128, 50, 20, 256),
        "mnist": (512, 20, 5, 512),
        "gisette": (512, 20, 1, 512),
    }
    per_dataset = {
        name: {
            "nrs": {"batch_size": b, "max_epochs": e, "n_mul": m, "hidden_size": h},
            "mlp": {"batch_size": b, "max_epochs": e, "hidden_size": h},
        }
        for name, (b, e, m, h) in paper.items()
    }
    training = {"lr": 1e-4, "weight_decay": 0.0, "n_threads": None}
    return Config(
        mode="full",
        datasets=tuple(paper),
        nrs={"subspace_size": 3, "n_per_group": 1, "n_hidden": 2, **training},
        mlp={"n_hidden": 3, **training},
        per_dataset=per_dataset,
        rf={"n_estimators": 500, "n_jobs": -1},
        hgb={},
        threads=None,
        timer="wall",
        device=None,
        cub=CUBConfig(),
    )


def colab() -> Config:
    """The full preset shortened to one Colab session (under an hour by :func:`companion.nrs.run_hours`):
    the same models and settings on letter, satimage, usps and gisette over 3 rounds (mnist, whose forest
    and boosting alone would take most of an hour on two CPU cores, is left out), and CUB-200 with both
    heads for 10 epochs instead of 65.
    """
    cfg = full()
    cfg.datasets = tuple(name for name in cfg.datasets if name != "mnist")
    cfg.per_dataset = {name: cfg.per_dataset[name] for name in cfg.datasets}
    cfg.rounds = 3
    cfg.cub = CUBConfig(epochs=10)
    return cfg


#: Preset name -> factory (``python -m companion.nrs --preset NAME``).
PRESETS = {"quick": quick, "study": study, "colab": colab, "full": full}
