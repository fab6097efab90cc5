"""PSOL: weakly supervised object localization as class-agnostic box regression on DDT pseudo boxes.

Zhang, Cao and Wu, "Rethinking the Route Towards Weakly Supervised Object Localization", CVPR 2020.

- :mod:`.ddt`: deep descriptor transforming, pseudo boxes and the sign convention.
- :mod:`.augment`: box-aware crops and flips (torchvision ``transforms.v2``).
- :mod:`.regressor`: the class-agnostic box regressor and its loss.
- :mod:`.metrics`: GT-known and Top-k Loc, per-class averages.
- :mod:`.encoder`: the quick run's small classifier and CAM.
- :mod:`.pipeline`: the whole method in one call; :mod:`.experiment`: quick and full runs.
- :mod:`.estimate`: :func:`run_hours`, a full (or colab) run's estimated T4 time.

Book chapter: *PSOL* (``book/02_psol.md``).
"""

from . import augment, config, ddt, encoder, estimate, metrics, pipeline, regressor
from .augment import BoxDataset, box_augment, eval_transform, flip_xywh, xywh_to_xyxy, xyxy_to_xywh
from .config import PSOLConfig, colab, full, quick, study
from .ddt import DDT, SIGN_CONVENTIONS, ddt_boxes, extract_descriptors, fit_ddt, fit_ddt_per_class, map_to_box
from .estimate import run_hours
from .experiment import CHAPTER, Run, run
from .metrics import localization_metrics
from .pipeline import psol
from .regressor import BoxRegressor, box_loss, predict_boxes, train_regressor

__all__ = [
    "augment", "config", "ddt", "encoder", "estimate", "metrics", "pipeline", "regressor", "run_hours",
    "BoxDataset", "box_augment", "eval_transform", "flip_xywh", "xywh_to_xyxy", "xyxy_to_xywh",
    "PSOLConfig", "colab", "full", "quick", "study",
    "DDT", "SIGN_CONVENTIONS", "ddt_boxes", "extract_descriptors", "fit_ddt", "fit_ddt_per_class", "map_to_box",
    "CHAPTER", "Run", "run", "localization_metrics", "psol",
    "BoxRegressor", "box_loss", "predict_boxes", "train_regressor",
]
