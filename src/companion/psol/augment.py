r"""Box-aware augmentation: the image and its (pseudo) box move together.

PSOL trains its regressor with a random resized crop and a horizontal flip, and the target box
must follow both. The transforms come from ``torchvision.transforms.v2``, which moves
``tv_tensors.BoundingBoxes`` with the image and clips them to the crop. What this module adds is
the paper's rule that a crop must keep part of the box (otherwise it is drawn again, and after
``tries`` failures the whole image is used), and the conversion to the regressor's target,
normalised :math:`(x, y, w, h) \in [0, 1]^4`. A horizontal flip maps it to :math:`(1 - x - w, y, w, h)`
(:func:`flip_xywh`, which the tests check against torchvision).

Book section: *PSOL* "Box-aware augmentation".
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2

from .. import boxes as bx

__all__ = [
    "xyxy_to_xywh",
    "xywh_to_xyxy",
    "flip_xywh",
    "RandomResizedBBoxCrop",
    "box_augment",
    "eval_transform",
    "BoxDataset",
]


def _size_hw(size) -> tuple[float, float]:
    if isinstance(size, (int, float)):
        return float(size), float(size)
    h, w = size
    return float(h), float(w)


def xyxy_to_xywh(boxes, size) -> torch.Tensor:
    """Pixel ``x1 y1 x2 y2`` boxes ``(N, 4)`` in an image of ``size`` (``S`` or ``(H, W)``) ->
    normalised ``(x, y, w, h)`` in [0, 1], the regressor's target.

    Book section: *PSOL* "Box-aware augmentation".
    """
    b = bx.as_boxes(boxes)
    h, w = _size_hw(size)
    scale = torch.tensor([w, h, w, h])
    xyxy = b / scale
    return torch.cat([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], dim=1)


def xywh_to_xyxy(xywh, size) -> torch.Tensor:
    """Normalised ``(x, y, w, h)`` ``(N, 4)`` -> pixel ``x1 y1 x2 y2`` in an image of ``size``.

    A negative width or height (an inside-out box) is a ``ValueError``, not a silent swap.

    Book section: *PSOL* "Box-aware augmentation".
    """
    t = torch.as_tensor(xywh, dtype=torch.float32).reshape(-1, 4)
    if not torch.isfinite(t).all():
        raise ValueError("xywh holds NaN or infinite values")
    bad = (t[:, 2:] < 0).any(1).nonzero().flatten().tolist()
    if bad:
        raise ValueError(f"xywh must have non-negative width and height; rows {bad[:5]} have "
                         f"(w, h) = {t[bad[0], 2:].tolist()}")
    h, w = _size_hw(size)
    x1, y1 = t[:, 0], t[:, 1]
    x2, y2 = x1 + t[:, 2], y1 + t[:, 3]
    return torch.stack([x1 * w, y1 * h, x2 * w, y2 * h], dim=1)


def flip_xywh(xywh) -> torch.Tensor:
    r"""A horizontal flip of normalised boxes: :math:`(x, y, w, h) \mapsto (1 - x - w, y, w, h)`.

    Book section: *PSOL* "Box-aware augmentation".
    """
    t = torch.as_tensor(xywh, dtype=torch.float32).reshape(-1, 4).clone()
    t[:, 0] = 1.0 - t[:, 0] - t[:, 2]
    return t


class RandomResizedBBoxCrop(v2.RandomResizedCrop):
    """``v2.RandomResizedCrop`` that keeps part of the box in every crop.

    A crop that does not overlap the box (by at least one pixel each way) is drawn again, up to
    ``tries`` times, then the whole image is used (resized to ``size``), which always contains it.
    The box is clipped to the crop by torchvision.

    Book section: *PSOL* "Box-aware augmentation".
    """

    def __init__(self, size: int, scale=(0.2, 1.0), ratio=(3 / 4, 4 / 3), tries: int = 30, **kwargs):
        super().__init__(size, scale=scale, ratio=ratio, **kwargs)
        if tries < 1:
            raise ValueError(f"tries must be at least 1, got {tries}")
        self.tries = tries

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        found = [x for x in flat_inputs if isinstance(x, tv_tensors.BoundingBoxes)]
        if not found:
            raise ValueError("RandomResizedBBoxCrop needs the box as tv_tensors.BoundingBoxes beside the image")
        box = v2.functional.convert_bounding_box_format(found[0], new_format="XYXY").as_subclass(torch.Tensor)
        for _ in range(self.tries):
            p = super().make_params(flat_inputs)
            x1 = torch.clamp(box[:, 0], min=p["left"])
            x2 = torch.clamp(box[:, 2], max=p["left"] + p["width"])
            y1 = torch.clamp(box[:, 1], min=p["top"])
            y2 = torch.clamp(box[:, 3], max=p["top"] + p["height"])
            if bool(((x2 - x1 >= 1) & (y2 - y1 >= 1)).all()):
                return p
        height, width = found[0].canvas_size
        return dict(top=0, left=0, height=height, width=width)


def box_augment(size: int, scale=(0.2, 1.0), ratio=(3 / 4, 4 / 3), flip: float = 0.5, tries: int = 30) -> v2.Compose:
    """The paper's training augmentation: box-keeping random resized crop, then a horizontal flip.

    Call it as ``image, box = t(image, tv_tensors.BoundingBoxes(...))``. No colour augmentation,
    as in the paper.

    Book section: *PSOL* "Box-aware augmentation".
    """
    if not 0.0 <= flip <= 1.0:
        raise ValueError(f"flip must be a probability in [0, 1], got {flip}")
    return v2.Compose([RandomResizedBBoxCrop(size, scale=scale, ratio=ratio, tries=tries), v2.RandomHorizontalFlip(flip)])


def eval_transform(size: int = 224, resize: int = 256) -> v2.Compose:
    """The paper's test-time view: squash-resize to ``resize x resize``, centre-crop ``size``.

    Ground-truth boxes passed beside the image get the same resize and crop.

    Book section: *PSOL* "Measuring localization".
    """
    if size > resize:
        raise ValueError(f"the crop ({size}) cannot be larger than the resize ({resize})")
    return v2.Compose([v2.Resize((resize, resize), antialias=True), v2.CenterCrop(size)])


def _as_bbox(box: torch.Tensor, height: int, width: int) -> tv_tensors.BoundingBoxes:
    return tv_tensors.BoundingBoxes(box.reshape(1, 4), format="XYXY", canvas_size=(height, width))


class BoxDataset(Dataset):
    """Images with one box each, augmented box-aware; items are ``(image (3, S, S), xywh (4,))``.

    ``images``: a ``(N, 3, H, W)`` tensor in [0, 1], or a callable ``i -> (3, H_i, W_i)`` tensor with
    ``length`` items (files on disk in full runs). ``boxes``: ``(N, 4)`` pixel xyxy in each image's
    own size; a box outside its image is an error. ``transform``: a v2 transform taking
    ``(image, BoundingBoxes)`` (e.g. :func:`box_augment`); ``normalize`` maps the image with
    ImageNet mean/std for pretrained backbones.

    Book section: *PSOL* "Box-aware augmentation".
    """

    def __init__(self, images, boxes, transform=None, normalize: bool = False, length: int | None = None):
        self.boxes = bx.as_boxes(boxes, "pseudo boxes")
        if isinstance(images, torch.Tensor):
            if images.ndim != 4 or images.shape[1] != 3:
                raise ValueError(f"images must have shape (N, 3, H, W), got {tuple(images.shape)}")
            self.load = images.__getitem__
            n = len(images)
            bx.check_inside(self.boxes, images.shape[2], images.shape[3], "pseudo boxes")
        else:
            if length is None:
                raise ValueError("give length= when images is a loader function")
            self.load, n = images, length
        if len(self.boxes) != n:
            raise ValueError(f"{n} images but {len(self.boxes)} boxes")
        if n == 0:
            raise ValueError("no images")
        self.transform = transform
        self.normalize = v2.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]) if normalize else None

    def __len__(self) -> int:
        return len(self.boxes)

    def __getitem__(self, i: int):
        image = self.load(i)
        _, h, w = image.shape
        box = self.boxes[i]
        bx.check_inside(box.reshape(1, 4), h, w, f"box of image {i}")
        if self.transform is not None:
            image, bbox = self.transform(tv_tensors.Image(image), _as_bbox(box, h, w))
            box = bbox.as_subclass(torch.Tensor).reshape(4)
            image = image.as_subclass(torch.Tensor)
            h, w = image.shape[-2:]
        target = xyxy_to_xywh(box, (h, w)).reshape(4)
        if self.normalize is not None:
            image = self.normalize(image)
        return image, target
