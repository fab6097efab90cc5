"""Presets of the toolkit's own experiment: does self-supervised pretraining on the shared benchmark
(:mod:`companion.ssl.bench`) beat the same encoder at random initialization, by kNN and by a linear probe?

Book sections: *S3L* "Evaluating the features" (and every SSL chapter that reuses the toolkit).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .. import validation as v
from ..validation import check, invalid
from . import bench
from .methods import METHODS
from .pretrain import PretrainConfig, default_checkpoint_dir


@dataclass
class ExperimentConfig:
    """One comparison: for every seed, kNN and linear-probe accuracy of the random encoder and of each
    pretrained one (all built from the same weights of that seed)."""

    mode: str = "quick"
    dataset: str = "digits"  # "digits" (the shared benchmark, bundled) or "cifar10" / "cifar100" (full)
    n_train: int | None = bench.N_TRAIN  # digits: the first n_train of a seeded permutation train, the rest test
    methods: tuple[str, ...] = bench.BENCH_METHODS
    seeds: tuple[int, ...] = (0, 1)
    pretrain: PretrainConfig = field(default_factory=lambda: bench.bench_config("moco", "quick"))
    method_kwargs: dict = field(default_factory=dict)  # per method name: constructor arguments
    pretrain_overrides: dict = field(default_factory=dict)  # per method name: PretrainConfig fields (e.g. its lr)
    knn_k: int = bench.KNN_K  # InstDisc defaults
    knn_temperature: float = bench.KNN_TEMPERATURE
    knn_k_small: int = 20  # also reported: a small-k kNN
    linear: bool = True  # also a linear probe on the frozen features
    linear_epochs: int = bench.LINEAR_EPOCHS
    download: bool = True
    threads: int | None = 1  # CPU threads for the whole run (None: leave torch's setting)
    workers: int = 1  # CPU only: processes the seeds run in (each with ``threads`` threads); same numbers

    def __post_init__(self):
        method = v.one_of(*METHODS)
        check(
            self, mode=v.one_of("quick", "study", "full"), dataset=v.one_of("digits", "cifar10", "cifar100"),
            n_train=v.optional(v.positive_int), methods=v.sequence(method, distinct=True), seeds=v.seeds,
            pretrain=v.instance(PretrainConfig), method_kwargs=v.mapping(method, v.mapping(v.text())),
            pretrain_overrides=v.mapping(method, v.mapping(v.text())), knn_k=v.positive_int,
            knn_temperature=v.positive, knn_k_small=v.positive_int, linear=v.flag(), linear_epochs=v.positive_int,
            download=v.flag(), threads=v.threads, workers=v.positive_int,
        )
        for name, changes in self.pretrain_overrides.items():
            try:  # each method's pretraining settings must make a valid PretrainConfig too
                self.pretrain.replace(method=name, **changes)
            except (TypeError, ValueError) as e:
                invalid(self, "pretrain_overrides", f"make a valid PretrainConfig for {name!r} ({e})")
        if self.dataset == "digits" and (self.n_train is None or self.n_train >= 1797):
            invalid(self, "n_train", "be an integer in [1, 1796] for digits (the rest of the 1,797 is the test split)")


def _bench(mode: str, seeds: tuple[int, ...]) -> ExperimentConfig:
    methods = bench.BENCH_METHODS
    return ExperimentConfig(
        mode=mode, dataset="digits", n_train=bench.N_TRAIN, methods=methods, seeds=seeds,
        pretrain=bench.bench_config("moco", mode),
        method_kwargs={m: dict(bench.RECIPES[m]["method_kwargs"]) for m in methods},
        pretrain_overrides={m: {"lr": bench.RECIPES[m]["lr"]} for m in methods},
        workers=2,  # a seed per core
    )


def quick() -> ExperimentConfig:
    """The shared benchmark (:mod:`companion.ssl.bench`): digits at 8 px, a TinyCNN of width 8, 600 steps
    of batch 64 per method, 2 seeds, one CPU thread each, in two processes (about 10-20 CPU seconds per
    method and seed)."""
    return _bench("quick", (0, 1))


def study() -> ExperimentConfig:
    """The same benchmark and steps with ten seeds, as every self-supervised chapter's study (at five,
    SimSiam's kNN gain over the untrained encoder straddled zero: one seed fell below it)."""
    return _bench("study", tuple(range(10)))


def full() -> ExperimentConfig:
    """CIFAR-10 on a GPU: ResNet-18 with the small stem at 32 px, 200 epochs of batch 512 per method,
    batched augmentation on the GPU, the usual heads (SimSiam 2048/512 with CIFAR's 2-layer projector,
    MoCo v2 dim 128 with a 4096-key queue, BYOL 256/4096), checkpoints that resume."""
    return ExperimentConfig(
        mode="full", dataset="cifar10", n_train=None, methods=("simsiam", "moco", "byol"), seeds=(0,),
        pretrain=PretrainConfig.full(checkpoint_dir=str(default_checkpoint_dir("ssl_toolkit"))),
        method_kwargs={
            "simsiam": {"proj_dim": 2048, "pred_dim": 512, "proj_layers": 2},
            "moco": {"dim": 128, "queue_size": 4096, "temperature": 0.2, "momentum": 0.99},
            "byol": {"proj_dim": 256, "hidden": 4096, "base_momentum": 0.99},
            "simclr": {"dim": 128, "temperature": 0.5},
        },
        linear=False, threads=None,
    )


def colab() -> ExperimentConfig:
    """:func:`full` shortened to one Colab session (under an hour on a T4 by
    :func:`companion.ssl.run_hours`): the same three methods, data, networks and recipes, 20 epochs each
    instead of 200, checkpoints in their own folder."""
    cfg = full()
    return replace(cfg, pretrain=cfg.pretrain.replace(
        epochs=COLAB_EPOCHS, checkpoint_dir=str(default_checkpoint_dir("ssl_toolkit-colab"))))


#: Pretraining epochs of each method in :func:`colab`.
COLAB_EPOCHS = 20

PRESETS = {"quick": quick, "study": study, "colab": colab, "full": full}
