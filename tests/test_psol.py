"""PSOL: DDT and its sign convention, box-aware augmentation, the regressor, metrics, bad inputs."""

import pytest
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from companion import train
from companion.psol import augment, ddt, encoder, metrics, regressor
from companion.psol.pipeline import psol


def planted(n=6, c=16, h=8, w=8, seed=0):
    """Descriptors with an object: cells inside a random box carry pattern ``v``, the rest noise.

    Returns descriptors (n, c, h, w), the cell boxes (n, 4) and the pattern."""
    g = torch.Generator().manual_seed(seed)
    v = torch.rand(c, generator=g) + 0.5
    d = 0.05 * torch.rand(n, c, h, w, generator=g)
    cells = []
    for i in range(n):
        x1, y1 = torch.randint(0, 4, (2,), generator=g).tolist()
        x2, y2 = x1 + 2 + torch.randint(0, 3, (1,), generator=g).item(), y1 + 2 + torch.randint(0, 3, (1,), generator=g).item()
        d[i, :, y1:y2, x1:x2] += v[:, None, None]
        cells.append([x1, y1, x2, y2])
    return d, torch.tensor(cells, dtype=torch.float32), v


# ---------------------------------------------------------------- DDT


def test_ddt_finds_a_planted_object():
    d, cells, _ = planted()
    boxes, maps, models = ddt.ddt_boxes(d, torch.zeros(len(d), dtype=torch.long), image_size=64)
    assert maps.shape == (6, 8, 8)
    assert torch.equal(boxes, cells * 8)  # 8 cells -> 64 px: each cell is 8x8 pixels
    assert models[0].direction.norm().item() == pytest.approx(1.0, abs=1e-5)


def test_sign_convention_same_boxes_for_negated_and_permuted_features():
    d, _, _ = planted(seed=1)
    labels = torch.zeros(len(d), dtype=torch.long)
    ref, ref_maps, _ = ddt.ddt_boxes(d, labels, 64)
    neg, neg_maps, _ = ddt.ddt_boxes(-d, labels, 64)
    perm = torch.randperm(d.shape[1], generator=torch.Generator().manual_seed(0))
    per, per_maps, _ = ddt.ddt_boxes(d[:, perm], labels, 64)
    assert torch.equal(ref, neg) and torch.equal(ref, per)
    assert torch.allclose(ref_maps, neg_maps, atol=1e-4) and torch.allclose(ref_maps, per_maps, atol=1e-4)


def test_sum_convention_is_permutation_but_not_negation_invariant():
    d, cells, _ = planted(seed=2)
    labels = torch.zeros(len(d), dtype=torch.long)
    ref, _, _ = ddt.ddt_boxes(d, labels, 64, sign="sum")
    per, _, _ = ddt.ddt_boxes(d[:, torch.arange(d.shape[1]).flip(0)], labels, 64, sign="sum")
    neg, _, _ = ddt.ddt_boxes(-d, labels, 64, sign="sum")
    assert torch.equal(ref, cells * 8) and torch.equal(ref, per)
    assert not torch.equal(ref, neg)  # negated features: "sum > 0" now points at the background


def test_the_wrong_sign_boxes_the_background():
    d, cells, _ = planted(seed=3)
    labels = torch.zeros(len(d), dtype=torch.long)
    _, _, models = ddt.ddt_boxes(d, labels, 64)
    m = models[0]
    flipped = {0: ddt.DDT(m.mean, -m.direction, m.variance, m.explained)}
    wrong, _, _ = ddt.ddt_boxes(d, labels, 64, models=flipped)
    from companion import boxes as bx

    assert (bx.best_iou(wrong, cells * 8) < 0.5).all()


def test_held_out_images_use_their_class_direction():
    d0, cells0, _ = planted(seed=4)
    d1, cells1, _ = planted(seed=5)
    d = torch.cat([d0, d1])
    labels = torch.tensor([0] * 6 + [1] * 6)
    _, _, models = ddt.ddt_boxes(d, labels, 64)
    boxes, _, _ = ddt.ddt_boxes(d[[0, 6]], labels[[0, 6]], 64, models=models)
    assert torch.equal(boxes, torch.stack([cells0[0], cells1[0]]) * 8)
    with pytest.raises(ValueError, match="no DDT fitted for classes \\[7\\]"):
        ddt.ddt_boxes(d[:2], torch.tensor([0, 7]), 64, models=models)


