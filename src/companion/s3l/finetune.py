r"""Fine-tuning after small-architecture pretraining: warm up the new last stage, then train everything.

1. Load the pretrained network without ``layer4`` into the full ResNet
   (:func:`~companion.s3l.architecture.to_full_resnet`); ``layer4`` and ``fc`` are new.
2. **Warm-up**: train ``layer4`` and ``fc`` with every other weight frozen (S3L: 10 epochs), so the random
   last stage does not send large gradients into the pretrained stages; the network runs in training
   mode, so the frozen trunk's batch-norm statistics are re-estimated, as S3L's ``main_freeze.py`` does.
3. **Fine-tuning**: train the whole network at the full resolution, whatever resolution it was
   pretrained at, optionally with mixup (S3L: :math:`\alpha = 1`):

.. math:: \tilde x = \lambda x_i + (1-\lambda) x_j,\qquad
          \mathcal{L} = \lambda\,\mathrm{CE}(f(\tilde x), y_i) + (1-\lambda)\,\mathrm{CE}(f(\tilde x), y_j),
          \qquad \lambda \sim \mathrm{Beta}(\alpha, \alpha).

Both steps go through :func:`companion.train.fit` (checkpoints and resume in full runs).
Book section: *S3L* "Evaluating the features".
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..ssl.augment import GPUAugment
from ..train import FitConfig, FitResult, fit
from .architecture import FrozenTrunk, freeze_trunk


#: S3L's fine-tuning crop (``main_freeze.py``: Resize 256 then RandomCrop 224): a square of 224/256 of
#: the side, so 0.875**2 of the area, at a random place.
OFFICIAL_CROP = ((224 / 256) ** 2, (224 / 256) ** 2)


def finetune_augment(resolution: int, scale: tuple[float, float] = OFFICIAL_CROP, p_flip: float = 0.5,
                     ratio: tuple[float, float] = (1.0, 1.0)) -> GPUAugment:
    """Fine-tuning's light augmentation on a batch: a random crop (``scale`` of the area, aspect ``ratio``;
    by default S3L's square crop of 7/8 of the side) resized to ``resolution`` and a horizontal flip
    with probability ``p_flip`` (0 for digits and glyphs), no colour changes.
    Book section: *S3L* "Evaluating the features"."""
    return GPUAugment(resolution, scale=scale, ratio=ratio, p_jitter=0.0, p_gray=0.0, blur=False, p_flip=p_flip)


def classification_step(augment: nn.Module | None = None, mixup_alpha: float = 0.0):
    """``step_fn(model, (x, y))`` for :func:`companion.train.fit`: augment, optionally mix up, cross-entropy.

    Logs the loss and the batch accuracy (on the unmixed labels). Book section: *S3L* "Evaluating the
    features".
    """
    if mixup_alpha < 0:
        raise ValueError(f"mixup_alpha must be non-negative, got {mixup_alpha}")

    def step(model, batch):
        x, y = batch
        if augment is not None:
            x = augment(x)
        if mixup_alpha > 0:
            lam = float(torch.distributions.Beta(mixup_alpha, mixup_alpha).sample())
            perm = torch.randperm(len(x), device=x.device)
            logits = model(lam * x + (1 - lam) * x[perm])  # (N, classes)
            loss = lam * F.cross_entropy(logits, y) + (1 - lam) * F.cross_entropy(logits, y[perm])
        else:
            logits = model(x)
            loss = F.cross_entropy(logits, y)
        return {"loss": loss, "acc": (logits.argmax(1) == y).float().mean()}

    return step


def _check_data(x: torch.Tensor, y: torch.Tensor) -> None:
    if not torch.is_tensor(x) or x.ndim != 4 or not x.is_floating_point():
        raise ValueError(f"x must be float images (N, C, H, W), got {getattr(x, 'shape', type(x))}")
    if not torch.is_tensor(y) or y.ndim != 1 or len(y) != len(x):
        raise ValueError(f"y must hold one class index per image ({len(x)}), got {getattr(y, 'shape', type(y))}")


def warmup_last_stage(net: nn.Module, x: torch.Tensor, y: torch.Tensor, config: FitConfig,
                      augment: nn.Module | None = None) -> FitResult:
    """Train only ``layer4`` and ``fc`` of the full ResNet ``net``; the pretrained trunk's weights are
    frozen, its batch-norm statistics re-estimated in training mode (S3L's ``main_freeze.py``).
    Unfreezes everything afterwards. Book section: *S3L* "Evaluating the features"."""
    _check_data(x, y)
    wrapped = FrozenTrunk(net)
    try:
        result = fit(wrapped, (x, y), classification_step(augment), config)
    finally:
        freeze_trunk(net, False)
    return result


def finetune(net: nn.Module, x: torch.Tensor, y: torch.Tensor, config: FitConfig, augment: nn.Module | None = None,
             mixup_alpha: float = 0.0) -> FitResult:
    """Train every weight of ``net`` on labelled images ``x`` ``(N, C, H, W)`` and labels ``y`` ``(N,)``.

    Book section: *S3L* "Evaluating the features".
    """
    _check_data(x, y)
    freeze_trunk(net, False)
    return fit(net, (x, y), classification_step(augment, mixup_alpha), config)


@torch.no_grad()
def accuracy(net: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 256) -> float:
    """Top-1 accuracy in percent of ``net`` (eval mode) on ``x``, ``y``. Book section: *S3L* "Quick run"."""
    _check_data(x, y)
    device = next(net.parameters()).device
    was = net.training
    net.eval()
    correct = 0
    for xb, yb in zip(x.split(batch_size), y.split(batch_size)):
        correct += int((net(xb.to(device)).argmax(1).cpu() == yb).sum())
    net.train(was)
    return 100.0 * correct / len(y)
