r"""The class-agnostic box regressor that PSOL trains on DDT's pseudo boxes.

A backbone's feature map is average-pooled and passed through the paper's head

.. math::

    \hat b = \sigma\big(W_2\, \mathrm{ReLU}(W_1 f + b_1) + b_2\big) \in [0, 1]^4,
    \qquad W_1 \in \mathbb R^{512 \times C},\; W_2 \in \mathbb R^{4 \times 512},

which predicts a normalised :math:`(x, y, w, h)`. The loss is the mean squared error to the
(pseudo) target, scaled by :math:`\lambda = 50`:

.. math::

    \mathcal L = \lambda \cdot \tfrac14 \lVert \hat b - b \rVert_2^2 .

No class label is used anywhere: one box per image, whatever the class.

Book section: *PSOL* "A class-agnostic box regressor".
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .. import train
from .augment import xywh_to_xyxy
from ..tensors import as_images, check_batch_size

__all__ = ["BoxRegressor", "box_loss", "regressor_optimizer", "train_regressor", "predict_boxes"]


class BoxRegressor(nn.Module):
    """``backbone`` (images -> ``(N, C, h, w)``) + global average pool + Linear-ReLU-Linear-Sigmoid.

    ``forward(x)``: ``(N, 3, H, W)`` -> ``(N, 4)`` normalised ``(x, y, w, h)`` in [0, 1].

    Book section: *PSOL* "A class-agnostic box regressor".
    """

    def __init__(self, backbone: nn.Module, channels: int, hidden: int = 512):
        super().__init__()
        if channels <= 0 or hidden <= 0:
            raise ValueError(f"channels and hidden must be positive, got {channels} and {hidden}")
        self.backbone = backbone
        self.head = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, 4), nn.Sigmoid())
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"the regressor takes (N, 3, H, W) images, got {tuple(x.shape)}")
        f = self.backbone(x)  # (N, C, h, w)
        if f.shape[1] != self.channels:
            raise ValueError(f"the backbone gives {f.shape[1]} channels, the head expects {self.channels}")
        return self.head(f.mean(dim=(2, 3)))  # (N, 4)


def box_loss(pred: torch.Tensor, target: torch.Tensor, weight: float = 50.0) -> torch.Tensor:
    r""":math:`\lambda \cdot \mathrm{MSE}(\hat b, b)` over normalised ``(N, 4)`` boxes (paper: :math:`\lambda = 50`).

    Book section: *PSOL* "A class-agnostic box regressor".
    """
    if pred.shape != target.shape or pred.ndim != 2 or pred.shape[1] != 4:
        raise ValueError(f"pred and target must both be (N, 4), got {tuple(pred.shape)} and {tuple(target.shape)}")
    return weight * F.mse_loss(pred.float(), target.float())


def regressor_optimizer(model: BoxRegressor, config: train.FitConfig, head_lr_mult: float = 2.0) -> torch.optim.Optimizer:
    """The paper's optimiser: the new head learns ``head_lr_mult`` (2) times faster than the backbone.

    Book section: *PSOL* "A class-agnostic box regressor".
    """
    groups = [
        {"params": [p for p in model.backbone.parameters() if p.requires_grad], "lr": config.lr},
        {"params": list(model.head.parameters()), "lr": config.lr * head_lr_mult},
    ]
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    return torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay)


def train_regressor(model: BoxRegressor, data, config: train.FitConfig, loss_weight: float = 50.0,
                    head_lr_mult: float = 2.0, flip: float = 0.0) -> train.FitResult:
    r"""Fit ``model`` on ``data`` (items ``(image, xywh target)``, e.g. a :class:`~.augment.BoxDataset`,
    or a tuple of tensors ``(images (N, 3, S, S), xywh (N, 4))``) with :func:`box_loss` through
    :func:`companion.train.fit` (progress, checkpoints, resume).

    ``flip``: flip each row of a batch with this probability, box included
    (:math:`x \mapsto 1 - x - w`), on whole batches at once: the same augmentation as
    ``v2.RandomHorizontalFlip`` in a :class:`~.augment.BoxDataset`, without its per-image cost.

    Book section: *PSOL* "A class-agnostic box regressor".
    """
    if not 0.0 <= flip <= 1.0:
        raise ValueError(f"flip must be a probability in [0, 1], got {flip}")

    def step(m, batch):
        x, target = batch
        if flip > 0:
            which = torch.rand(len(x), device=x.device) < flip
            x = torch.where(which[:, None, None, None], x.flip(-1), x)
            flipped = target.clone()
            flipped[:, 0] = 1.0 - target[:, 0] - target[:, 2]
            target = torch.where(which[:, None], flipped, target)
        return box_loss(m(x), target, loss_weight)

    opt = regressor_optimizer(model, config, head_lr_mult)
    return train.fit(model, data, step, config, optimizer=opt)


@torch.no_grad()
def predict_boxes(model: BoxRegressor, images: torch.Tensor, batch_size: int = 128, normalize: bool = False,
                  device: torch.device | str | None = None) -> torch.Tensor:
    """Regressed boxes for ``images`` ``(N, 3, H, W)``: ``(N, 4)`` xyxy pixels in the images' own size.

    ``images`` must be floating point in [0, 1] (``TypeError`` for uint8, ``ValueError`` for 0-255
    floats); ``normalize``: ImageNet mean/std first (as the model was trained with).

    Book section: *PSOL* "The whole pipeline".
    """
    images = as_images(images, channels=3)
    check_batch_size(batch_size)
    device = torch.device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.eval()
    mean = torch.tensor([0.485, 0.456, 0.406], device=device).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], device=device).view(1, 3, 1, 1)
    out = []
    for s in range(0, len(images), batch_size):
        x = images[s : s + batch_size].to(device, torch.float32)
        if normalize:
            x = (x - mean) / std
        out.append(model(x).float().cpu())
    model.train(was_training)
    xywh = torch.cat(out).clamp(0, 1)
    # w and h can push x2/y2 past the edge: clip to the image (a box is never outside it)
    xyxy = xywh_to_xyxy(xywh, images.shape[-2:])
    h, w = images.shape[-2:]
    return torch.stack([xyxy[:, 0].clamp(0, w), xyxy[:, 1].clamp(0, h), xyxy[:, 2].clamp(0, w), xyxy[:, 3].clamp(0, h)], 1)
