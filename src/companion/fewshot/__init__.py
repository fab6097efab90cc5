"""Worst Case Matters for Few-Shot Recognition (Fu, Cao and Wu, ECCV 2022).

Episodes and worst-case metrics, per-episode fine-tuning with stability regularization (SR),
adaptability calibration (AC) and ensembles (EnSR), and the experiment that compares them with
nearest-class-mean prototypes and plain fine-tuning on the same fixed episodes.

Book chapter: *Worst case matters for few-shot recognition* (``book/05_worst_case_fewshot.md``).
"""

from . import config, plots
from .config import METHOD_LABELS, METHODS, FewShotConfig
from .data import FewShotData, cifar_fs, digits
from .episodes import Episode, sample_episodes, split_classes, stack_episodes
from .experiment import (
    FewShotResult, evaluate, findings, flop_estimate, method_label, paired_difference, pretrain, run, run_hours,
)
from .finetune import (
    EpisodeFineTuner, FineTune, ParallelRuns, prototype_scores, random_resized_crop, stability_similarity,
)
from .metrics import episode_accuracy, running_worst, summarize, worst_k_mean
from .model import BlockBackbone, CosineClassifier, build_backbone, mlp_backbone, resnet12, split_backbone

__all__ = [
    "config", "METHOD_LABELS", "METHODS", "FewShotConfig", "FewShotData", "cifar_fs", "digits",
    "Episode", "sample_episodes", "split_classes", "stack_episodes",
    "FewShotResult", "evaluate", "findings", "flop_estimate", "method_label", "paired_difference", "pretrain", "run",
    "run_hours",
    "EpisodeFineTuner", "FineTune", "ParallelRuns", "prototype_scores", "random_resized_crop", "stability_similarity",
    "episode_accuracy", "running_worst", "summarize", "worst_k_mean",
    "BlockBackbone", "CosineClassifier", "build_backbone", "mlp_backbone", "resnet12", "split_backbone",
]