def test_map_to_box_scales_cells_and_falls_back_to_the_whole_image():
    p = -torch.ones(4, 4)
    p[1:3, 2:4] = 1.0
    assert ddt.map_to_box(p, (64, 32)).tolist() == [16.0, 16.0, 32.0, 48.0]  # (H, W) = (64, 32)
    assert ddt.map_to_box(-torch.ones(4, 4), 64).tolist() == [0.0, 0.0, 64.0, 64.0]


def test_descriptors_of_a_random_trunk_have_the_trunk_stride():
    from companion import backbones

    trunk = backbones.conv_trunk("resnet18", "layer1", seed=0)
    d = ddt.extract_descriptors(trunk, torch.rand(3, 3, 32, 32), input_size=64)
    assert d.shape == (3, 64, 16, 16)


@pytest.mark.parametrize("bad, error, msg", [
    (torch.rand(1, 8, 4, 4), ValueError, "at least 2 images"),
    (torch.ones(3, 8, 4, 4), ValueError, "zero variance"),
    (torch.rand(3, 8, 4), ValueError, "shape \\(N, C, h, w\\)"),
    (torch.ones(3, 8, 4, 4, dtype=torch.long), TypeError, "floating point"),
    (torch.rand(3, 8, 0, 4), ValueError, "empty"),
    (torch.full((3, 8, 4, 4), float("nan")), ValueError, "NaN"),
])
def test_bad_descriptors_get_clear_errors(bad, error, msg):
    with pytest.raises(error, match=msg):
        ddt.fit_ddt(bad)


def test_per_class_errors_name_the_class_and_bad_arguments_are_rejected():
    d = torch.rand(5, 8, 4, 4)
    with pytest.raises(ValueError, match="class 3: DDT needs at least 2 images"):
        ddt.fit_ddt_per_class(d, torch.tensor([0, 0, 0, 0, 3]))
    with pytest.raises(ValueError, match="labels must be a 1-D sequence of 5"):
        ddt.fit_ddt_per_class(d, torch.tensor([0, 0, 0]))
    with pytest.raises(ValueError, match="sign must be one of"):
        ddt.fit_ddt(d, sign="positive")
    with pytest.raises(ValueError, match="images must be a tensor of shape \\(N, 3, H, W\\)"):
        ddt.extract_descriptors(torch.nn.Identity(), torch.rand(2, 1, 8, 8))
    with pytest.raises(ValueError, match="channels"):
        ddt.fit_ddt(d).project(torch.rand(2, 4, 4, 4))


# ---------------------------------------------------------------- box-aware augmentation


def test_xywh_conversions_round_trip_and_flip_formula():
    b = torch.tensor([[8.0, 16.0, 40.0, 48.0]])
    xywh = augment.xyxy_to_xywh(b, 64)
    assert xywh.tolist() == [[0.125, 0.25, 0.5, 0.5]]
    assert torch.equal(augment.xywh_to_xyxy(xywh, 64), b)
    assert augment.flip_xywh(xywh).tolist() == [[1 - 0.125 - 0.5, 0.25, 0.5, 0.5]]


def test_torchvision_flip_moves_the_box_as_the_formula_says():
    image = torch.zeros(3, 64, 64)
    image[:, 20:40, 10:30] = 1.0
    box = tv_tensors.BoundingBoxes([[10.0, 20.0, 30.0, 40.0]], format="XYXY", canvas_size=(64, 64))
    out, fbox = v2.RandomHorizontalFlip(p=1.0)(tv_tensors.Image(image), box)
    assert fbox.tolist() == [[34.0, 20.0, 54.0, 40.0]]  # x -> 64 - x, by hand
    assert torch.equal(augment.xyxy_to_xywh(fbox.as_subclass(torch.Tensor), 64),
                       augment.flip_xywh(augment.xyxy_to_xywh(box.as_subclass(torch.Tensor), 64)))
    ys, xs = torch.nonzero(out[0], as_tuple=True)  # the object moved with the box
    assert (xs.min().item(), xs.max().item() + 1) == (34, 54)


