"""Presets for the US3L experiment: ``quick()`` runs on CPU in seconds, ``full()`` is the paper's CIFAR-100 setting.

Book section: *US3L* "Quick run" and "Full run".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace


@dataclass
class US3LConfig:
    dataset: str = "digits"  # "digits" (quick) or "cifar100" (full)
    resolution: int = 16
    base_width: int = 8
    blocks: tuple = (1, 1, 1)
    divisor: int = 4
    small_stem: bool = True
    steps: int = 80
    epochs: int | None = None
    batch_size: int = 64
    lr: float = 0.1
    optimizer: str = "sgd"
    dim: int = 64
    hidden: int = 256
    temperature: float = 0.5
    momentum: float = 0.99
    n_widths: int = 3
    dynamic: bool = True
    reg_lambda: float = 5e-5
    reg_alpha: float = 0.05
    eval_widths: tuple = (0.25, 0.5, 0.75, 1.0)
    separate_widths: tuple = (0.25, 1.0)  # networks trained alone at these widths (the reference)
    knn_k: int = 20
    knn_temperature: float = 0.1
    calibration_batches: int = 4
    seeds: tuple = (0,)
    device: str | None = None
    checkpoint_dir: str | None = None
    checkpoint_every: int = 0
    progress: bool = False
    modes: tuple = ("us3l", "naive", "fixed")
    extra: dict = field(default_factory=dict)

    def replace(self, **changes) -> "US3LConfig":
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return asdict(self)


def quick(**overrides) -> US3LConfig:
    """Digits at 16 px, a 3-stage slimmable ResNet of base width 8, 80 SGD steps of 64 images per model."""
    return US3LConfig().replace(**overrides)


def full(**overrides) -> US3LConfig:
    """CIFAR-100, slimmable ResNet-18 (base width 64, small stem) at 32 px, 400 epochs, batch 512, SGD lr 0.5
    with momentum 0.9, SimCLR temperature 0.5, teacher momentum 0.99, group regularization (lambda 5e-5, alpha
    0.05, 8 bins), dynamic sampling with 4 phases; kNN over widths 0.25-1.0 after BN recalibration."""
    from ..data import data_root

    return US3LConfig(
        dataset="cifar100", resolution=32, base_width=64, blocks=(2, 2, 2, 2), divisor=8, steps=None, epochs=400,
        batch_size=512, lr=0.5, dim=256, hidden=2048, knn_k=200, calibration_batches=20, seeds=(0,),
        separate_widths=(0.25, 0.5, 0.75, 1.0), checkpoint_dir=str(data_root().parent / "checkpoints" / "us3l"),
        checkpoint_every=500, progress=True,
    ).replace(**overrides)
