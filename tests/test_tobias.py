"""Tobias: random-CNN maps and boxes, the metrics and baselines, the background swap and its SSL wrapper."""

import numpy as np
import pytest
import torch

from companion.backbones import conv_trunk
from companion.tobias import (
    activation_map,
    background_swap,
    best_centred_fraction,
    boxes_from_maps,
    cell_scores,
    centred_boxes,
    foreground_cells,
    localization_scores,
    localize_images,
    normalize_map,
    off_centre_scenes,
    prepare_images,
    random_boxes,
    tobias_swap,
    whole_image_boxes,
)
from companion.tobias.swap import from_patches, to_patches


@pytest.fixture(scope="module")
def trunk():
    return conv_trunk("resnet18", "layer3", seed=0)


# ------------------------------------------------------------------------------------ input checks


def test_grayscale_and_rgba_are_converted():
    gray = torch.rand(1, 32, 32)
    x = prepare_images(gray)
    assert x.shape == (1, 3, 32, 32) and torch.equal(x[0, 0], x[0, 2]) and torch.equal(x[0, 1], gray[0])
    rgba = torch.rand(2, 4, 32, 32)
    assert torch.equal(prepare_images(rgba), rgba[:, :3])  # alpha dropped, colours kept
    u8 = torch.full((3, 16, 16), 255, dtype=torch.uint8)
    assert torch.allclose(prepare_images(u8), torch.ones(1, 3, 16, 16))
    assert prepare_images(np.zeros((20, 24), dtype=np.float32)).shape == (1, 3, 20, 24)  # one grayscale (H, W)


@pytest.mark.parametrize("bad, error, match", [
    (np.zeros(10), ValueError, "shape"),  # 1-D: not an image
    (np.zeros((1, 1, 2, 8, 8)), ValueError, "shape"),  # 5-D
    (torch.zeros(0, 3, 32, 32), ValueError, "empty"),
    (torch.zeros(2, 5, 32, 32), ValueError, "channels"),
    (torch.zeros(2, 2, 32, 32), ValueError, "channels"),
    (torch.full((1, 3, 8, 8), 2.0), ValueError, r"\[0, 1\]"),
    (torch.full((1, 3, 8, 8), float("nan")), ValueError, "NaN"),
    (np.array([["a", "b"]]), TypeError, "numeric"),
    (torch.zeros(1, 3, 8, 8, dtype=torch.bool), TypeError, "dtype"),
    (torch.zeros(1, 3, 8, 8, dtype=torch.int32), TypeError, "uint8 or float"),
    ([[0.0, 1.0]], TypeError, "tensor or NumPy"),
])
def test_bad_inputs_raise_clear_errors(bad, error, match):
    with pytest.raises(error, match=match):
        prepare_images(bad)


def test_images_smaller_than_the_stride_are_refused(trunk):
    with pytest.raises(ValueError, match="too small"):
        activation_map(trunk, torch.rand(1, 3, 8, 8))


def test_train_mode_trunk_is_refused():
    t = conv_trunk("resnet18", "layer1", seed=0).train()
    with pytest.raises(ValueError, match="eval"):
        activation_map(t, torch.rand(2, 3, 32, 32))


# --------------------------------------------------------------------------------- map and box


def test_handmade_map_gives_the_expected_box():
    m = torch.zeros(4, 4)
    m[1:3, 2:4] = 5.0  # a 2x2 block, rows 1-2, columns 2-3
    boxes, kept = boxes_from_maps(m, (64, 64))
    assert boxes.tolist() == [[32.0, 16.0, 64.0, 48.0]]
    assert kept[0].sum() == 4


def test_largest_component_is_8_connected_and_wins():
    m = torch.zeros(6, 6)
    m[0, 0] = m[1, 1] = m[2, 2] = 3.0  # a diagonal: one 8-connected component of 3 cells
    m[5, 5] = m[5, 3] = 3.0  # two single cells apart
    boxes, kept = boxes_from_maps(m, (60, 60))
    assert boxes.tolist() == [[0.0, 0.0, 30.0, 30.0]]
    assert kept[0, 5].sum() == 0