def test_a_crop_moves_and_clips_the_box_by_hand():
    # crop rows 0..47 and columns 16..63 (48 x 48) and resize to 64: scale 4/3
    t = augment.RandomResizedBBoxCrop(64)
    box = tv_tensors.BoundingBoxes([[0.0, 0.0, 32.0, 32.0]], format="XYXY", canvas_size=(64, 64))
    out = t.transform(box, dict(top=0, left=16, height=48, width=48))
    assert out.as_subclass(torch.Tensor)[0].tolist() == pytest.approx([0.0, 0.0, 16 * 4 / 3, 32 * 4 / 3])
    # The kept half, mapped back, has IoU exactly 0.5 with the whole object: strictly not a hit.
    kept = torch.tensor([[16.0, 0.0, 32.0, 32.0]])
    assert metrics.hits(kept, box.as_subclass(torch.Tensor)).tolist() == [False]


def test_random_crops_always_keep_part_of_the_box():
    torch.manual_seed(0)
    t = augment.box_augment(32, scale=(0.05, 0.2))
    image = torch.rand(3, 64, 64)
    box = tv_tensors.BoundingBoxes([[50.0, 50.0, 60.0, 60.0]], format="XYXY", canvas_size=(64, 64))
    for _ in range(50):
        img, b = t(tv_tensors.Image(image), box)
        b = b.as_subclass(torch.Tensor)[0]
        assert img.shape == (3, 32, 32)
        assert b[2] - b[0] > 0 and b[3] - b[1] > 0
        assert b.min() >= 0 and b.max() <= 32


def test_crop_falls_back_to_the_whole_image_when_no_draw_keeps_the_box(monkeypatch):
    miss = dict(top=0, left=0, height=16, width=16)  # never overlaps a box in the far corner
    monkeypatch.setattr(v2.RandomResizedCrop, "make_params", lambda self, flat: dict(miss))
    t = augment.RandomResizedBBoxCrop(64, tries=3)
    box = tv_tensors.BoundingBoxes([[40.0, 40.0, 60.0, 60.0]], format="XYXY", canvas_size=(64, 64))
    assert t.make_params([torch.zeros(3, 64, 64), box]) == dict(top=0, left=0, height=64, width=64)
    with pytest.raises(ValueError, match="BoundingBoxes"):
        t.make_params([torch.zeros(3, 64, 64)])


def test_box_dataset_targets_and_bad_boxes():
    images = torch.rand(2, 3, 64, 64)
    ds = augment.BoxDataset(images, torch.tensor([[0.0, 0, 32, 64], [16.0, 16, 48, 48]]))
    x, target = ds[0]
    assert x.shape == (3, 64, 64) and target.tolist() == [0.0, 0.0, 0.5, 1.0]
    with pytest.raises(ValueError, match="outside the 64x64 image"):
        augment.BoxDataset(images, torch.tensor([[0.0, 0, 32, 64], [16.0, 16, 80, 48]]))
    with pytest.raises(ValueError, match="2 images but 1 boxes"):
        augment.BoxDataset(images, torch.tensor([[0.0, 0, 32, 64]]))
    with pytest.raises(ValueError, match="x2 >= x1"):
        augment.BoxDataset(images, torch.tensor([[30.0, 0, 10, 64], [0.0, 0, 1, 1]]))


# ---------------------------------------------------------------- regressor, metrics, CAM


def test_regressor_outputs_normalised_boxes_and_the_loss_is_fifty_mse():
    net = encoder.SmallCNN(3)
    reg = regressor.BoxRegressor(net.trunk(4), 128)
    out = reg(torch.rand(5, 3, 64, 64))
    assert out.shape == (5, 4) and (out >= 0).all() and (out <= 1).all()
    pred, target = torch.zeros(2, 4), torch.full((2, 4), 0.1)
    assert regressor.box_loss(pred, target).item() == pytest.approx(50 * 0.01)
    boxes = regressor.predict_boxes(reg, torch.rand(4, 3, 64, 64))
    assert boxes.shape == (4, 4) and boxes.min() >= 0 and boxes.max() <= 64
    with pytest.raises(ValueError, match="head expects 64"):
        regressor.BoxRegressor(net.trunk(4), 64)(torch.rand(1, 3, 64, 64))
    with pytest.raises(ValueError, match="\\(N, 4\\)"):
        regressor.box_loss(torch.zeros(2, 3), torch.zeros(2, 3))


