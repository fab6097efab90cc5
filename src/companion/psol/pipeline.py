"""PSOL in one call: features -> DDT pseudo boxes -> a class-agnostic regressor -> boxes for new images.

Book section: *PSOL* "The whole pipeline".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from .. import train
from .augment import BoxDataset, box_augment, xyxy_to_xywh
from ..tensors import as_images
from .ddt import DDT, ddt_boxes, extract_descriptors
from .regressor import BoxRegressor, predict_boxes, train_regressor

__all__ = ["PSOLOutput", "DDTOutput", "ddt_train_test", "psol"]


class DDTOutput(NamedTuple):
    """DDT's pseudo boxes for the training images and, when their labels were given, its boxes for
    the test images (each projected on its class's direction, fitted on the training images)."""

    pseudo_boxes: torch.Tensor  # (N_train, 4) xyxy pixels
    train_maps: torch.Tensor  # (N_train, h, w)
    ddt: dict[int, DDT]
    test_boxes: torch.Tensor | None = None
    test_maps: torch.Tensor | None = None


def ddt_train_test(trunk: nn.Module, train_images: torch.Tensor, train_labels, test_images: torch.Tensor | None = None,
                   test_labels=None, *, input_size: int | None = None, normalize: bool = True,
                   sign: str = "norm") -> DDTOutput:
    """Step 1 of :func:`psol`: DDT per class on ``trunk``'s descriptors of the training images (the labels
    only group them), and, with ``test_labels``, DDT's boxes for the test images.

    Book section: *PSOL* "The whole pipeline".
    """
    train_images = as_images(train_images, "train_images", channels=3)
    if (test_images is None) != (test_labels is None):
        raise ValueError("ddt_train_test() boxes test images only with their labels (each is projected on its "
                         "class's direction): give both test_images and test_labels, or neither")
    size = train_images.shape[-1]
    d_train = extract_descriptors(trunk, train_images, input_size=input_size, normalize=normalize)
    pseudo, maps, models = ddt_boxes(d_train, train_labels, size, sign=sign)
    if test_images is None:
        return DDTOutput(pseudo, maps, models)
    test_images = as_images(test_images, "test_images", channels=3)
    d_test = extract_descriptors(trunk, test_images, input_size=input_size, normalize=normalize)
    test_boxes, test_maps, _ = ddt_boxes(d_test, test_labels, size, models=models)
    return DDTOutput(pseudo, maps, models, test_boxes, test_maps)


@dataclass
class PSOLOutput:
    """What :func:`psol` produced: training pseudo boxes, the DDT models, the trained regressor,
    its boxes for the new images and, when their labels were given, DDT's boxes for them too."""

    pseudo_boxes: torch.Tensor  # (N_train, 4) xyxy pixels
    train_maps: torch.Tensor  # (N_train, h, w) DDT projections
    ddt: dict[int, DDT]
    regressor: BoxRegressor
    boxes: torch.Tensor  # (N_test, 4) regressed, xyxy pixels
    fit: train.FitResult
    ddt_test_boxes: torch.Tensor | None = None
    ddt_test_maps: torch.Tensor | None = None


def psol(train_images: torch.Tensor, train_labels, test_images: torch.Tensor, *, trunk: nn.Module,
         backbone: nn.Module, channels: int, fit_config: train.FitConfig, test_labels=None,
         input_size: int | None = None, normalize: bool = True, sign: str = "norm",
         crop_scale: tuple[float, float] | None = (0.2, 1.0), flip: float = 0.5, loss_weight: float = 50.0,
         head_lr_mult: float = 2.0, regressor_normalize: bool = False) -> PSOLOutput:
    """Run PSOL on in-memory images ``(N, 3, S, S)`` in [0, 1].

    1. ``trunk`` (a feature extractor) gives descriptors; DDT per class gives pseudo boxes
       (training labels are used only to group images into classes).
    2. A :class:`BoxRegressor` on ``backbone`` (``channels`` output channels) learns the pseudo
       boxes with box-aware flips (and random resized crops when ``crop_scale`` is given).
    3. It predicts a box for every test image, with no class label.

    With ``test_labels`` DDT also boxes the test images (each on its class's direction), the
    baseline the regressor is compared with.

    Book section: *PSOL* "The whole pipeline".
    """
    train_images = as_images(train_images, "train_images", channels=3)
    test_images = as_images(test_images, "test_images", channels=3)
    size = train_images.shape[-1]
    if train_images.shape[-2] != size or test_images.shape[-2:] != train_images.shape[-2:]:
        raise ValueError("psol() takes square training and test images of one size; "
                         f"got {tuple(train_images.shape[-2:])} and {tuple(test_images.shape[-2:])}")
    ddt = ddt_train_test(trunk, train_images, train_labels, None if test_labels is None else test_images, test_labels,
                         input_size=input_size, normalize=normalize, sign=sign)
    pseudo, maps, models = ddt.pseudo_boxes, ddt.train_maps, ddt.ddt
    model = BoxRegressor(backbone, channels)
    if crop_scale is None and not regressor_normalize:
        # flips only: whole batches are flipped inside the step (no per-image transform)
        data = (train_images, xyxy_to_xywh(pseudo, size))
        result = train_regressor(model, data, fit_config, loss_weight=loss_weight, head_lr_mult=head_lr_mult,
                                 flip=flip)
    else:
        if crop_scale is None:
            from torchvision.transforms import v2

            transform = v2.RandomHorizontalFlip(flip)
        else:
            transform = box_augment(size, scale=crop_scale, flip=flip)
        data = BoxDataset(train_images, pseudo, transform=transform, normalize=regressor_normalize)
        result = train_regressor(model, data, fit_config, loss_weight=loss_weight, head_lr_mult=head_lr_mult)
    boxes = predict_boxes(model, test_images, normalize=regressor_normalize)
    return PSOLOutput(pseudo, maps, models, model, boxes, result, ddt.test_boxes, ddt.test_maps)
