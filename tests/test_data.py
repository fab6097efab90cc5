import numpy as np
import pytest
import torch

from companion.data import DatasetMissingError, cub200, load_digits_images, load_photo, make_scenes, torchvision_dataset
from companion.data import datasets


def test_scenes_are_deterministic_by_seed():
    a, b = make_scenes(12, size=48, seed=5), make_scenes(12, size=48, seed=5)
    assert torch.equal(a.images, b.images) and torch.equal(a.boxes, b.boxes) and torch.equal(a.labels, b.labels)
    c = make_scenes(12, size=48, seed=6)
    assert not torch.equal(a.images, c.images)


@pytest.mark.parametrize("size", [32, 64, 97])
def test_boxes_lie_inside_and_cover_the_object(size):
    s = make_scenes(20, size=size, classes=8, seed=1)
    assert s.images.shape == (20, 3, size, size) and s.images.dtype == torch.float32
    assert 0 <= s.images.min() and s.images.max() <= 1
    for mask, box in zip(s.masks, s.boxes):
        x1, y1, x2, y2 = box.int().tolist()
        assert 0 <= x1 < x2 <= size and 0 <= y1 < y2 <= size
        assert mask.any()
        inside = torch.zeros_like(mask)
        inside[y1:y2, x1:x2] = True
        assert not (mask & ~inside).any()  # every object pixel is in the box
        # and the box is tight: each edge row/column touches the object
        assert mask[y1, x1:x2].any() and mask[y2 - 1, x1:x2].any() and mask[y1:y2, x1].any() and mask[y1:y2, x2 - 1].any()


def test_mixed_object_sizes_and_class_background_control():
    s = make_scenes(200, size=64, seed=0, scale=(0.15, 0.6))
    area = s.object_area()
    assert area.min() < 0.03 and area.max() > 0.15
    tied = make_scenes(100, size=32, seed=0, class_background=1.0)
    assert torch.equal(tied.backgrounds, tied.labels % 4)


@pytest.mark.parametrize("kwargs, msg", [({"n": 0}, "positive"), ({"n": 2, "size": 8}, "16 pixels"),
                                          ({"n": 2, "classes": ("blob",)}, "unknown shape"),
                                          ({"n": 2, "scale": (0.5, 0.2)}, "scale")])
def test_bad_scene_arguments(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        make_scenes(**kwargs)


def test_bundled_photos_and_digits_load_offline():
    cat = load_photo("chelsea", size=64)
    assert cat.shape == (3, 64, 64) and 0 <= cat.min() and cat.max() <= 1
    cam = load_photo("camera", size=32)  # grayscale becomes three equal channels
    assert torch.equal(cam[0], cam[1])
    x, y = load_digits_images()
    assert x.shape == (1797, 1, 8, 8) and y.unique().numel() == 10
    with pytest.raises(ValueError, match="unknown photo"):
        load_photo("lily")


def _no_network(*args, **kwargs):
    raise OSError("network is unreachable")


def test_missing_dataset_error_says_what_and_where(tmp_path, monkeypatch):
    monkeypatch.setattr("torchvision.datasets.utils.download_url", _no_network)
    monkeypatch.setattr("torchvision.datasets.utils.urllib.request.urlopen", _no_network, raising=False)
    with pytest.raises(DatasetMissingError) as e:
        cub200(root=tmp_path)
    msg = str(e.value)
    assert "CUB-200-2011" in msg and str(tmp_path) in msg and "data.caltech.edu" in msg and "COMPANION_DATA" in msg
    with pytest.raises(DatasetMissingError, match="cifar10"):
        torchvision_dataset("cifar10", root=tmp_path, download=False)


def test_corrupt_archive_fails_the_checksum(tmp_path):
    (tmp_path / "CUB_200_2011.tgz").write_bytes(b"not the archive")
    with pytest.raises(DatasetMissingError, match="corrupt or incomplete"):
        cub200(root=tmp_path, download=False)


def test_quick_mode_never_touches_the_network(monkeypatch):
    import socket

    def refuse(*a, **k):
        raise AssertionError("quick data tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    make_scenes(4, size=32)
    load_photo("astronaut", size=32)
    load_digits_images(size=16)


def test_data_root_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("COMPANION_DATA", str(tmp_path))
    assert datasets.data_root() == tmp_path