def test_head_learns_twice_as_fast():
    reg = regressor.BoxRegressor(encoder.SmallCNN(2).trunk(4), 128)
    opt = regressor.regressor_optimizer(reg, train.FitConfig(steps=1, lr=0.01, optimizer="sgd"))
    assert [g["lr"] for g in opt.param_groups] == [0.01, 0.02]


def test_metrics_average_per_class_and_topk():
    gt = torch.tensor([[0.0, 0, 10, 10]] * 3)
    pred = torch.tensor([[0.0, 0, 10, 10], [0.0, 0, 10, 10], [20.0, 20, 30, 30]])
    labels = torch.tensor([0, 0, 1])
    scores = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.1, 0.9]])
    m = metrics.localization_metrics(pred, gt, labels, scores, topk=(1, 5))
    assert m["gt_known_loc"] == pytest.approx(50.0)  # class 0: 2/2, class 1: 0/1
    assert m["top1_loc"] == pytest.approx(25.0)  # class 0: 1/2, class 1: 0/1
    assert "top5_loc" not in m  # 2 classes: top-5 would be GT-known
    with pytest.raises(ValueError, match="threshold"):
        metrics.hits(pred, gt, threshold=1.5)


def test_cam_box_around_the_hot_region():
    maps = torch.zeros(1, 4, 4)
    maps[0, 0:2, 0:2] = 1.0
    box = encoder.cam_boxes(maps, 64, threshold=0.5)[0]
    assert box[0] == 0 and box[1] == 0 and 24 <= box[2] <= 40 and 24 <= box[3] <= 40
    with pytest.raises(ValueError, match="threshold"):
        encoder.cam_boxes(maps, 64, threshold=0.0)


def test_pipeline_runs_end_to_end_on_tiny_scenes():
    from companion import backbones
    from companion.data import make_scenes

    s = make_scenes(24, size=32, classes=2, seed=0, scale=(0.5, 0.8))
    tr, te = s.subset(torch.arange(16)), s.subset(torch.arange(16, 24))
    net = encoder.SmallCNN(2, (8, 8, 16, 16))
    out = psol(tr.images, tr.labels, te.images, trunk=backbones.conv_trunk("resnet18", "layer1"),
               backbone=net.trunk(4), channels=16, test_labels=te.labels,
               fit_config=train.FitConfig(steps=2, batch_size=8, progress=False))
    assert out.pseudo_boxes.shape == (16, 4) and out.boxes.shape == (8, 4) and out.ddt_test_boxes.shape == (8, 4)
    assert out.fit.steps == 2


def test_ddt_train_test_is_the_pipelines_first_step():
    from companion import backbones
    from companion.data import make_scenes
    from companion.psol.pipeline import ddt_train_test

    s = make_scenes(24, size=32, classes=2, seed=0, scale=(0.5, 0.8))
    tr, te = s.subset(torch.arange(16)), s.subset(torch.arange(16, 24))
    trunk = backbones.conv_trunk("resnet18", "layer1")
    net = encoder.SmallCNN(2, (8, 8, 16, 16))
    out = psol(tr.images, tr.labels, te.images, trunk=trunk, backbone=net.trunk(4), channels=16,
               test_labels=te.labels, fit_config=train.FitConfig(steps=1, batch_size=8, progress=False))
    d = ddt_train_test(trunk, tr.images, tr.labels, te.images, te.labels)
    assert torch.equal(d.pseudo_boxes, out.pseudo_boxes) and torch.equal(d.test_boxes, out.ddt_test_boxes)
    assert torch.equal(d.test_maps, out.ddt_test_maps) and set(d.ddt) == {0, 1}
    alone = ddt_train_test(trunk, tr.images, tr.labels)  # training images only: no test boxes
    assert torch.equal(alone.pseudo_boxes, d.pseudo_boxes) and alone.test_boxes is None
    # test boxes need each image's class (its DDT direction): images without labels are refused
    with pytest.raises(ValueError, match="test_images and test_labels"):
        ddt_train_test(trunk, tr.images, tr.labels, te.images)
    with pytest.raises(ValueError, match="test_images and test_labels"):
        ddt_train_test(trunk, tr.images, tr.labels, test_labels=te.labels)


# ---------------------------------------------------------------- bad inputs get clear errors


