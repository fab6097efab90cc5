"""Presets of the toolkit's own experiment: does a short self-supervised pretraining beat the same
encoder at random initialization under kNN evaluation?

Book sections: *S3L* "Evaluating the features" (and every SSL chapter that reuses the toolkit).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .pretrain import PretrainConfig, default_checkpoint_dir


@dataclass
class ExperimentConfig:
    """One comparison: for every seed, kNN accuracy of the random encoder and of each pretrained one."""

    mode: str = "quick"
    dataset: str = "digits"  # "digits" (quick, bundled) or "cifar10" / "cifar100" (full)
    n_train: int | None = 1200  # digits: the first n_train of a seeded permutation train, the rest test
    methods: tuple[str, ...] = ("simsiam", "moco", "byol")
    seeds: tuple[int, ...] = (0, 1, 2)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig.quick)
    method_kwargs: dict = field(default_factory=dict)  # per method name: constructor arguments
    pretrain_overrides: dict = field(default_factory=dict)  # per method name: PretrainConfig fields (e.g. its lr)
    knn_k: int = 200  # InstDisc defaults
    knn_temperature: float = 0.1
    knn_k_small: int = 20  # also reported: a small-k kNN
    download: bool = True


def quick() -> ExperimentConfig:
    """Digits at their native 8 px, a TinyCNN of width 8, 600 steps of batch 64 per method and seed
    (a few CPU seconds each), crops of 50-100% of the digit and no flip (a mirrored digit is another symbol).

    SGD lr 0.05 for MoCo and BYOL; SimSiam gets lr 0.2 and wider heads (512/128): at lr 0.05 or with
    128/32 heads it stayed at or below the random encoder within this budget (tried while setting up the preset).
    """
    return ExperimentConfig(
        mode="quick", dataset="digits", n_train=1200, methods=("simsiam", "moco", "byol"), seeds=(0, 1, 2),
        pretrain=PretrainConfig.quick(
            encoder="tiny", encoder_kwargs={"width": 8}, resolution=8, steps=600, batch_size=64, lr=0.05,
            augment={"scale": (0.5, 1.0), "p_flip": 0.0},
        ),
        method_kwargs={
            "simsiam": {"proj_dim": 512, "pred_dim": 128, "proj_layers": 2},
            "moco": {"dim": 64, "queue_size": 512, "temperature": 0.2, "momentum": 0.99},
            "byol": {"proj_dim": 64, "hidden": 128, "base_momentum": 0.99},
            "simclr": {"dim": 64, "temperature": 0.2},
        },
        pretrain_overrides={"simsiam": {"lr": 0.2}},
    )


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
    )
