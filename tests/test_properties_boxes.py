"""Property-based checks of companion.boxes: conversions, IoU and mask -> box against brute force."""

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from torchvision.ops import box_iou as tv_box_iou

from companion import boxes

# modest and deterministic: no example database written into the project, no timing flakiness
CHECK = settings(max_examples=50, deadline=None, database=None, derandomize=True)

coord = st.integers(0, 200)


@st.composite
def xyxy(draw, n_min=1, n_max=6):
    n = draw(st.integers(n_min, n_max))
    rows = []
    for _ in range(n):
        x1, x2 = sorted((draw(coord), draw(coord)))
        y1, y2 = sorted((draw(coord), draw(coord)))
        rows.append([x1, y1, x2, y2])
    return torch.tensor(rows, dtype=torch.float32)


@CHECK
@given(xyxy())
def test_xyxy_cxcywh_round_trip(b):
    c = boxes.xyxy_to_cxcywh(b)
    assert torch.allclose(c[:, 2], b[:, 2] - b[:, 0]) and torch.allclose(c[:, 3], b[:, 3] - b[:, 1])
    assert torch.allclose(boxes.cxcywh_to_xyxy(c), b, atol=1e-4)


@CHECK
@given(xyxy(), xyxy())
def test_best_iou_is_the_row_max_of_torchvision_box_iou(pred, gt):
    # boxes with area: torchvision's IoU is 0/0 for two empty boxes
    pred = pred + torch.tensor([0.0, 0, 1, 1])
    gt = gt + torch.tensor([0.0, 0, 1, 1])
    gts = [gt] * len(pred)
    expected = tv_box_iou(pred, gt).max(dim=1).values
    assert torch.allclose(boxes.best_iou(pred, gts), expected)
    # a box against itself
    assert torch.allclose(boxes.best_iou(pred, list(pred.unsqueeze(1))), torch.ones(len(pred)))


def _components_brute_force(m: np.ndarray) -> list[set]:
    """8-connected components by flood fill, in scan order of their first pixel."""
    h, w = m.shape
    seen, comps = set(), []
    for y in range(h):
        for x in range(w):
            if m[y, x] and (y, x) not in seen:
                comp, stack = set(), [(y, x)]
                seen.add((y, x))
                while stack:
                    cy, cx = stack.pop()
                    comp.add((cy, cx))
                    for dy in (-1, 0, 1):
                        for dx in (-1, 0, 1):
                            ny, nx = cy + dy, cx + dx
                            if 0 <= ny < h and 0 <= nx < w and m[ny, nx] and (ny, nx) not in seen:
                                seen.add((ny, nx))
                                stack.append((ny, nx))
                comps.append(comp)
    return comps


masks = st.integers(1, 9).flatmap(lambda h: st.integers(1, 9).flatmap(lambda w: arrays(np.bool_, (h, w))))


@CHECK
@given(masks)
def test_mask_to_box_of_the_largest_component_is_its_tight_box(m):
    comps = _components_brute_force(m)
    box = boxes.mask_to_box(boxes.largest_component(m))
    if not comps:
        assert box.tolist() == [0.0, 0.0, float(m.shape[1]), float(m.shape[0])]
        return
    biggest = max(len(c) for c in comps)
    # ties go to the component met first in scan order (scipy labels top-left first)
    comp = next(c for c in comps if len(c) == biggest)
    ys, xs = zip(*comp)
    assert box.tolist() == [min(xs), min(ys), max(xs) + 1, max(ys) + 1]
    assert boxes.largest_component(m).sum() == biggest
