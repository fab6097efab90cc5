import numpy as np
import pytest
import torch

from companion import boxes


def test_largest_component_uses_8_connectivity():
    m = np.zeros((6, 6), bool)
    m[0, 0] = m[1, 1] = m[2, 2] = True  # diagonal chain: one component under 8-connectivity
    m[4, 4] = m[4, 5] = True
    out = boxes.largest_component(m)
    assert out.sum() == 3 and out[0, 0] and out[2, 2] and not out[4, 4]


def test_mask_to_box_is_tight_and_exclusive():
    m = np.zeros((10, 12), bool)
    m[2:5, 3:9] = True
    assert boxes.mask_to_box(m).tolist() == [3, 2, 9, 5]
    assert boxes.mask_to_box(np.zeros((10, 12), bool)).tolist() == [0, 0, 12, 10]


def test_corloc_best_gt_counts_and_per_class_average():
    pred = torch.tensor([[0, 0, 10, 10], [0, 0, 10, 10], [50, 50, 60, 60]], dtype=torch.float32)
    gts = [torch.tensor([[30, 30, 40, 40], [0, 0, 10, 9]]), torch.tensor([[0, 0, 4, 4]]), torch.tensor([[50, 50, 60, 60]])]
    assert boxes.best_iou(pred, gts).tolist() == pytest.approx([0.9, 0.16, 1.0])
    assert boxes.corloc(pred, gts) == pytest.approx(2 / 3)
    # class 0 has images 0 and 1 (1 of 2 hit), class 1 has image 2 (hit): mean of 0.5 and 1.0
    assert boxes.corloc(pred, gts, labels=[0, 0, 1]) == pytest.approx(0.75)


def test_iou_exactly_half_is_not_a_hit():
    pred = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    gt = torch.tensor([[0.0, 0.0, 10.0, 5.0]])
    assert boxes.best_iou(pred, gt).item() == pytest.approx(0.5)
    assert boxes.gt_known_loc(pred, gt) == 0.0


def test_top_k_loc_needs_class_and_box():
    pred = torch.tensor([[0.0, 0, 10, 10]] * 2)
    gt = torch.tensor([[0.0, 0, 10, 10], [20.0, 20, 30, 30]])
    scores = torch.tensor([[0.9, 0.1], [0.9, 0.1]])
    assert boxes.top_k_loc(pred, gt, scores, [0, 0], k=1) == 0.5


@pytest.mark.parametrize("bad, msg", [([[1, 2, 3]], "shape"), ([[5, 0, 1, 4]], "x2 >= x1"), ([[0, 0, float("nan"), 1]], "NaN")])
def test_bad_boxes_are_rejected(bad, msg):
    with pytest.raises(ValueError, match=msg):
        boxes.as_boxes(bad)


@pytest.mark.parametrize("threshold", [1.5, -1, 0, float("nan"), "half"])
def test_localization_thresholds_outside_0_1_are_rejected(threshold):
    pred = torch.tensor([[0.0, 0, 10, 10]])
    gt = torch.tensor([[0.0, 0, 10, 10]])
    msg = r"threshold must be (a number )?in \(0, 1\], got " + ("'half'" if threshold == "half" else "")
    for call in (lambda: boxes.corloc(pred, gt, threshold=threshold),
                 lambda: boxes.gt_known_loc(pred, gt, threshold=threshold),
                 lambda: boxes.top_k_loc(pred, gt, torch.tensor([[0.9, 0.1]]), [0], threshold=threshold)):
        with pytest.raises(ValueError, match=msg):
            call()


def test_threshold_one_is_allowed_and_never_hit():
    pred = torch.tensor([[0.0, 0, 10, 10]])
    assert boxes.corloc(pred, pred, threshold=1.0) == 0.0  # IoU > 1 is impossible
    assert boxes.gt_known_loc(pred, pred, threshold=0.99) == 1.0


@pytest.mark.parametrize("k", [0, -1, 1.5, True])
def test_top_k_needs_a_positive_integer_k(k):
    pred = torch.tensor([[0.0, 0, 10, 10]])
    with pytest.raises(ValueError, match=f"k must be a positive integer, got {k!r}"):
        boxes.top_k_loc(pred, pred, torch.tensor([[0.9, 0.1]]), [0], k=k)
