"""Efficient single-branch self-supervised learning (Cao & Wu, 2024): non-parametric instance discrimination
with one view per image, feature calibration of the memory bank, CutMix, the square-root self-distillation
loss (SqrtKL), and a gradient-derived ("corrected") bank update beside the released momentum rule.

Book chapter: *Efficient SSL*. Encoders, augmentation, SimSiam and kNN evaluation come from :mod:`companion.ssl`.
"""

from . import config
from .bank import UPDATE_RULES, MemoryBank
from .cutmix import cutmix, cutmix_box
from .experiment import bank_knn_percent, knn_percent, linear_percent, load_data, run, run_hours
from .losses import instance_loss, mixed_targets, sqrt_kl, sqrt_kl_grad, sqrt_target
from .model import SingleBranchID

__all__ = [
    "config", "run", "run_hours", "load_data", "knn_percent", "linear_percent", "bank_knn_percent", "MemoryBank", "UPDATE_RULES", "SingleBranchID",
    "cutmix", "cutmix_box", "instance_loss", "mixed_targets", "sqrt_kl", "sqrt_kl_grad", "sqrt_target",
]
