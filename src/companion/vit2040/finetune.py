r"""Supervised training: fine-tuning a pretrained ViT, and the from-scratch baseline.

Both use the same recipe (the official ``main_deit.py``): random resized crops, colour jitter (p 0.4),
grayscale (p 0.2), RandAugment, flips and no blur, mixup on even epochs and CutMix on odd ones (torchvision ``transforms.v2.MixUp``/``CutMix``), and
the label-smoothed cross-entropy

$$\mathcal L = -\sum_c \big((1-\varepsilon)\,\tilde y_c+\tfrac{\varepsilon}{C}\big)\log p_c ,$$

with $\varepsilon=0.1$ when label smoothing is on, $\tilde y$ the (mixed) target and $C$ classes.

Book section: *ViT with 2040 images* "Fine-tuning".
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import VisionTransformer
from torchvision.transforms import v2

from .augment import finetune_augment
from .config import FinetuneAugment
from ..tensors import check_batch_size
from .model import check_images
from .instance import as_float


class Supervised:
    """The supervised step for ``companion.train.fit``: ``step(model, (images, labels)) -> dict``.

    It counts its own steps (saved with checkpoints through ``state_dict``) so that mixup/CutMix
    alternate by epoch exactly, also after a resume.

    Book section: *ViT with 2040 images* "Fine-tuning".
    """

    def __init__(self, num_classes: int, size: int, steps_per_epoch: int,
                 augment: FinetuneAugment = FinetuneAugment(), label_smoothing: float = 0.1, mix: bool = True,
                 alpha: float = 0.5):
        if not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
        if not 0 <= label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.num_classes, self.size, self.steps_per_epoch = num_classes, size, max(1, steps_per_epoch)
        if not isinstance(augment, FinetuneAugment):
            raise TypeError(f"augment must be a FinetuneAugment, got {type(augment).__name__}")
        self.augment = finetune_augment(size, augment)
        self.label_smoothing, self.mix = label_smoothing, mix
        self.mixers = (v2.MixUp(alpha=alpha, num_classes=num_classes), v2.CutMix(alpha=alpha, num_classes=num_classes))
        self.step = 0

    def state_dict(self) -> dict:
        return {"step": self.step}

    def load_state_dict(self, state: dict) -> None:
        self.step = int(state["step"])

    def __call__(self, model: nn.Module, batch) -> dict:
        images, labels = batch  # (B, C, H, W), (B,)
        x = self.augment(as_float(images))
        y = labels
        if self.mix:
            epoch = self.step // self.steps_per_epoch
            x, y = self.mixers[epoch % 2](x, labels)  # mixup on even epochs, CutMix on odd ones
        self.step += 1
        logits = model(x)
        loss = F.cross_entropy(logits, y, label_smoothing=self.label_smoothing)
        acc = (logits.argmax(1) == (y if y.ndim == 1 else y.argmax(1))).float().mean()
        return {"loss": loss, "train_acc": acc}


@torch.no_grad()
def accuracy(model: VisionTransformer, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 256) -> float:
    """Top-1 accuracy in [0, 1] of ``model`` on ``images`` (already at its resolution).

    Book section: *ViT with 2040 images* "Fine-tuning".
    """
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    check_batch_size(batch_size)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    correct = 0
    for i in range(0, len(images), batch_size):
        x = as_float(images[i:i + batch_size].to(device))
        if i == 0:
            check_images(model, x)
        correct += int((model(x).argmax(1).cpu() == labels[i:i + batch_size].cpu()).sum())
    model.train(was_training)
    return correct / len(images)
