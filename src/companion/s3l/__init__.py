"""S3L: self-supervised learning scaled down, "Rethinking Self-Supervised Learning: Small is Beautiful"
(Cao & Wu, 2021): small resolution (and multi-stage resolution schedules), a small architecture (a ResNet
without its last stage), small data (pretraining on the target data itself), with every accuracy shown
beside its cost.

Book chapter: *S3L*. Builds on the self-supervised toolkit :mod:`companion.ssl`.
"""

from . import config
from .architecture import (FrozenTrunk, LoadReport, TruncatedResNet, build_resnet, check_resolution, freeze_trunk,
                           to_full_resnet, total_stride)
from .cost import (count_flops, flops_per_image, full_run_hours, run_hours, step_seconds,
                   train_step_flops)
from .experiment import load_data, resize, run
from .finetune import accuracy, classification_step, finetune, finetune_augment, warmup_last_stage
from .schedule import (QUEUE_POLICIES, Stage, StageResult, check_stages, load_stage_checkpoint, multi_stage_pretrain,
                       prepare_next_stage, split_budget)

__all__ = [
    "config", "run", "run_hours", "full_run_hours", "load_data", "resize", "FrozenTrunk", "LoadReport",
    "TruncatedResNet", "build_resnet",
    "check_resolution", "freeze_trunk", "to_full_resnet", "total_stride", "count_flops", "flops_per_image",
    "step_seconds", "train_step_flops", "accuracy", "classification_step", "finetune", "finetune_augment",
    "warmup_last_stage", "QUEUE_POLICIES", "Stage", "StageResult", "check_stages", "load_stage_checkpoint",
    "multi_stage_pretrain", "prepare_next_stage", "split_budget",
]