def test_all_equal_map_gives_the_whole_image():
    boxes, kept = boxes_from_maps(torch.full((2, 7, 7), 3.0), (50, 70))
    assert boxes.tolist() == [[0.0, 0.0, 70.0, 50.0]] * 2  # nothing is strictly above the mean
    assert not kept.any()


def test_threshold_is_strict_and_scales_with_tau():
    m = torch.tensor([[0.0, 1.0], [1.0, 2.0]])  # mean 1: only the 2 survives at tau = 1
    assert boxes_from_maps(m, (10, 10))[0].tolist() == [[5.0, 5.0, 10.0, 10.0]]
    assert boxes_from_maps(m, (10, 10), threshold=0.5)[0].tolist() == [[0.0, 0.0, 10.0, 10.0]]
    with pytest.raises(ValueError, match="threshold"):
        boxes_from_maps(m, (10, 10), threshold=-1.0)
    with pytest.raises(ValueError, match="empty"):
        boxes_from_maps(torch.zeros(0, 3, 3), (10, 10))


def test_map_of_an_image_does_not_depend_on_the_batch(trunk):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 3, 48, 48, generator=g)
    alone = activation_map(trunk, x[:1])
    together = activation_map(trunk, x)
    with_others = activation_map(trunk, torch.cat([x[:1], torch.rand(3, 3, 48, 48, generator=g)]))
    assert alone.shape == (1, 3, 3)  # layer3: stride 16
    torch.testing.assert_close(alone[0], together[0], rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(alone[0], with_others[0], rtol=1e-4, atol=1e-3)


def test_localize_shapes_and_heatmap_range(trunk):
    scenes = off_centre_scenes(3, 64, 80, seed=0)
    r = localize_images(trunk, scenes.images)
    assert r.maps.shape == (3, 4, 4) and r.masks.shape == (3, 4, 4) and r.boxes.shape == (3, 4)
    assert r.pixel_masks().shape == (3, 64, 64)
    h = r.heatmaps()
    assert float(h.min()) == 0.0 and float(h.max()) == 1.0
    assert (r.boxes[:, :2] >= 0).all() and (r.boxes[:, 2:] <= 64).all()
    assert torch.equal(normalize_map(torch.ones(3, 3)), torch.zeros(3, 3))


def test_explore_prefix_trunk_equals_the_shallower_trunk():
    """The figure derives the 'one stage earlier' map from the full trunk minus its last module."""
    full = conv_trunk("resnet18", None, init="uniform", seed=3)
    prefix = torch.nn.Sequential(*list(full.children())[:-1]).eval()
    prefix.stride = 16
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(activation_map(prefix, x), activation_map(conv_trunk("resnet18", "layer3", init="uniform", seed=3), x))


# ------------------------------------------------------------------------------------- metrics


def test_scores_on_known_boxes():
    gts = torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 10.0]])
    assert localization_scores(gts, gts) == {"corloc": 100.0, "miou": 100.0}
    half = torch.tensor([[0.0, 0.0, 10.0, 5.0], [0.0, 0.0, 10.0, 10.0]])  # IoU exactly 0.5, then 1
    s = localization_scores(half, gts)
    assert s["corloc"] == pytest.approx(50.0)  # 0.5 is not > 0.5
    assert s["miou"] == pytest.approx(75.0)
    per_class = localization_scores(torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 10], [50, 50, 60, 60]]),
                                    torch.tensor([[0.0, 0, 10, 10]] * 3), labels=[0, 0, 1])
    assert per_class["corloc"] == pytest.approx(50.0)  # class 0: 100 %, class 1: 0 %


