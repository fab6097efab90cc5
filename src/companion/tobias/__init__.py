"""Tobias: a random CNN sees objects (Cao & Wu, AAAI 2022; TPAMI 2024).

A CNN that was never trained already puts its largest activations on the object. This package turns
that into boxes (:mod:`.localize`), scores them against honest baselines (:mod:`.metrics`), and uses
the same maps for the paper's background-swap augmentation (:mod:`.swap`) inside self-supervised
pretraining (:mod:`.pretraining`).

Book chapter: *1. Tobias*.
"""

from . import config, localize, metrics, scenes, swap
from .estimate import run_hours
from .experiment import run
from .localize import LocalizationResult, activation_map, boxes_from_maps, localize as localize_images, normalize_map, prepare_images
from .metrics import (
    best_centred_fraction,
    centred_boxes,
    localization_scores,
    random_boxes,
    whole_image_boxes,
)
from .scenes import off_centre_scenes
from .swap import background_swap, cell_scores, foreground_cells, tobias_swap

__all__ = [
    "config", "localize", "metrics", "scenes", "swap", "run", "run_hours",
    "LocalizationResult", "activation_map", "boxes_from_maps", "localize_images", "normalize_map", "prepare_images",
    "best_centred_fraction", "centred_boxes", "localization_scores", "random_boxes", "whole_image_boxes",
    "off_centre_scenes", "background_swap", "cell_scores", "foreground_cells", "tobias_swap",
]