def test_predict_boxes_refuses_uint8_and_0_255_images():
    reg = regressor.BoxRegressor(torch.nn.Conv2d(3, 8, 3), 8)
    images = torch.rand(2, 3, 16, 16)
    with pytest.raises(TypeError, match="floating point in \\[0, 1\\].*uint8"):
        regressor.predict_boxes(reg, (images * 255).to(torch.uint8))
    with pytest.raises(ValueError, match="must lie in \\[0, 1\\].*divide 0-255 images by 255"):
        regressor.predict_boxes(reg, images * 255)
    with pytest.raises(ValueError, match="must lie in \\[0, 1\\]"):
        ddt.extract_descriptors(torch.nn.Conv2d(3, 8, 3), images - 0.5)


def test_map_to_box_refuses_a_nan_map():
    p = torch.zeros(4, 4)
    p[1, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN or infinite"):
        ddt.map_to_box(p, 64)


def test_metrics_refuse_an_image_without_a_ground_truth_box():
    pred = torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 10.0]])
    gts = [torch.tensor([[0.0, 0.0, 10.0, 10.0]]), torch.zeros(0, 4)]
    with pytest.raises(ValueError, match="1 image\\(s\\) have no ground-truth box \\(indices \\[1\\]\\)"):
        metrics.localization_metrics(pred, gts, [0, 0])
    # several boxes per image: the best counts (vectorized and list paths agree)
    two = [torch.tensor([[0.0, 0.0, 10.0, 10.0]]), torch.tensor([[50.0, 50.0, 60.0, 60.0], [0.0, 0.0, 10.0, 12.0]])]
    assert metrics.best_iou(pred, two).tolist() == pytest.approx([1.0, 100 / 120])
    assert metrics.best_iou(pred, pred).tolist() == [1.0, 1.0]


def test_xywh_to_xyxy_refuses_negative_width_or_height():
    with pytest.raises(ValueError, match="non-negative width and height; rows \\[1\\]"):
        augment.xywh_to_xyxy(torch.tensor([[0.1, 0.1, 0.2, 0.2], [0.5, 0.5, -0.1, 0.2]]), 64)
    with pytest.raises(ValueError, match="NaN"):
        augment.xywh_to_xyxy(torch.tensor([[0.1, float("nan"), 0.2, 0.2]]), 64)


# ---------------------------------------------------------------- baselines and the batch flip


def test_centred_and_best_fixed_boxes():
    from companion.psol.experiment import best_fixed_side, centred_boxes

    assert centred_boxes(2, 100, 0.6).tolist() == [[20.0, 20.0, 80.0, 80.0]] * 2
    assert centred_boxes(1, 64, 1.0).tolist() == [[0.0, 0.0, 64.0, 64.0]]
    with pytest.raises(ValueError, match="side"):
        centred_boxes(1, 64, 0.0)
    # true boxes that are centred squares of side 0.4: the best fixed box has that side
    true = centred_boxes(6, 100, 0.4)
    assert best_fixed_side(true, [0, 0, 0, 1, 1, 1], 100, (0.3, 0.4, 0.5, 0.8)) == 0.4
    with pytest.raises(ValueError, match="sides is empty"):
        best_fixed_side(true, [0] * 6, 100, ())


def test_batch_flip_is_training_on_flipped_images_and_boxes():
    """flip=1 flips every image and box (x -> 1 - x - w): the same weights as training on them flipped."""
    images = torch.rand(8, 3, 16, 16)
    xywh = torch.tensor([[0.1, 0.2, 0.3, 0.4]]).repeat(8, 1)

    def fit(data, flip):
        torch.manual_seed(0)
        model = regressor.BoxRegressor(torch.nn.Conv2d(3, 4, 3), 4)
        cfg = train.FitConfig(steps=3, batch_size=4, lr=1e-2, seed=0, progress=False, device="cpu")
        regressor.train_regressor(model, data, cfg, flip=flip)
        return model.state_dict()

    a = fit((images, xywh), 1.0)
    b = fit((images.flip(-1), augment.flip_xywh(xywh)), 0.0)
    assert all(torch.allclose(a[k], b[k]) for k in a)
    with pytest.raises(ValueError, match="flip must be a probability"):
        fit((images, xywh), 1.5)