def test_several_ground_truth_boxes_best_counts():
    pred = torch.tensor([[20.0, 20.0, 30.0, 30.0]])
    s = localization_scores(pred, [torch.tensor([[0.0, 0.0, 5.0, 5.0], [20.0, 20.0, 30.0, 30.0]])])
    assert s["miou"] == pytest.approx(100.0)


def test_baseline_boxes():
    assert whole_image_boxes(2, 40, 60).tolist() == [[0, 0, 60, 40]] * 2
    assert centred_boxes(1, 100, 100, 0.5).tolist() == [[25.0, 25.0, 75.0, 75.0]]
    r = random_boxes(50, 30, 40, seed=1)
    assert torch.equal(r, random_boxes(50, 30, 40, seed=1))
    assert (r[:, 0] <= r[:, 2]).all() and (r[:, 2] <= 40).all() and (r[:, 3] <= 30).all()
    fraction, scores = best_centred_fraction(centred_boxes(5, 100, 100, 0.4), 100, 100)
    assert fraction == pytest.approx(0.4) and scores["miou"] == pytest.approx(100.0)
    with pytest.raises(ValueError, match="fraction"):
        centred_boxes(1, 10, 10, 0.0)
    with pytest.raises(ValueError, match="positive integer"):
        whole_image_boxes(0, 10, 10)


def test_off_centre_scenes_boxes_fit_their_masks():
    s = off_centre_scenes(6, 64, 96, seed=2, classes=3)
    assert s.images.shape == (6, 3, 64, 64) and s.masks.shape == (6, 64, 64)
    for i in range(6):
        ys, xs = torch.nonzero(s.masks[i], as_tuple=True)
        assert s.boxes[i].tolist() == [xs.min().item(), ys.min().item(), xs.max().item() + 1, ys.max().item() + 1]
    again = off_centre_scenes(6, 64, 96, seed=2, classes=3)
    assert torch.equal(s.images, again.images)
    with pytest.raises(ValueError, match="size"):
        off_centre_scenes(2, 64, 32)


# ----------------------------------------------------------------------------- background swap


def test_cell_scores_are_area_weighted():
    assert torch.allclose(cell_scores(torch.ones(2, 7, 7)), torch.ones(2, 4, 4))
    m = torch.arange(64.0).view(1, 8, 8)
    torch.testing.assert_close(cell_scores(m), torch.nn.functional.avg_pool2d(m[None], 2)[0])
    one = torch.zeros(1, 7, 7)
    one[0, 0, 0] = 1.0  # feature cell (0, 0) covers 4/7 of patch (0, 0)'s rows and columns
    s = cell_scores(one)
    assert s[0, 0, 0] == pytest.approx((4 / 7) ** 2)
    assert s.sum() == pytest.approx((4 / 7) ** 2)


def test_top_half_of_cells_is_foreground():
    scores = torch.rand(5, 4, 4, generator=torch.Generator().manual_seed(0))
    fg = foreground_cells(scores)
    assert fg.shape == (5, 16) and (fg.sum(1) == 8).all()
    flat = scores.flatten(1)
    assert (flat[fg].view(5, 8).min(1).values >= flat[~fg].view(5, 8).max(1).values).all()


def test_patches_round_trip():
    x = torch.rand(2, 3, 16, 12)
    assert torch.equal(from_patches(to_patches(x, 4), 4), x)


def _pair(seed=0, n=3, size=32):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g), torch.rand(n, 3, size, size, generator=g), torch.rand(n, 4, 4, generator=g)


