"""Two-view augmentations: the v2 recipe, multi-crop, and the batched GPUAugment (checked on CPU tensors)."""

import pytest
import torch

from companion import ssl
from companion.ssl.augment import hsv_to_rgb, rgb_to_hsv


def test_ssl_augment_shape_range_and_steps():
    t = ssl.ssl_augment(16)
    out = t(torch.rand(3, 40, 30))
    assert out.shape == (3, 16, 16) and out.dtype == torch.float32 and 0 <= out.min() and out.max() <= 1
    names = [type(m).__name__ for m in ssl.ssl_augment(32).transforms]
    assert names == ["CheckImage", "RandomResizedCrop", "RandomApply", "RandomGrayscale", "RandomApply", "RandomHorizontalFlip"]
    assert "GaussianBlur" not in repr(ssl.ssl_augment(16))  # off below 32 px unless asked for
    assert "GaussianBlur" in repr(ssl.ssl_augment(16, blur=True))
    crop = ssl.ssl_augment(32).transforms[1]
    assert crop.scale == (0.2, 1.0)


def test_ssl_augment_grayscale_digits_and_uint8():
    t = ssl.ssl_augment(8, channels=1)
    assert [type(m).__name__ for m in t.transforms] == ["CheckImage", "RandomResizedCrop", "RandomHorizontalFlip"]
    assert t(torch.rand(1, 8, 8)).shape == (1, 8, 8)
    out = ssl.ssl_augment(8)(torch.randint(0, 256, (3, 12, 12), dtype=torch.uint8))
    assert out.is_floating_point() and out.max() <= 1


def test_ssl_augment_bad_inputs():
    with pytest.raises(ValueError, match="expected 3-channel images, got 1 channels"):
        ssl.ssl_augment(16)(torch.rand(1, 16, 16))
    with pytest.raises(ValueError, match="resolution=2 is too small"):
        ssl.ssl_augment(2)
    with pytest.raises(ValueError, match="too small for Gaussian blur"):
        ssl.ssl_augment(4, blur=True)
    with pytest.raises(ValueError, match="too small to crop"):
        ssl.ssl_augment(8)(torch.rand(3, 2, 20))
    with pytest.raises(ValueError, match="channels must be 1"):
        ssl.ssl_augment(8, channels=4)
    with pytest.raises(TypeError, match="integer"):
        ssl.ssl_augment(16.0)
    with pytest.raises(ValueError, match="scale"):
        ssl.ssl_augment(16, scale=(0.5, 0.2))


def test_two_views_and_dataset():
    torch.manual_seed(0)
    images = torch.rand(5, 3, 12, 12)
    ds = ssl.TwoViewDataset(images, ssl.ssl_augment(8))
    v1, v2, i = ds[3]
    assert v1.shape == v2.shape == (3, 8, 8) and i == 3 and not torch.equal(v1, v2)
    a, b = ssl.TwoViews(lambda x: x * 2)(torch.ones(1))
    assert a.item() == b.item() == 2
    from torch.utils.data import TensorDataset

    ds2 = ssl.TwoViewDataset(TensorDataset(images, torch.zeros(5)), ssl.TwoViews(ssl.ssl_augment(8)))
    assert ds2[0][0].shape == (3, 8, 8) and len(ds2) == 5
    with pytest.raises(ValueError, match="N, C, H, W"):
        ssl.TwoViewDataset(torch.rand(3, 8, 8), ssl.ssl_augment(8))


def test_multicrop_counts_and_sizes():
    crops = ssl.MultiCrop(16, 8, n_global=2, n_local=3)(torch.rand(3, 20, 20))
    assert [c.shape[-1] for c in crops] == [16, 16, 8, 8, 8]
    with pytest.raises(ValueError, match="local_res"):
        ssl.MultiCrop(8, 16)


def test_hsv_round_trip():
    x = torch.rand(4, 3, 5, 5)
    torch.testing.assert_close(hsv_to_rgb(rgb_to_hsv(x)), x, atol=1e-5, rtol=0)
    red = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)
    assert rgb_to_hsv(red).flatten().tolist() == [0.0, 1.0, 1.0]


def test_gpu_augment_shape_range_determinism():
    x = torch.rand(6, 3, 24, 20)
    aug = ssl.GPUAugment(16, blur=True)
    a = aug(x, generator=torch.Generator().manual_seed(0))
    b = aug(x, generator=torch.Generator().manual_seed(0))
    c = aug(x, generator=torch.Generator().manual_seed(1))
    assert a.shape == (6, 3, 16, 16) and 0 <= a.min() and a.max() <= 1
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert not torch.equal(a[0], a[1])  # per-sample parameters
    torch.manual_seed(3)
    d = aug(x)
    torch.manual_seed(3)
    assert torch.equal(d, aug(x))  # the global RNG works too


def test_gpu_augment_identity_settings_return_the_input():
    x = torch.rand(3, 3, 16, 16)
    ident = ssl.GPUAugment(16, scale=(1.0, 1.0), ratio=(1.0, 1.0), p_jitter=0, p_gray=0, blur=False, p_flip=0)
    torch.testing.assert_close(ident(x), x, atol=1e-6, rtol=0)
    flip = ssl.GPUAugment(16, scale=(1.0, 1.0), ratio=(1.0, 1.0), p_jitter=0, p_gray=0, blur=False, p_flip=1)
    torch.testing.assert_close(flip(x), x.flip(-1), atol=1e-6, rtol=0)
    gray = ssl.GPUAugment(16, scale=(1.0, 1.0), ratio=(1.0, 1.0), p_jitter=0, p_gray=1, blur=False, p_flip=0)(x)
    assert torch.allclose(gray[:, 0], gray[:, 1]) and torch.allclose(gray[:, 1], gray[:, 2])


def test_gpu_augment_crop_boxes_follow_the_scale_range():
    aug = ssl.GPUAugment(8, scale=(0.2, 1.0))
    boxes = aug.sample(2000, 32, 32, torch.Generator().manual_seed(0))["boxes"]
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) / (32 * 32)
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= 32).all() and (boxes[:, 3] <= 32).all()
    assert area.min() >= 0.15 and area.max() <= 1.0 and 0.45 < area.mean() < 0.75


def test_gpu_augment_one_channel_and_bad_inputs():
    out = ssl.GPUAugment(8)(torch.rand(4, 1, 8, 8))
    assert out.shape == (4, 1, 8, 8)
    with pytest.raises(ValueError, match="1- or 3-channel"):
        ssl.GPUAugment(8)(torch.rand(2, 4, 8, 8))
    with pytest.raises(ValueError, match="too small to crop"):
        ssl.GPUAugment(8)(torch.rand(2, 3, 2, 2))
    with pytest.raises(TypeError, match="float"):
        ssl.GPUAugment(8)(torch.zeros(2, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError, match="N, C, H, W"):
        ssl.GPUAugment(8)(torch.rand(3, 8, 8))
    with pytest.raises(ValueError, match="too small"):
        ssl.GPUAugment(3)
