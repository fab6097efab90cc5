r"""A small CNN classifier for quick runs: its conv features feed DDT, its scores give Top-1 Loc,
and its class activation maps (CAM) are the baseline PSOL argues against.

In the paper every network starts from ImageNet weights, which a quick run cannot download. The
quick run instead trains this network on the synthetic scenes' classes for a few seconds and uses
it three ways: as a feature extractor for DDT, as the initialisation of the box regressor's
backbone, and as the classifier for Top-1 Loc.

CAM :cite:`zhou2016cam` for class :math:`c` weighs the last feature maps :math:`f_k` by the classifier's weights:

.. math::

    M_c(i, j) = \sum_k w_{c,k}\, f_k(i, j),

and the box is the largest connected region above a fraction (commonly 20 %) of its maximum.

Book section: *PSOL* "Why split localization from classification".
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .. import boxes as bx
from .. import train

__all__ = ["SmallCNN", "train_classifier", "class_scores", "cam_maps", "cam_boxes"]


def _block(c_in: int, c_out: int, kernel: int = 3, stride: int = 2) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class SmallCNN(nn.Module):
    """Four stride-2 conv stages (``widths``) + global average pool + a linear classifier.

    ``trunk(stage)`` returns the network cut after ``stage`` (1-4; stride ``2**stage``), sharing
    weights, for DDT descriptors or as a regressor backbone. ``forward``: ``(N, 3, H, W)`` ->
    ``(N, num_classes)`` logits.

    Book section: *PSOL* "Quick run".
    """

    def __init__(self, num_classes: int, widths=(16, 32, 64, 128)):
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"a classifier needs at least 2 classes, got {num_classes}")
        if len(widths) != 4 or min(widths) <= 0:
            raise ValueError(f"widths must be 4 positive channel counts, got {widths}")
        chans = (3, *widths)
        self.stages = nn.ModuleList([_block(chans[i], chans[i + 1], 5 if i == 0 else 3) for i in range(4)])
        self.fc = nn.Linear(widths[-1], num_classes)
        self.widths = tuple(widths)

    def features(self, x: torch.Tensor, stage: int = 4) -> torch.Tensor:
        """Feature map after ``stage``: ``(N, widths[stage-1], H / 2**stage, W / 2**stage)``."""
        if not 1 <= stage <= 4:
            raise ValueError(f"stage must be 1..4, got {stage}")
        for block in self.stages[:stage]:
            x = block(x)
        return x

    def trunk(self, stage: int = 4) -> nn.Sequential:
        """The stages up to ``stage`` as one module (weights shared with this network)."""
        if not 1 <= stage <= 4:
            raise ValueError(f"stage must be 1..4, got {stage}")
        return nn.Sequential(*self.stages[:stage])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).mean(dim=(2, 3)))


def train_classifier(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, config: train.FitConfig,
                     flip: bool = True) -> train.FitResult:
    """Cross-entropy training through :func:`companion.train.fit` (random horizontal flips).

    Book section: *PSOL* "Quick run".
    """
    if images.ndim != 4 or len(images) != len(labels):
        raise ValueError(f"images (N, 3, H, W) and N labels needed, got {tuple(images.shape)} and {len(labels)}")

    def step(m, batch):
        x, y = batch
        if flip:
            which = torch.rand(len(x), device=x.device) < 0.5
            x = torch.where(which[:, None, None, None], x.flip(-1), x)
        logits = m(x)
        return {"loss": F.cross_entropy(logits, y), "acc": (logits.argmax(1) == y).float().mean()}

    return train.fit(model, (images, labels.long()), step, config)


@torch.no_grad()
def class_scores(model: nn.Module, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Softmax class scores ``(N, num_classes)`` (eval mode).

    Book section: *PSOL* "Measuring localization".
    """
    was = model.training
    model.eval()
    device = next(model.parameters()).device
    out = torch.cat([model(images[s : s + batch_size].to(device)).softmax(1).cpu() for s in range(0, len(images), batch_size)])
    model.train(was)
    return out


@torch.no_grad()
def cam_maps(model: SmallCNN, images: torch.Tensor, classes: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    r"""Class activation maps :math:`M_c(i,j) = \sum_k w_{c,k} f_k(i,j)` for the given ``classes``: ``(N, h, w)``.

    Book section: *PSOL* "Why split localization from classification".
    """
    classes = torch.as_tensor(classes).long()
    if len(classes) != len(images):
        raise ValueError(f"{len(images)} images but {len(classes)} classes")
    was = model.training
    model.eval()
    device = next(model.parameters()).device
    maps = []
    for s in range(0, len(images), batch_size):
        f = model.features(images[s : s + batch_size].to(device))  # (B, K, h, w)
        w = model.fc.weight[classes[s : s + batch_size].to(device)]  # (B, K)
        maps.append(torch.einsum("bkhw,bk->bhw", f, w).cpu())
    model.train(was)
    return torch.cat(maps)


def cam_boxes(maps: torch.Tensor, image_size: int, threshold: float = 0.2) -> torch.Tensor:
    """CAM boxes: per map, the largest component above ``threshold`` x its maximum, scaled to the
    image; ``(N, 4)`` xyxy pixels. The map is upsampled bilinearly first, as CAM papers do.

    Book section: *PSOL* "Why split localization from classification".
    """
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    if maps.ndim != 3:
        raise ValueError(f"maps must be (N, h, w), got {tuple(maps.shape)}")
    up = F.interpolate(maps[:, None].float(), size=(image_size, image_size), mode="bilinear", align_corners=False)[:, 0]
    out = []
    for m in up:
        lo, hi = float(m.min()), float(m.max())
        mask = (m - lo) > threshold * (hi - lo)
        out.append(bx.mask_to_box(bx.largest_component(mask.numpy())))
    return torch.stack(out)