def test_swap_keeps_foreground_bit_identical_and_moves_background():
    a, b, sa = _pair()
    sb = torch.rand(3, 4, 4, generator=torch.Generator().manual_seed(9))
    fa, fb = foreground_cells(sa), foreground_cells(sb)
    out = background_swap(a, b, fa, fb, generator=torch.Generator().manual_seed(1))
    pa, pb, po = to_patches(a), to_patches(b), to_patches(out)
    for i in range(3):
        assert torch.equal(po[i][fa[i]], pa[i][fa[i]])  # foreground: bit for bit
        got = {tuple(p.flatten()[:4].tolist()) for p in po[i][~fa[i]]}
        want = {tuple(p.flatten()[:4].tolist()) for p in pb[i][~fb[i]]}
        assert got == want  # background: exactly B's background patches, permuted
    perm = torch.arange(8).repeat(3, 1)
    ordered = background_swap(a, b, fa, fb, perm=perm)
    first_bg_a = (~fa[0]).nonzero()[0, 0]
    first_bg_b = (~fb[0]).nonzero()[0, 0]
    assert torch.equal(to_patches(ordered)[0, first_bg_a], pb[0, first_bg_b])
    single = background_swap(a[0], b[0], fa[0], fb[0], perm=perm[:1])
    assert torch.equal(single, ordered[0])


def test_swap_with_p_zero_returns_the_images():
    a, _, s = _pair()
    out, swapped = tobias_swap(a, s, p=0.0)
    assert torch.equal(out, a) and not swapped.any()
    out, swapped = tobias_swap(a, s, p=1.0, generator=torch.Generator().manual_seed(0))
    assert swapped.all() and not torch.equal(out, a)
    fg = foreground_cells(s)
    assert all(torch.equal(to_patches(out)[i][fg[i]], to_patches(a)[i][fg[i]]) for i in range(3))


def test_swap_bad_inputs():
    a, b, s = _pair()
    fg = foreground_cells(s)
    with pytest.raises(ValueError, match="divisible"):
        background_swap(a[:, :, :30], b[:, :, :30], fg, fg)
    with pytest.raises(ValueError, match="probability"):
        tobias_swap(a, s, p=1.5)
    with pytest.raises(ValueError, match="two images"):
        tobias_swap(a[:1], s[:1], p=0.5)
    with pytest.raises(ValueError, match="scores"):
        tobias_swap(a, s[:2], p=0.5)
    with pytest.raises(ValueError, match="permutation"):
        background_swap(a, b, fg, fg, perm=torch.zeros(3, 8, dtype=torch.long))
    with pytest.raises(ValueError, match="empty"):
        background_swap(a[:0], b[:0], fg[:0], fg[:0])


# ------------------------------------------------------------------------- the paper's trunk, inits


@pytest.mark.parametrize("arch", ["resnet18", "resnet50"])
def test_layer4_stride_one_doubles_the_grid_with_the_same_weights(arch):
    x = torch.rand(1, 3, 96, 96)
    tv = conv_trunk(arch, None, seed=2)  # torchvision: stride 32
    paper = conv_trunk(arch, None, seed=2, layer4_stride=1)  # the official localization ResNets
    assert (tv.stride, paper.stride) == (32, 16)
    with torch.no_grad():
        assert tv(x).shape[-2:] == (3, 3) and paper(x).shape[-2:] == (6, 6)
    for a, b in zip(tv.state_dict().values(), paper.state_dict().values()):
        assert torch.equal(a, b)
    # 224 px: the 7x7 of torchvision and the 14x14 of the paper (checked on the grid arithmetic)
    assert -(-224 // tv.stride) == 7 and 224 // paper.stride == 14
    assert conv_trunk(arch, "layer3", seed=0, layer4_stride=1).stride == 16  # no layer4: no change


def test_layer4_stride_is_checked():
    with pytest.raises(ValueError, match="layer4_stride must be 1"):
        conv_trunk("resnet18", layer4_stride=3)
    with pytest.raises(ValueError, match="ResNets only"):
        conv_trunk("vgg16", layer4_stride=1)


def test_xavier_init_is_xavier_normal_and_the_others_follow_the_official_files():
    conv = conv_trunk("resnet50", "layer1", init="xavier", seed=0)[4][0].conv2  # 64 -> 64, 3x3
    fan_in, fan_out = torch.nn.init._calculate_fan_in_and_fan_out(conv.weight)
    std = (2.0 / (fan_in + fan_out)) ** 0.5  # nn.init.xavier_normal_, gain 1
    w = conv.weight.detach().flatten().double()
    assert abs(w.std().item() / std - 1) < 0.03 and abs(w.mean().item()) < 0.05 * std
    kurtosis = ((w - w.mean()) ** 4).mean() / w.var() ** 2
    assert abs(kurtosis.item() - 3.0) < 0.2  # Gaussian (a uniform has 1.8)
    assert w.abs().max().item() > (6.0 / (fan_in + fan_out)) ** 0.5  # beyond the uniform's bound
    wu = conv_trunk("resnet50", "layer1", init="xavier_uniform", seed=0)[4][0].conv2.weight.detach()
    assert wu.abs().max().item() <= (6.0 / (fan_in + fan_out)) ** 0.5
    wk = conv_trunk("resnet50", "layer1", init="kaiming_uniform", seed=0)[4][0].conv2.weight.detach()
    assert wk.abs().max().item() <= (6.0 / fan_out) ** 0.5 and wk.abs().max().item() > 0.9 * (6.0 / fan_out) ** 0.5


def test_normalize_map_refuses_nan_instead_of_zeroing_the_map():
    m = torch.rand(2, 5, 5)
    m[1, 2, 3] = float("nan")
    with pytest.raises(ValueError, match=r"1 NaN or infinite value\(s\) \(in map\(s\) \[1\]\)"):
        normalize_map(m)
    with pytest.raises(ValueError, match="NaN or infinite"):
        normalize_map(torch.tensor([[0.0, float("inf")], [1.0, 2.0]]))
    out = normalize_map(torch.tensor([[1.0, 3.0], [2.0, 5.0]]))
    torch.testing.assert_close(out, torch.tensor([[0.0, 0.5], [0.25, 1.0]]))


# -------------------------------------------------------------------- photos and digit scenes


def test_hand_drawn_photo_boxes_load_and_scale():
    from companion.tobias.metrics import photo_boxes

    boxes, record = photo_boxes(size=100)
    assert boxes.shape == (6, 4) and "by eye" in record["about"] and record["drawn"] == "2026-12-02"
    assert (boxes[:, 0] < boxes[:, 2]).all() and (boxes[:, 1] < boxes[:, 3]).all()
    assert boxes.min() >= 0 and boxes.max() <= 100
    chelsea, _ = photo_boxes(["chelsea"], size=224)
    torch.testing.assert_close(chelsea, torch.tensor([[0.0, 0.0, 224.0, 224.0]]))  # the cat fills the crop
    with pytest.raises(ValueError, match="no hand-drawn box for photo"):
        photo_boxes(["hubble_deep_field"])


def test_digit_scenes_are_seeded_and_keep_the_splits_apart():
    from companion.ssl.bench import bench_data
    from companion.tobias.scenes import digit_scenes

    a, b = digit_scenes(12, 16, "train", seed=3), digit_scenes(12, 16, "train", seed=3)
    assert torch.equal(a.images, b.images) and a.images.shape == (12, 3, 16, 16)
    assert a.images.min() >= 0 and a.images.max() <= 1
    assert set(a.labels.tolist()) <= set(range(10)) and set(a.backgrounds.tolist()) <= set(range(4))
    assert (a.masks.flatten(1).any(1)).all()
    test = digit_scenes(12, 16, "test", seed=3)
    assert not torch.equal(test.images, a.images)
    d = bench_data(8)
    assert len(d.train_x) == 1200 and len(d.test_x) == 597  # the pools the two splits draw from
    with pytest.raises(ValueError, match="split must be"):
        digit_scenes(4, 16, "val")
    with pytest.raises(ValueError, match="at least 16 px"):
        digit_scenes(4, 8)
